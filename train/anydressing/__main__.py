"""``python -m atelier.train.anydressing``."""

from .cli import main

main()
