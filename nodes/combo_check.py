"""Combo-value checks for ``validate_inputs``: ComfyUI 0.3.64 does not check V3 combo values itself."""

from __future__ import annotations

from collections.abc import Sequence


def combo_errors(**checks: tuple[object, Sequence[str]]) -> str | None:
    """A message naming every input whose value is not one of its options, or None.

    Each keyword is an input name mapped to ``(value, options)``; a value of None (the input is
    linked, so its value is not known at validation time) is skipped.
    """
    problems = [
        f"'{name}' is {value!r}; choose one of {list(options)}"
        for name, (value, options) in checks.items()
        if value is not None and value not in options
    ]
    return "; ".join(problems) or None
