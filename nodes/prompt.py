"""Text conditioning a node builds itself with the user's CLIP (what CLIPTextEncode does)."""

from __future__ import annotations

from ..models.errors import ReferenceInputError


def encode_prompt(clip, text: str) -> list:
    """CONDITIONING of ``text`` with the user's CLIP."""
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


def conditioning_context(conditioning: list | None, input_name: str):
    """The (1, L, C) cross-attention tensor of a CONDITIONING's first entry, or None without one."""
    if conditioning is None:
        return None
    if not conditioning or getattr(conditioning[0][0], "ndim", 0) != 3:
        raise ReferenceInputError(f"'{input_name}' holds no text conditioning; connect a CLIP Text Encode output")
    return conditioning[0][0][:1]
