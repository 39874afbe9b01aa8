"""Tiny, randomly initialised SD1.5-layout components built offline, for tests and toy-world runs:
a word-level CLIP tokenizer over the fashion lexicon, a 2-layer 64-wide CLIP text encoder, the
32-channel SD1.5-layout UNet (the same shapes as the tiny ComfyUI checkpoint the tests load:
model_channels 32, context_dim 64, 8 heads) and a small 4-channel VAE with SD's 8x downsampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from ...models.text2graph.lexicon import lexicon_entries
from ...models.text2graph.schema import RELATIONS
from ..tiny import TINY_CONTEXT_DIM

CLIP_MAX_TOKENS = 77
EXTRA_WORDS: tuple[str, ...] = (
    "a", "an", "and", "with", "the", "of", "person", "wearing", "carrying", "has", "color", "feature", "style",
    "material", "pattern", "fit", "length", "neck", "point",
)


@dataclass(frozen=True)
class TinyTextConfig:
    """Size of the tiny text encoder."""

    hidden_size: int = TINY_CONTEXT_DIM
    layers: int = 2
    heads: int = 2
    intermediate_size: int = 128


def byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (GPT-2/CLIP's ``bytes_to_unicode``)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [byte for byte in range(256) if byte not in printable]
    codes = {byte: byte for byte in printable} | {byte: 256 + index for index, byte in enumerate(extra)}
    return [chr(codes[byte]) for byte in range(256)]


def tiny_tokenizer() -> CLIPTokenizer:
    """A CLIP BPE tokenizer whose merges spell whole lexicon words (one token per word); other
    words fall back to characters. Built in memory from a vocab and merges; nothing is downloaded."""
    symbols = byte_symbols()
    vocab: dict[str, int] = {}
    for token in [*symbols, *(f"{s}</w>" for s in symbols)]:
        vocab.setdefault(token, len(vocab))
    words = sorted({part for phrase in [*lexicon_entries(), *EXTRA_WORDS, *RELATIONS]
                    for part in phrase.replace("-", " ").split() if part.isalpha() and len(part) > 1})
    merges: list[tuple[str, str]] = []
    for word in words:
        pieces = [*word[:-1], f"{word[-1]}</w>"]
        merged = pieces[0]
        for piece in pieces[1:]:
            rule = (merged, piece)
            merged += piece
            if merged not in vocab:
                vocab[merged] = len(vocab)
                merges.append(rule)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_MAX_TOKENS)


def tiny_text_encoder(vocab_size: int, config: TinyTextConfig | None = None, seed: int = 0) -> CLIPTextModel:
    """A CLIPTextModel of ``config`` size with random weights (seeded)."""
    config = config if config is not None else TinyTextConfig()
    torch.manual_seed(seed)
    text_config = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers, num_attention_heads=config.heads, max_position_embeddings=CLIP_MAX_TOKENS,
        projection_dim=config.hidden_size, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )
    return CLIPTextModel(text_config)


def tiny_vae(seed: int = 0) -> AutoencoderKL:
    """A 4-latent-channel AutoencoderKL with SD's 8x downsampling, random weights."""
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 32, 32), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8,
    )
