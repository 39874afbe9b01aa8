"""Perceptual loss on a VGG-16 backbone read from a user-supplied weights file (no download).

The paper's perceptual term compares VGG-16 features of generated and ground-truth items. No
pretrained weights ship with Atelier: pass a file holding torchvision's VGG-16 ``features.<i>.weight``
/ ``features.<i>.bias`` tensors (safetensors or a torch state dict, e.g. torchvision's
``vgg16-397923af.pth``; a ``features.`` prefix under another prefix is found too). Without a file the
term is off and one log line says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from .errors import PerceptualWeightsError

logger = logging.getLogger("atelier.outfitgan")

# torchvision VGG-16 ``features`` layout: channel counts, "M" = max-pool.
VGG16_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M")
# Named ReLU outputs -> index in ``features`` (torchvision numbering).
VGG16_TAPS: dict[str, int] = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
DEFAULT_TAPS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_features(last_index: int) -> nn.Sequential:
    """torchvision-numbered VGG-16 ``features`` up to and including module ``last_index``."""
    modules: list[nn.Module] = []
    channels = 3
    for entry in VGG16_LAYOUT:
        if entry == "M":
            modules.append(nn.MaxPool2d(2, 2))
        else:
            modules += [nn.Conv2d(channels, entry, 3, padding=1), nn.ReLU(inplace=False)]
            channels = entry
    return nn.Sequential(*modules[: last_index + 1])


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise PerceptualWeightsError(f"perceptual backbone file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


class VGGPerceptualLoss(nn.Module):
    """Σ_l mean |φ_l(generated) − φ_l(target)| over VGG-16 taps; the backbone is frozen.

    Args:
        path: the VGG-16 weights file.
        taps: which ReLU outputs to compare (names of ``VGG16_TAPS``).
    """

    def __init__(self, path: str | Path, taps: tuple[str, ...] = DEFAULT_TAPS) -> None:
        super().__init__()
        unknown = [tap for tap in taps if tap not in VGG16_TAPS]
        if unknown:
            raise PerceptualWeightsError(f"unknown perceptual taps {unknown}; known: {list(VGG16_TAPS)}")
        self.tap_indices = sorted(VGG16_TAPS[tap] for tap in taps)
        self.features = vgg16_features(self.tap_indices[-1])
        self._load(Path(path))
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _load(self, path: Path) -> None:
        state = _read_state(path)
        wanted = self.features.state_dict()
        found: dict[str, torch.Tensor] = {}
        for key in wanted:
            matches = [name for name in state if name == f"features.{key}" or name.endswith(f".features.{key}")]
            if not matches:
                raise PerceptualWeightsError(
                    f"{path} has no VGG-16 tensor 'features.{key}'; give torchvision VGG-16 weights"
                )
            found[key] = state[matches[0]]
            if found[key].shape != wanted[key].shape:
                raise PerceptualWeightsError(
                    f"{path}: 'features.{key}' is {tuple(found[key].shape)}, VGG-16 needs {tuple(wanted[key].shape)}"
                )
        self.features.load_state_dict(found, strict=True)
        logger.info("perceptual loss: VGG-16 taps %s from %s", self.tap_indices, path)

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] -> scalar loss."""
        x = (generated - self.mean) / self.std
        y = (target - self.mean) / self.std
        loss = generated.new_zeros(())
        for index, layer in enumerate(self.features):
            x, y = layer(x), layer(y)
            if index in self.tap_indices:
                loss = loss + (x - y).abs().mean()
        return loss


def build_perceptual_loss(path: str | Path | None, taps: tuple[str, ...] = DEFAULT_TAPS) -> VGGPerceptualLoss | None:
    """The perceptual loss from ``path``, or None (one log line: the term is off) without a file."""
    if path is None:
        logger.warning("perceptual loss is off: no VGG-16 weights file given (--perceptual-weights)")
        return None
    return VGGPerceptualLoss(path, taps)
