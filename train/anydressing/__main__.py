"""``python -m atelier.train.anydressing``: the options are parsed before torch loads."""

from ..command_line import deferred, run_cli
from .options import parse_args

run_cli(parse_args, deferred(".cli", "run", __package__))
