"""What every ``python -m atelier...`` entry point shares: one option vocabulary (``--out`` is always
an output folder, ``--lr``, ``--threads``, ``--seed``, ``--data-root``), help texts that show the
defaults, and user errors as one line on stderr with exit status 2 (``--debug`` shows the traceback).

This module imports nothing heavy, and neither may an entry point's option parsing: ``--help`` and a
bad option answer before torch, diffusers or transformers load. Heavy imports happen inside the
function that runs once the options are parsed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..models.errors import AtelierError
from .controls import add_control_options

EXIT_USER_ERROR = 2

# Errors that mean "fix your input", shown as one line; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (AtelierError, FileNotFoundError, NotADirectoryError,
                                                IsADirectoryError, PermissionError)


class OptionError(AtelierError, ValueError):
    """A command-line option is out of range or does not fit the others; the message names the flag."""


class UserErrorExit(SystemExit):
    """Exit status 2 after a user error was printed as one line; ``str()`` is that line,
    ``error: <message>``."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_USER_ERROR)
        self.message = message

    def __str__(self) -> str:
        return f"error: {self.message}"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows ``(default: X)`` after each option's help, unless the default is None / False or the help
    already says it; keeps the description's line breaks (its examples)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        hidden = action.default is None or action.default is False or action.default is argparse.SUPPRESS
        if "default" in text or hidden or action.required:
            return text
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose option errors are one line naming the flag (no usage block)."""

    def error(self, message: str) -> None:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise UserErrorExit(message)


def describe(doc: str | None) -> str:
    """A module docstring as a ``--help`` description, its reST double back-quotes dropped."""
    return (doc or "").strip().replace("``", "")


def make_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser every entry point starts from: its module docstring as the description, defaults in
    the help, and ``--debug``."""
    parser = OneLineParser(prog=prog, description=describe(doc), formatter_class=HelpFormatter)
    add_debug_option(parser)
    return parser


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    """``--debug``: show the traceback of a user error instead of one line."""
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error instead of one line")


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads``: torch's CPU threads (``start_cli`` applies it)."""
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for torch (default: torch's choice); 1 is much faster on a busy, shared CPU")


def add_seed_option(parser: argparse.ArgumentParser, help_text: str = "random seed") -> None:
    """``--seed``."""
    parser.add_argument("--seed", type=int, default=0, help=help_text)


def add_out_option(parser: argparse.ArgumentParser, help_text: str, *, required: bool = True,
                   default: str | None = None) -> None:
    """``--out``: always an output folder, created when missing; ``help_text`` says what goes in it."""
    parser.add_argument("--out", required=required and default is None, default=default, metavar="FOLDER",
                        help=f"output folder: {help_text}")


def output_file(out: str, name: str) -> Path:
    """The file ``name`` inside the output folder ``out`` (created); an ``out`` that already ends in
    ``name``'s suffix is the former file spelling of the flag and is that file."""
    path = Path(out)
    if path.suffix != Path(name).suffix:
        path = path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def require_at_least(limits: Sequence[tuple[str, float, float]], error: type[AtelierError] = OptionError) -> None:
    """(flag, value, least) triples: the first value below its least raises ``error`` naming its flag."""
    for flag, value, least in limits:
        if value < least:
            raise error(f"{flag} must be >= {least}, got {value}")


def positive_int(text: str) -> int:
    """argparse type of a count that must be at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type of a count that may be 0 (e.g. "0: only at the end")."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_checkpoint_options(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint-every``, ``--keep-checkpoints``, ``--resume`` and ``--log-every``: the options of
    every trainer's checkpoints and loss log."""
    parser.add_argument("--checkpoint-every", type=non_negative_int, default=500,
                        help="steps between checkpoints (0: only at the end)")
    parser.add_argument("--keep-checkpoints", type=positive_int, default=2, help="checkpoints kept")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of this stage in --out")
    parser.add_argument("--log-every", type=positive_int, default=50, help="steps between loss log lines")


def add_loop_options(parser: argparse.ArgumentParser, *, lr: float, lr_help: str, batch_help: str) -> None:
    """The options every diffusion trainer shares (steps, batch, optimiser, precision, threads, seed,
    checkpoints, resume, log, output) and the training controls (``controls.py``);
    ``loop.LoopSettings.from_args`` and ``start_cli`` read them."""
    parser.add_argument("--steps", type=int, default=1000, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=4, help=batch_help)
    parser.add_argument("--lr", type=float, default=lr, help=lr_help)
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no", help="passed to accelerate")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    add_threads_option(parser)
    add_seed_option(parser, "training seed")
    add_checkpoint_options(parser)
    add_out_option(parser, "weight files, checkpoints/ and the loss log")
    add_control_options(parser)


def start_cli(args: argparse.Namespace) -> None:
    """What every train / evaluate entry point does once its options are parsed: INFO logging and
    ``--threads`` (torch is imported here, not before)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    threads = getattr(args, "threads", None)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def one_line(error: BaseException) -> str:
    """The error's message on one line (a missing file names the file)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.strerror}: {error.filename}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def deferred(module: str, function: str, package: str | None = None) -> Callable[[argparse.Namespace], object]:
    """``module.function`` (``module`` relative to ``package`` when it starts with a dot), imported only
    when called: the heavy half of an entry point, run once the options are parsed."""

    def call(args: argparse.Namespace) -> object:
        return getattr(importlib.import_module(module, package), function)(args)

    return call


def run_cli(parse: Callable[[Sequence[str] | None], argparse.Namespace],
            run: Callable[[argparse.Namespace], object], argv: Sequence[str] | None = None,
            user_errors: tuple[type[BaseException], ...] = ()) -> object:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run; a user error (AtelierError, a missing or
    unreadable file, or one of ``user_errors``) is printed as ``error: <message>`` on stderr and exits
    with status 2, unless ``--debug`` was given. Returns what ``run`` returns."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        return run(parse(words))
    except (*USER_ERRORS, *user_errors) as error:
        if "--debug" in words:
            raise
        message = one_line(error)
        print(f"error: {message}", file=sys.stderr)
        raise UserErrorExit(message) from None
