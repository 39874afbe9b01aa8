"""Label names of human parsers: a parser's own class names -> LIP or ATR ids, and category lists.

A SegFormer clothes parser's ``config.json`` names its classes in ``id2label`` with its own
spelling: mattmdjaga/segformer_b2_clothes and sayeed99/segformer_b3_clothes write the 18 ATR classes
as "Background", "Upper-clothes", "Left-shoe", ...; SCHP-style LIP parsers write the 20 LIP classes
as "Upper-clothes", "Jumpsuits", "Left-arm", .... :func:`canonical_label` maps a spelling onto the
pack's names (``models.labels``): case and separators are ignored ("Upper-clothes", "upper clothes"
and "upper_clothes" are one name), and :data:`LABEL_SPELLINGS` lists the published spellings whose
words differ. :func:`match_label_set` then finds the set (ATR 18 or LIP 20) whose names the parser
has, in any order, and the id permutation to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .parsing import ATR, LIP, LabelSet, ParsingError, UnknownLabelError

# Published spellings (after lower-casing and joining words with "_") whose words differ from ours.
LABEL_SPELLINGS: Mapping[str, str] = MappingProxyType({
    "upperclothes": "upper_clothes",
    "upper_clothing": "upper_clothes",
    "jumpsuit": "jumpsuits",
    "sock": "socks",
    "gloves": "glove",
    "bg": "background",
})
KNOWN_SETS: tuple[LabelSet, ...] = (ATR, LIP)


class ParserLabelsError(ParsingError):
    """A parser's classes are not the ATR 18 or LIP 20 classes; the message says which names differ."""


def canonical_label(name: str) -> str:
    """A class name in the pack's spelling: lower case, words joined by "_", published variants mapped."""
    words = re.split(r"[\s\-_]+", str(name).strip().lower())
    joined = "_".join(word for word in words if word)
    return LABEL_SPELLINGS.get(joined, joined)


@dataclass(frozen=True)
class ParserLabels:
    """How a parser's class ids map onto a label set.

    Args:
        label_set: ATR or LIP.
        to_set: ``to_set[k]`` is the ``label_set`` id of the parser's class ``k``.
    """

    label_set: LabelSet
    to_set: tuple[int, ...]

    @property
    def is_identity(self) -> bool:
        """True when the parser's ids are already the label set's ids."""
        return self.to_set == tuple(range(len(self.to_set)))


def match_label_set(id2label: Mapping[int | str, str], source: str = "the parser") -> ParserLabels:
    """The label set (ATR 18 or LIP 20) whose classes ``id2label`` names, and the id map to it.

    Args:
        id2label: class id (int or its string, as in config.json) -> the parser's class name.
        source: how the message names the parser (e.g. its folder).

    Raises:
        ParserLabelsError: ids are not 0..N-1, two ids share a name, or the names are neither
            the ATR nor the LIP classes; the message lists the names each set lacks or misses.
    """
    try:
        by_id = {int(key): value for key, value in id2label.items()}
    except (TypeError, ValueError):
        raise ParserLabelsError(f"{source}: id2label keys must be class ids 0..N-1, got {sorted(map(str, id2label))}") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise ParserLabelsError(f"{source}: id2label ids must be 0..{len(by_id) - 1} without gaps, got {sorted(by_id)}")
    names = [canonical_label(by_id[index]) for index in range(len(by_id))]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ParserLabelsError(f"{source}: several class ids are called {repeated} in id2label")
    for label_set in KNOWN_SETS:
        if set(names) == set(label_set.labels):
            return ParserLabels(label_set, tuple(label_set.index(name) for name in names))
    raise ParserLabelsError(
        f"{source} has {len(names)} classes ({', '.join(by_id[i] for i in range(len(by_id)))}), which are neither "
        f"the 18 ATR classes ({_difference(names, ATR)}) nor the 20 LIP classes ({_difference(names, LIP)}); use a "
        f"clothes parser trained on ATR (e.g. mattmdjaga/segformer_b2_clothes) or LIP"
    )


def _difference(names: list[str], label_set: LabelSet) -> str:
    extra = [name for name in names if name not in label_set.labels]
    missing = [name for name in label_set.labels if name not in names]
    parts = ([f"not in {label_set.name.upper()}: {', '.join(extra)}"] if extra else []) + (
        [f"missing: {', '.join(missing)}"] if missing else [])
    return "; ".join(parts)


def category_groups(text: str, label_set: LabelSet, input_name: str = "categories") -> tuple[tuple[str, ...], ...]:
    """Parse a category list: groups separated by ",", classes within a group joined by "+".

    ``"upper_clothes"`` is one group of one class; ``"upper_clothes+coat, pants+skirt"`` two groups.
    Names are read with :func:`canonical_label`, so "Upper-clothes" works too.

    Raises:
        UnknownLabelError: an empty list or group, or a name ``label_set`` does not have; the
            message names ``input_name`` and lists the valid names.
    """
    valid = ", ".join(label_set.labels)
    groups = []
    for raw_group in (part.strip() for part in str(text).split(",")):
        if not raw_group:
            continue  # an empty list, or a trailing or doubled comma
        names = tuple(canonical_label(name) for name in raw_group.split("+"))
        if not all(names):
            raise UnknownLabelError(f"'{input_name}' has an empty name in {raw_group!r}; "
                                    f"{label_set.name.upper()} names: {valid}")
        unknown = [name for name in names if name not in label_set.labels]
        if unknown:
            raise UnknownLabelError(
                f"'{input_name}' names {', '.join(repr(n) for n in unknown)}, not {label_set.name.upper()} "
                f"class(es); {label_set.name.upper()} names: {valid}"
            )
        groups.append(tuple(dict.fromkeys(names)))  # repeated names once, in order
    if not groups:
        raise UnknownLabelError(f"'{input_name}' is empty; give one or more {label_set.name.upper()} names: {valid}")
    return tuple(groups)
