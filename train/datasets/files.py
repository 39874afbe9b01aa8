"""Finding and reading the files of a data set's published layout, with errors that name what is missing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...models.errors import AtelierError


class DatasetLayoutError(AtelierError, FileNotFoundError):
    """A file or folder that the data set's layout needs is missing; the message names it."""


class DatasetFormatError(AtelierError, ValueError):
    """A data-set file exists but its content is malformed (bad line, missing column or entry)."""


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise :class:`DatasetLayoutError` naming ``what``."""
    if not path.is_dir():
        raise DatasetLayoutError(f"{what} folder not found: {path}")
    return path


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise :class:`DatasetLayoutError` naming ``what``."""
    if not path.is_file():
        raise DatasetLayoutError(f"{what} not found: {path}")
    return path


def first_existing_dir(root: Path, names: Sequence[str], what: str) -> Path:
    """The first of ``root/name`` that is a folder (layouts differ between releases)."""
    for name in names:
        if (root / name).is_dir():
            return root / name
    tried = ", ".join(str(root / name) for name in names)
    raise DatasetLayoutError(f"{what} folder not found; looked for {tried}")


def first_existing_file(root: Path, names: Sequence[str], what: str) -> Path:
    """The first of ``root/name`` that is a file."""
    for name in names:
        if (root / name).is_file():
            return root / name
    tried = ", ".join(str(root / name) for name in names)
    raise DatasetLayoutError(f"{what} not found; looked for {tried}")


def file_with_suffixes(folder: Path, stem: str, suffixes: Sequence[str], what: str) -> Path:
    """``folder/stem<suffix>`` for the first suffix that exists (e.g. a mask saved as .jpg or .png)."""
    return first_existing_file(folder, [stem + suffix for suffix in suffixes], what)


def read_pair_lines(path: Path, what: str, *, separator: str | None = None, min_fields: int = 2) -> list[list[str]]:
    """Non-empty lines of a pair list, split on ``separator`` (whitespace when None).

    Raises:
        DatasetLayoutError: the file is missing.
        DatasetFormatError: a line has fewer than ``min_fields`` fields (line number given).
    """
    require_file(path, what)
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.strip().split(separator)]
        if len(fields) < min_fields:
            raise DatasetFormatError(f"{path}:{number}: expected at least {min_fields} fields, got {line!r}")
        rows.append(fields)
    return rows
