"""``python -m atelier.models.garment_networks.convert FILE [--out FOLDER]``: a published garment network
file (a pickled .pt/.pth/.bin is read with ``torch.load(weights_only=True)``) written once as
safetensors, so later loads are fast and pickle-free. The family is recognised from the keys. The
options are parsed before torch loads."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import AtelierError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atelier.models.garment_networks.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="the downloaded garment network file")
    parser.add_argument("--out", metavar="FOLDER", help="output folder of FILE's name with .safetensors (default: "
                        "FILE's folder; a path ending in .safetensors is that file)")
    args = parser.parse_args(argv)
    name = os.path.splitext(os.path.basename(args.file))[0] + ".safetensors"
    if args.out is None:
        target = os.path.join(os.path.dirname(args.file), name)
    elif args.out.endswith(".safetensors"):
        target = args.out
    else:
        os.makedirs(args.out, exist_ok=True)
        target = os.path.join(args.out, name)
    if os.path.abspath(target) == os.path.abspath(args.file):
        print(f"error: {args.file} is already a .safetensors file; give --out another path", file=sys.stderr)
        return 2
    from .families import convert_to_safetensors  # torch: only once the options are parsed

    try:
        family = convert_to_safetensors(args.file, target)
    except AtelierError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {target} ({family})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
