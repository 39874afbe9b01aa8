"""``python -m atelier.train.gate``: the toy substrate's gate, printed as markdown.

Example (toy32 base from ``python -m atelier.train.anydressing --stage base --base toy32 ...``)::

    python -m atelier.train.gate --base toy32 --init-unet out/toy32-self/base_unet.safetensors

It passes when the self-reference oracle lowers the garment-region ε-MSE at t = 500 by at least
``--threshold`` (20%) through either untrained read; it exits 1 when it does not. About 1-2 minutes
on one CPU thread for toy32 with 24 people.
"""

from __future__ import annotations

import argparse

from ..command_line import OptionError, add_threads_option, make_parser
from ..substrate import is_substrate, substrate

GATE_TIMESTEP = 500


class GateOptionError(OptionError):
    """A gate option is out of range; the message names the flag."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = make_parser("python -m atelier.train.gate", __doc__)
    p.add_argument("--base", default="toy32", help="toy substrate of the base (tiny, toy32)")
    p.add_argument("--init-unet", required=True, help="the trained base (base_unet.safetensors of --stage base)")
    p.add_argument("--size", type=int, default=None, help="image side (default: the substrate's)")
    p.add_argument("--count", type=int, default=24, help="held-out people measured")
    p.add_argument("--timesteps", default="0,300,500,800", help="timesteps measured (500 is the gate's)")
    p.add_argument("--threshold", type=float, default=0.2, help="least relative oracle gain at t = 500 to pass")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    add_threads_option(p)
    args = p.parse_args(argv)
    if not is_substrate(args.base):
        raise GateOptionError(f"--base must be a toy substrate (tiny, toy32), got {args.base!r}")
    if args.count < 1:
        raise GateOptionError(f"--count must be >= 1, got {args.count}")
    args.timestep_list = sorted({int(t) for t in args.timesteps.split(",") if t} | {GATE_TIMESTEP})
    if any(not 0 <= t < 1000 for t in args.timestep_list):
        raise GateOptionError(f"--timesteps must lie in 0..999, got {args.timesteps!r}")
    args.size = args.size or substrate(args.base).size
    return args
