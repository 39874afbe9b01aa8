"""Export a peft LoRA of a diffusers SD1.5 UNet in the kohya key format ComfyUI's core LoraLoader
loads: ``lora_unet_<diffusers module path with '_'>.lora_down.weight`` / ``.lora_up.weight`` /
``.alpha``. ComfyUI maps these names through ``comfy.utils.unet_to_diffusers`` (``comfy/lora.py``
``model_lora_keys_unet``), so every attention projection of the 16 transformer blocks resolves.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from ...models.errors import AtelierError

DOWN_SUFFIX = ".lora_A.weight"
UP_SUFFIX = ".lora_B.weight"


class LoraExportError(AtelierError, ValueError):
    """The peft state dict holds keys that are not LoRA A/B pairs."""


def kohya_unet_lora(peft_state: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """peft keys ``<module>.lora_A.weight`` / ``.lora_B.weight`` -> kohya ``lora_unet_*`` keys."""
    exported: dict[str, torch.Tensor] = {}
    for key, tensor in peft_state.items():
        if key.endswith(DOWN_SUFFIX):
            module, name = key[: -len(DOWN_SUFFIX)], "lora_down"
        elif key.endswith(UP_SUFFIX):
            module, name = key[: -len(UP_SUFFIX)], "lora_up"
        else:
            raise LoraExportError(f"peft state key {key!r} is not a LoRA A/B weight; only UNet LoRA layers export")
        stem = "lora_unet_" + module.removeprefix("unet.").replace(".", "_")
        exported[f"{stem}.{name}.weight"] = tensor.detach().to("cpu", torch.float32).contiguous()
        exported[f"{stem}.alpha"] = torch.tensor(float(alpha))
    pairs = {key.rsplit(".", 2)[0] for key in exported if key.endswith(".weight")}
    for stem in pairs:
        if f"{stem}.lora_down.weight" not in exported or f"{stem}.lora_up.weight" not in exported:
            raise LoraExportError(f"LoRA layer {stem} lacks its down or up weight")
    return exported


def save_kohya_lora(path: str | Path, peft_state: dict[str, torch.Tensor], rank: int, alpha: float,
                    extra_metadata: dict[str, str] | None = None) -> Path:
    """Write the kohya-format LoRA with kohya-style metadata; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "ss_network_module": "networks.lora", "ss_network_dim": str(rank), "ss_network_alpha": str(alpha),
        "atelier_system": "text2graph", **(extra_metadata or {}),
    }
    save_file(kohya_unet_lora(peft_state, alpha), str(path), metadata={k: str(v) for k, v in metadata.items()})
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The safetensors header metadata of a file (for reports and tests)."""
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        return json.loads(handle.read(size)).get("__metadata__", {})
