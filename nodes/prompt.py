"""Text conditioning a node builds itself with the user's CLIP (what CLIPTextEncode does)."""

from __future__ import annotations


def encode_prompt(clip, text: str) -> list:
    """CONDITIONING of ``text`` with the user's CLIP."""
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))
