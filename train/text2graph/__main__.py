"""``python -m atelier.train.text2graph``: options parsed before torch loads; prints the written file."""

from __future__ import annotations

import argparse

from ..command_line import run_cli, start_cli
from .options import parse_args, parse_options

__all__ = ["main", "parse_args"]


def run(args: argparse.Namespace) -> None:
    """Train with parsed options and print the weight file's path."""
    from .trainer import loop_settings_of, train

    start_cli(args)
    print(train(args.config, loop_settings_of(args.config, args)).output)


def main(argv: list[str] | None = None) -> None:
    """Entry point; a user error is one line."""
    run_cli(parse_options, run, argv)


if __name__ == "__main__":
    main()
