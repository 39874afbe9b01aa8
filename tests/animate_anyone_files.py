"""AnimateAnyone stage-1 files in their published layout at small width, for the tests.

``reference_unet.pth`` is a diffusers SD1.5-layout UNet state dict without ``conv_norm_out`` /
``conv_out`` (the public UNet2DConditionModel variant drops them); ``denoising_unet.pth`` a complete
one; ``pose_guider.pth`` a PoseGuider's. All are flat state dicts saved with ``torch.save``.
"""

from __future__ import annotations

from itertools import pairwise

import torch

OUTPUT_KEYS = ("conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias")


def published_reference_state(unet_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A reference UNet file's tensors: the UNet's state less the output layers the public variant lacks."""
    return {key: value.clone() for key, value in unet_state.items() if key not in OUTPUT_KEYS}


def published_pose_guider_state(embedding_channels: int, widths=(16, 32, 96, 256), seed: int = 0,
                                std: float = 0.05) -> dict[str, torch.Tensor]:
    """A PoseGuider file's tensors with random (non-zero, also conv_out) weights, published key names."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * std

    state = {"conv_in.weight": rnd(widths[0], 3, 3, 3), "conv_in.bias": rnd(widths[0])}
    index = 0
    for width_in, width_out in pairwise(widths):
        state[f"blocks.{index}.weight"], state[f"blocks.{index}.bias"] = rnd(width_in, width_in, 3, 3), rnd(width_in)
        state[f"blocks.{index + 1}.weight"], state[f"blocks.{index + 1}.bias"] = rnd(width_out, width_in, 3, 3), rnd(width_out)
        index += 2
    state["conv_out.weight"], state["conv_out.bias"] = rnd(embedding_channels, widths[-1], 3, 3), rnd(embedding_channels)
    return state
