"""``python -m atelier.train.outfitgan``: see ``cli``."""

from .cli import main

main()
