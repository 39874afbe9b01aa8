"""CLI: ``python -m atelier.train.text2graph --data toyworld --pretrained tiny --steps 200 --output x.safetensors``.
Prints the written file's path."""

from __future__ import annotations

import argparse
import dataclasses
import logging

from .config import Text2GraphTrainConfig
from .trainer import train


def parse_args(argv: list[str] | None = None) -> Text2GraphTrainConfig:
    """Flags named after the config fields (``--prompt-mode`` for ``prompt_mode``)."""
    parser = argparse.ArgumentParser(prog="python -m atelier.train.text2graph", description=__doc__)
    for field in dataclasses.fields(Text2GraphTrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type == "bool":
            parser.add_argument(flag, action="store_true", help=f"(default {field.default})")
        elif field.name == "widths":
            parser.add_argument(flag, type=int, nargs=4, default=field.default, help="tiny UNet widths")
        else:
            kind = {"int": int, "float": float}.get(field.type, str)
            parser.add_argument(flag, type=kind, default=field.default, help=f"(default {field.default})")
    values = vars(parser.parse_args(argv))
    values["widths"] = tuple(values["widths"])
    return Text2GraphTrainConfig(**values)


def main(argv: list[str] | None = None) -> None:
    """Train and print the output path."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = train(parse_args(argv))
    print(result.output)


if __name__ == "__main__":
    main()
