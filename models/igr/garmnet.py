"""GarmNet, IGR's high-level garment extractor (§3.2), as a small module riding on the denoiser.

Our decomposition of "a UNet of the denoiser's architecture whose first conv takes 5 channels":
GarmNet = the denoiser's own UNet weights (as loaded, with any denoiser LoRA) + this module's
activation-space LoRA on every attn1 q/k/v (AnyDressing's GarmentLoRA with one slot) + the 5th input
channel as a separate zero-initialised conv ``mask_in`` whose output is added to the base conv_in:
conv5(concat(z, m)) = conv_in(z) + mask_in(m) exactly. A fresh GarmNet therefore equals the base
UNet (the issue's "new channels zero-initialised, the rest copied"), and one small file rides on
any SD1.5 checkpoint. GarmNet runs once per sampling run at ``GARMNET_TIMESTEP``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..anydressing.garment_lora import GarmentLoRA
from ..errors import ReferenceInputError
from ..masks import as_mask_batch
from ..sites import SITES_BY_NAME
from .config import IGRConfig

GARMNET_TIMESTEP = 0
MASK_CHANNELS = 1


class GarmNet(nn.Module):
    """GarmNet's own weights: ``lora`` (GarmentLoRA, one slot) and ``mask_in`` (Conv2d(1, C, 3), zeros).

    Args:
        site_dims: site name -> attn1 width C of that site.
        model_channels: width of the UNet's conv_in output.
        rank, scale: the LoRA's rank r and alpha / r.
    """

    def __init__(self, site_dims: dict[str, int], model_channels: int, rank: int, scale: float) -> None:
        super().__init__()
        self.lora = GarmentLoRA(site_dims, slots=1, rank=rank, scale=scale)
        self.mask_in = nn.Conv2d(MASK_CHANNELS, model_channels, kernel_size=3, padding=1, bias=False)
        nn.init.zeros_(self.mask_in.weight)

    @classmethod
    def for_sd15(cls, config: IGRConfig, model_channels: int) -> GarmNet:
        """GarmNet for ``config``'s sites on an SD1.5-layout UNet of ``model_channels``."""
        dims = {name: SITES_BY_NAME[name].channels(model_channels) for name in config.sites}
        return cls(dims, model_channels, config.garmnet_rank, config.scale)

    @property
    def site_names(self) -> tuple[str, ...]:
        """Sites whose attn1 carries GarmNet's LoRA."""
        return self.lora.site_names

    def mask_features(self, mask_latent: torch.Tensor) -> torch.Tensor:
        """mask_in(m): (B, 1, h, w) -> (B, C, h, w), in the mask's dtype and device."""
        weight = self.mask_in.weight
        out = F.conv2d(mask_latent.to(device=weight.device, dtype=weight.dtype), weight, padding=1)
        return out.to(mask_latent)

    def deltas(self, site_name: str, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ΔQ, ΔK, ΔV of GarmNet's LoRA at ``site_name`` for hidden states (B, L, C)."""
        slots = torch.zeros(hidden.shape[0], dtype=torch.long, device=hidden.device)
        return self.lora.deltas(site_name, hidden, slots)


def mask_to_latent(mask: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
    """The agnostic mask m (B, H, W) in [0, 1] on the latent grid: (B, 1, h, w), area-averaged."""
    batch = as_mask_batch(mask)  # (B, H, W)
    return F.interpolate(batch.unsqueeze(1), size=tuple(latent_hw), mode="area")  # (B, 1, h, w)


def five_channel_conv_in(conv_in: nn.Conv2d, garmnet: GarmNet) -> nn.Conv2d:
    """The paper's 5-channel first conv: conv_in's weights for E(p), ``mask_in``'s for m, conv_in's bias.

    conv5(concat(z, m)) equals conv_in(z) + garmnet.mask_features(m).
    """
    mask_in = garmnet.mask_in
    same_geometry = (
        conv_in.kernel_size == mask_in.kernel_size and conv_in.padding == mask_in.padding
        and conv_in.stride == mask_in.stride and conv_in.dilation == mask_in.dilation and conv_in.groups == 1
    )
    if not same_geometry or conv_in.out_channels != mask_in.out_channels:
        raise ReferenceInputError(
            f"GarmNet's mask_in (3×3, pad 1, {mask_in.out_channels} channels) does not fit conv_in "
            f"({conv_in.kernel_size}, pad {conv_in.padding}, {conv_in.out_channels} channels); "
            f"GarmNet needs an SD1.5-layout UNet of its model_channels"
        )
    conv = nn.Conv2d(conv_in.in_channels + MASK_CHANNELS, conv_in.out_channels, conv_in.kernel_size,
                     padding=conv_in.padding, bias=conv_in.bias is not None)
    conv = conv.to(device=conv_in.weight.device, dtype=conv_in.weight.dtype)
    with torch.no_grad():
        weight = torch.cat([conv_in.weight, mask_in.weight.to(conv_in.weight)], dim=1)  # (C, 5, 3, 3)
        conv.weight.copy_(weight)
        if conv_in.bias is not None:
            conv.bias.copy_(conv_in.bias)
    return conv
