"""A tiny, randomly initialised SegFormer clothes parser folder, laid out like the published ones.

mattmdjaga/segformer_b2_clothes and sayeed99/segformer_b3_clothes hold ``config.json`` (model_type
"segformer", architecture SegformerForSemanticSegmentation, the 18 ATR classes in ``id2label``
spelled "Background", "Upper-clothes", "Left-shoe", ...), ``model.safetensors`` in the key layout of
transformers 4 (``segformer.encoder.block.0.0.attention.self.query.weight``,
``decode_head.linear_c.0.proj.weight``, ...; b2 also ships the same weights as ``pytorch_model.bin``)
and ``preprocessor_config.json`` (512×512 resize, ImageNet normalisation). The tiny folder has the
same files and key layout at widths 8..32 and a 64×64 resize, so CPU tests take milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# id2label exactly as mattmdjaga/segformer_b2_clothes's config.json spells it (sayeed99's is the same).
PUBLISHED_ATR_ID2LABEL: dict[str, str] = {
    "0": "Background", "1": "Hat", "2": "Hair", "3": "Sunglasses", "4": "Upper-clothes", "5": "Skirt",
    "6": "Pants", "7": "Dress", "8": "Belt", "9": "Left-shoe", "10": "Right-shoe", "11": "Face",
    "12": "Left-leg", "13": "Right-leg", "14": "Left-arm", "15": "Right-arm", "16": "Bag", "17": "Scarf",
}
# The 20 LIP classes as SCHP-style LIP parsers spell them.
LIP_ID2LABEL: dict[str, str] = {str(i): name for i, name in enumerate((
    "Background", "Hat", "Hair", "Glove", "Sunglasses", "Upper-clothes", "Dress", "Coat", "Socks", "Pants",
    "Jumpsuits", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm", "Left-leg", "Right-leg", "Left-shoe", "Right-shoe",
))}
PREPROCESSOR = {
    "do_normalize": True, "do_reduce_labels": False, "do_rescale": True, "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "SegformerImageProcessor",
    "image_std": [0.229, 0.224, 0.225], "resample": 2, "rescale_factor": 0.00392156862745098,
    "size": {"height": 64, "width": 64},
}
# Module names of transformers 4, which the published files use.
PUBLISHED_KEYS = ("segformer.encoder.block.0.0.attention.self.query.weight", "decode_head.linear_c.0.proj.weight")


def tiny_segformer(id2label: dict[str, str] = PUBLISHED_ATR_ID2LABEL, seed: int = 0, **overrides):
    """A randomly initialised tiny SegformerForSemanticSegmentation (eval mode) with ``id2label``.

    The classifier is scaled up so the random model's argmax varies across the image.
    """
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    labels = {int(key): value for key, value in id2label.items()}
    settings = {"hidden_sizes": [8, 16, 24, 32], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 1, 1, 1],
                "decoder_hidden_size": 16, "id2label": labels, "label2id": {v: k for k, v in labels.items()}}
    settings.update(overrides)
    torch.manual_seed(seed)
    model = SegformerForSemanticSegmentation(SegformerConfig(**settings)).eval()
    with torch.no_grad():
        model.decode_head.classifier.weight.mul_(50.0)
    return model


def write_tiny_segformer(folder: Path, id2label: dict[str, str] = PUBLISHED_ATR_ID2LABEL, *, seed: int = 0,
                         weights: str = "safetensors", preprocessor: dict | None = PREPROCESSOR, **overrides):
    """Write a tiny parser folder; ``weights`` is "safetensors" (model.safetensors), "bin" (only
    pytorch_model.bin, as torch.save writes it) or "none". Returns the model written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = tiny_segformer(id2label, seed, **overrides)
    model.save_pretrained(str(folder))
    saved = folder / "model.safetensors"
    if weights == "bin":
        from safetensors.torch import load_file

        torch.save(load_file(str(saved)), folder / "pytorch_model.bin")
    if weights != "safetensors":
        saved.unlink()
    if preprocessor is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return model


def saved_keys(folder: Path) -> set[str]:
    """Tensor names in the folder's model.safetensors."""
    from safetensors import safe_open

    with safe_open(str(Path(folder) / "model.safetensors"), framework="pt") as handle:
        return set(handle.keys())
