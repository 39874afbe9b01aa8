"""Encode a batch's prompts with a transformers CLIP text encoder in one of the three modes, the
training-side twin of ComfyUI's encoding: a text longer than 75 tokens is split into 75-token
chunks, each wrapped in start/end tokens, padded to a 77-token window and encoded on its own, and
the windows are concatenated (what ComfyUI's CLIPTextEncode does); bound mode encodes one window
per entity phrase. Samples with fewer windows are padded with windows of the empty prompt."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import CLIPTextModel, CLIPTokenizer

from ...models.text2graph.binding import combine_bound_embeddings, pad_bound_batch
from ...models.text2graph.schema import Triple
from .prompts import PromptMode, prompt_texts
from .tiny import CLIP_MAX_TOKENS

CHUNK_TOKENS = CLIP_MAX_TOKENS - 2


def text_windows(tokenizer: CLIPTokenizer, text: str) -> list[list[int]]:
    """Token ids of ``text`` as 77-token windows: [BOS, up to 75 tokens, EOS, padding]."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False).input_ids
    chunks = [ids[start:start + CHUNK_TOKENS] for start in range(0, len(ids), CHUNK_TOKENS)] or [[]]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    windows = []
    for chunk in chunks:
        window = [tokenizer.bos_token_id, *chunk, tokenizer.eos_token_id]
        windows.append(window + [pad] * (CLIP_MAX_TOKENS - len(window)))
    return windows


def encode_batch(tokenizer: CLIPTokenizer, text_encoder: CLIPTextModel, captions: Sequence[str],
                 triples: Sequence[Sequence[Triple]], mode: PromptMode) -> torch.Tensor:
    """(B, 77·k, C): k windows per sample (1 for a short plain or linearised text; one per entity
    phrase in bound mode), shorter samples padded with windows of the empty prompt."""
    per_sample_ids: list[list[list[int]]] = []
    for caption, sample_triples in zip(captions, triples):
        texts = prompt_texts(caption, sample_triples, mode)
        per_sample_ids.append([window for text in texts for window in text_windows(tokenizer, text)])
    flat = [window for windows in per_sample_ids for window in windows] + text_windows(tokenizer, "")
    ids = torch.tensor(flat, device=text_encoder.device)  # (sum k_i + 1, 77)
    hidden = text_encoder(ids).last_hidden_state  # (sum k_i + 1, 77, C)
    per_sample, start = [], 0
    for windows in per_sample_ids:
        per_sample.append(combine_bound_embeddings([hidden[start + i: start + i + 1] for i in range(len(windows))]))
        start += len(windows)
    return pad_bound_batch(per_sample, hidden[-1:])  # (B, 77 * max k, C)
