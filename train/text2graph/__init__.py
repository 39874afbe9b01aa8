"""Text2Graph training: a LoRA fine-tune of SD1.5 on (image, triple-prompt) pairs from the toy world
or H&M, exported in the kohya key format ComfyUI's core LoraLoader loads.

Entry point: ``python -m atelier.train.text2graph --data toyworld --steps 200 --out out/kg``. The names
below load on first use, so the entry points' ``--help`` answers before torch loads.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Text2GraphTrainConfig": ".config", "TrainConfigError": ".config", "kohya_unet_lora": ".lora_export",
    "save_kohya_lora": ".lora_export", "TrainResult": ".trainer", "train": ".trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """``Text2GraphTrainConfig``, ``train``, …: imported from their module when first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
