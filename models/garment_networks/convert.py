"""``python -m atelier.models.garment_networks.convert FILE [--out OUT]``: a published garment network
file (a pickled .pt/.pth/.bin is read with ``torch.load(weights_only=True)``) written once as
safetensors, so later loads are fast and pickle-free. The family is recognised from the keys."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import AtelierError
from .families import convert_to_safetensors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atelier.models.garment_networks.convert", description=__doc__)
    parser.add_argument("file", help="the downloaded garment network file")
    parser.add_argument("--out", help="where to write the safetensors file (default: beside FILE, .safetensors)")
    args = parser.parse_args(argv)
    target = args.out or os.path.splitext(args.file)[0] + ".safetensors"
    if os.path.abspath(target) == os.path.abspath(args.file):
        print(f"error: {args.file} is already a .safetensors file; give --out another path", file=sys.stderr)
        return 2
    try:
        family = convert_to_safetensors(args.file, target)
    except AtelierError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {target} ({family})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
