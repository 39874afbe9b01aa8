"""``python -m atelier.train.truepose``."""

from .cli import main

main()
