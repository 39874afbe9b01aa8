"""``python -m atelier.train.igr``."""

from .cli import main

main()
