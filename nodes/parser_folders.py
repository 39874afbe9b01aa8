"""Human parser folders in ``models/segformer/`` (and extra paths): listing them for a combo, resolving a name.

A parser is a folder holding a ``config.json`` (a transformers model folder), directly under a
registered path (``models/segformer/segformer_b2_clothes/``) or nested
(``models/segformer/mattmdjaga/segformer_b2_clothes/``); its combo value is the path relative to
the registered folder, with "/" separators.
"""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..models.segformer_files import CONFIG_FILE, ParserFolderError
from .folders import PARSER_FOLDER_NAME

MAX_DEPTH = 3  # folders below a registered path that are searched for a config.json


def parser_roots() -> list[Path]:
    """The registered parser paths (empty before the pack registered its folders)."""
    paths, _ = folder_paths.folder_names_and_paths.get(PARSER_FOLDER_NAME, ([], set()))
    return [Path(path) for path in paths]


def parser_folder_names() -> list[str]:
    """Names of the parser folders (those with a config.json), sorted; the first root wins a repeated name."""
    names: list[str] = []
    for root in parser_roots():
        if not root.is_dir():
            continue
        for current, subfolders, files in os.walk(root, followlinks=True):
            relative = Path(current).relative_to(root)
            if CONFIG_FILE in files and relative.parts:
                names.append(relative.as_posix())
                subfolders.clear()  # a model folder's own sub-folders are not parsers
            elif len(relative.parts) >= MAX_DEPTH:
                subfolders.clear()
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
    return sorted(dict.fromkeys(names))


def resolve_parser_folder(name: str) -> Path:
    """The folder of parser ``name``; raises :class:`ParserFolderError` naming the input and the searched paths."""
    roots = parser_roots()
    for root in roots:
        candidate = (root / name).resolve()
        inside = os.path.commonpath([candidate, root.resolve()]) == str(root.resolve())
        if inside and (candidate / CONFIG_FILE).is_file():
            return candidate
    searched = ", ".join(str(root) for root in roots) or f"models/{PARSER_FOLDER_NAME}/ (not registered)"
    raise ParserFolderError(
        f"'parser' is {name!r}, which is not a folder with a {CONFIG_FILE} in {searched}; download a SegFormer "
        f"clothes parser (e.g. mattmdjaga/segformer_b2_clothes) into models/{PARSER_FOLDER_NAME}/<name>/"
    )
