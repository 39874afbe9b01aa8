"""The bound encoding: one short phrase per entity, each encoded on its own, then concatenated.

Why. In one CLIP pass over "a navy blue jacket with a red collar", the causal self-attention lets
the "collar" tokens read "navy blue" (and every later token reads every earlier one), so colour
information spreads along the sequence; the UNet's cross-attention then sees a mix (the paper's
"attribute confusion"). Here each entity's attributes are written into its own phrase ("navy blue
jacket", "red straight-point collar of the jacket", "blue belted waist of the jacket") and each
phrase is encoded in its own 77-token window, which is the same as one pass with a block-diagonal
attention mask over the concatenation: no token of one phrase can attend to another phrase. The
windows are concatenated along the token axis, (B, 77, C) x k -> (B, 77·k, C), exactly the shape
ComfyUI's own long-prompt encoding and ConditioningConcat produce, so the result is ordinary
CONDITIONING for KSampler and ControlNet. Full 77-token windows (rather than trimmed phrases) keep
every length a multiple of 77, so ComfyUI can batch it with a 77-token negative prompt (it repeats
conds to the least common multiple of their lengths). The part phrase names its garment ("of the
jacket") so the UNet can tell whose collar it is; no attribute word of the garment appears there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..errors import AtelierError
from .schema import Triple

LINK_RELATIONS = ("has-feature", "has-pattern")
ROOT_ORDER = ("has-length", "has-fit", "has-style", "has-color", "has-material", "has-pattern")
PART_ORDER = ("has-color", "has-length", "has-fit", "has-style", "has-material", "has-pattern")


class BoundEncodingError(AtelierError, ValueError):
    """Per-entity embeddings cannot be combined (no phrase, or different batch or width)."""


@dataclass(frozen=True)
class EntityPhrase:
    """The text one entity is encoded from.

    Args:
        entity: the entity's name in the triples.
        text: its phrase ("red straight-point collar of the jacket").
        parent: the garment it hangs from, or "" for a root entity.
    """

    entity: str
    text: str
    parent: str = ""


def bound_phrases(triples: Iterable[Triple]) -> list[EntityPhrase]:
    """One phrase per entity, in order of first appearance: its attribute values (a garment's style
    words before its colour, a part's colour before its style, as captions say them), its name,
    "of the <parent>" for parts and patterns, and "with <pattern>" for patterns without a node."""
    triples = list(triples)
    parents: dict[str, str] = {}
    order: list[str] = []
    attributes: dict[str, list[tuple[str, str]]] = {}
    for entity, relation, value in triples:
        order.extend(name for name in (entity,) if name not in order)
        if relation in LINK_RELATIONS and (relation == "has-feature" or any(t[0] == value for t in triples)):
            parents.setdefault(value, entity)
            order.extend(name for name in (value,) if name not in order)
        else:
            attributes.setdefault(entity, []).append((relation, value))
    phrases = []
    for entity in order:
        rank = PART_ORDER if entity in parents else ROOT_ORDER
        ranked = sorted(attributes.get(entity, []), key=lambda item: rank.index(item[0]))
        words = [value for relation, value in ranked if relation != "has-pattern"]
        patterns = [value for relation, value in ranked if relation == "has-pattern"]
        parent = parents.get(entity, "")
        name = entity[len(parent) + 1:] if parent and entity.startswith(parent + " ") else entity
        text = " ".join([*words, name]) + (f" of the {parent}" if parent else "")
        text += f" with {' and '.join(patterns)}" if patterns else ""
        phrases.append(EntityPhrase(entity, text, parent))
    return phrases


def combine_bound_embeddings(embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-entity embeddings (each (B, T_i, C)) along tokens -> (B, sum T_i, C)."""
    if not embeddings:
        raise BoundEncodingError("bound encoding needs at least one entity phrase; the triples are empty")
    batch, width = embeddings[0].shape[0], embeddings[0].shape[-1]
    for index, embedding in enumerate(embeddings):
        if embedding.ndim != 3 or embedding.shape[0] != batch or embedding.shape[-1] != width:
            raise BoundEncodingError(
                f"entity embedding {index} has shape {tuple(embedding.shape)}; expected ({batch}, T, {width})"
            )
    return torch.cat(list(embeddings), dim=1)  # (B, sum T_i, C)


def pad_bound_batch(per_sample: Sequence[torch.Tensor], empty: torch.Tensor) -> torch.Tensor:
    """Stack bound encodings of different lengths (each (1, 77·k_i, C)) into (B, 77·max k, C) by
    appending windows of the empty prompt's encoding ``empty`` (1, 77, C), as an unconditional
    window adds no attribute."""
    windows = [sample.shape[1] // empty.shape[1] for sample in per_sample]
    longest = max(windows)
    padded = [torch.cat([sample, *([empty] * (longest - count))], dim=1) for sample, count in zip(per_sample, windows)]
    return torch.cat(padded, dim=0)  # (B, 77 * max k, C)
