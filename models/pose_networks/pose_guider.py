"""AnimateAnyone's PoseGuider, written from its published semantics with its published key names.

Moore-AnimateAnyone's ``src/models/pose_guider.py`` ``PoseGuider(conditioning_embedding_channels,
conditioning_channels=3, block_out_channels)``: ``conv_in`` (3×3), then for each step between two
widths a 3×3 conv at the same width and a 3×3 stride-2 conv to the next width (``blocks.0`` …), SiLU
after every conv but the last, and a zero-initialised 3×3 ``conv_out`` to the UNet's conv_in width.
Its ``InflatedConv3d`` is a 2-D conv applied frame by frame, so on one frame it is ``nn.Conv2d``
with the same keys. The published file uses ``block_out_channels=(16, 32, 96, 256)`` and 320 out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightFileError

PUBLISHED_WIDTHS: tuple[int, ...] = (16, 32, 96, 256)


@dataclass(frozen=True)
class PoseGuiderConfig:
    """Widths of a PoseGuider.

    Args:
        embedding_channels: output width (the UNet's conv_in width, 320 for SD1.5).
        conditioning_channels: input channels (an RGB skeleton drawing).
        block_out_channels: widths of conv_in and of each stride-2 stage.
    """

    embedding_channels: int = 320
    conditioning_channels: int = 3
    block_out_channels: tuple[int, ...] = PUBLISHED_WIDTHS

    @property
    def downscale(self) -> int:
        """How much smaller the output is than the drawing (8 for four widths)."""
        return 2 ** (len(self.block_out_channels) - 1)


class PoseGuider(nn.Module):
    """Skeleton drawing (B, 3, H, W) in [0, 1] -> features (B, embedding_channels, H/8, W/8), added
    to the denoising UNet's conv_in output (``UNet3DConditionModel.forward``: ``sample + pose_cond_fea``)."""

    def __init__(self, config: PoseGuiderConfig = PoseGuiderConfig()) -> None:
        super().__init__()
        self.config = config
        widths = config.block_out_channels
        self.conv_in = nn.Conv2d(config.conditioning_channels, widths[0], kernel_size=3, padding=1)
        blocks: list[nn.Module] = []
        for width_in, width_out in pairwise(widths):
            blocks.append(nn.Conv2d(width_in, width_in, kernel_size=3, padding=1))
            blocks.append(nn.Conv2d(width_in, width_out, kernel_size=3, padding=1, stride=2))
        self.blocks = nn.ModuleList(blocks)
        self.conv_out = nn.Conv2d(widths[-1], config.embedding_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # zero_module in the public code: a new guider adds nothing
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, drawing: torch.Tensor) -> torch.Tensor:
        features = F.silu(self.conv_in(drawing))  # (B, w0, H, W)
        for block in self.blocks:
            features = F.silu(block(features))
        return self.conv_out(features)  # (B, embedding_channels, H/8, W/8)


def is_pose_guider_state(keys) -> bool:
    """Whether a key set is a PoseGuider's (``conv_in.*``, ``blocks.N.*``, ``conv_out.*`` only)."""
    keys = list(keys)
    return (
        "blocks.0.weight" in keys and "conv_out.weight" in keys
        and all(key.startswith(("conv_in.", "blocks.", "conv_out.")) for key in keys)
    )


def pose_guider_config(state: dict[str, torch.Tensor], source: str) -> PoseGuiderConfig:
    """The widths a PoseGuider state dict was saved with; the error names the file and the key."""
    name = os.path.basename(source)
    for key in ("conv_in.weight", "conv_out.weight"):
        if key not in state:
            raise WeightFileError(f"{name}: the pose guider has no {key!r}; the file is truncated or not a PoseGuider")
    convs = sorted(int(key.split(".")[1]) for key in state if key.startswith("blocks.") and key.endswith(".weight"))
    if convs != list(range(len(convs))) or len(convs) % 2:
        raise WeightFileError(f"{name}: the pose guider's blocks are {convs}; expected pairs blocks.0 … blocks.{2 * (len(convs) // 2) + 1}")
    widths = [int(state["conv_in.weight"].shape[0])]
    widths += [int(state[f"blocks.{index}.weight"].shape[0]) for index in range(1, len(convs), 2)]
    return PoseGuiderConfig(
        embedding_channels=int(state["conv_out.weight"].shape[0]),
        conditioning_channels=int(state["conv_in.weight"].shape[1]),
        block_out_channels=tuple(widths),
    )


def pose_guider_from_state(state: dict[str, torch.Tensor], source: str) -> PoseGuider:
    """A PoseGuider holding ``state`` (published key names); a missing, extra or misshapen key raises, naming it."""
    name = os.path.basename(source)
    guider = PoseGuider(pose_guider_config(state, source))
    expected = guider.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise WeightFileError(f"{name}: the pose guider has no {key!r}; the file is truncated")
        if tuple(state[key].shape) != tuple(value.shape):
            raise WeightFileError(
                f"{name}: the pose guider's {key!r} is {tuple(state[key].shape)}, expected {tuple(value.shape)}"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise WeightFileError(f"{name}: the pose guider has unknown key(s) {extra[:3]}; it is not a PoseGuider file")
    guider.load_state_dict({key: value.float() for key, value in state.items()})
    return guider.eval()
