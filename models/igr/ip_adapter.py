"""IGR's low-level garment extractor (eq. 3): an IP-Adapter beside every attn2.

Attn(Q, K_c, V_c) + λ_ip·Attn(Q, K_ll, V_ll), K_ll = to_k_ip(F_ll), V_ll = to_v_ip(F_ll),
F_ll = ImageProjection(CLIP image_embeds of p_g). The module's state_dict keys are the standard SD1.5
IP-Adapter layout (ip_layout.py), so a community ip-adapter_sd15 file initialises this path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import WeightFileError
from ..reference_attention import multihead_attention
from ..sites import SITES_BY_NAME, sites_named
from ..weight_format import BaseModel
from .config import IGRConfig
from .ip_layout import (
    IMAGE_PROJ_PREFIX,
    IP_PREFIX,
    diffusers_attn2,
    standard_index,
    standard_ip_keys,
)

logger = logging.getLogger("atelier.igr")


class IPAdapterFileError(WeightFileError):
    """An IP-Adapter file is missing, unreadable, of another layout, or made for other widths."""


class ImageProjection(nn.Module):
    """CLIP image embedding -> N context tokens: ``proj`` Linear(E, N·D), ``norm`` LayerNorm(D)."""

    def __init__(self, embed_dim: int, tokens: int, context_dim: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.context_dim = context_dim
        self.proj = nn.Linear(embed_dim, tokens * context_dim)
        self.norm = nn.LayerNorm(context_dim)

    def forward(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """(B, E) -> (B, N, D)."""
        flat = self.proj(image_embeds)  # (B, N·D)
        return self.norm(flat.reshape(-1, self.tokens, self.context_dim))  # (B, N, D)


class IPProjection(nn.Module):
    """to_k_ip, to_v_ip of one cross-attention: Linear(D, C, bias=False) each."""

    def __init__(self, context_dim: int, width: int) -> None:
        super().__init__()
        self.to_k_ip = nn.Linear(context_dim, width, bias=False)
        self.to_v_ip = nn.Linear(context_dim, width, bias=False)


class IPAdapter(nn.Module):
    """Image projection + per-site K/V projections, keyed as the standard SD1.5 IP-Adapter file.

    Args:
        site_dims: site name -> width C of that site's cross-attention.
        embed_dim: E, the CLIP image-embedding width.
        tokens: N, image tokens.
        context_dim: D, the text-context width (768 in SD1.5).
    """

    def __init__(self, site_dims: Mapping[str, int], embed_dim: int, tokens: int, context_dim: int) -> None:
        super().__init__()
        self.site_names: tuple[str, ...] = tuple(site.name for site in sites_named(tuple(site_dims)))
        self.image_proj = ImageProjection(embed_dim, tokens, context_dim)
        self.ip_adapter = nn.ModuleDict(
            {str(standard_index(name)): IPProjection(context_dim, site_dims[name]) for name in self.site_names}
        )

    @classmethod
    def for_sd15(cls, config: IGRConfig, base: BaseModel) -> IPAdapter:
        """The adapter for ``config``'s sites on ``base`` (D = base.context_dim)."""
        dims = {name: SITES_BY_NAME[name].channels(base.model_channels) for name in config.sites}
        return cls(dims, config.image_embed_dim, config.ip_tokens, base.context_dim)

    def init_from_cross_attention(self, unet: nn.Module) -> None:
        """to_k_ip, to_v_ip of every site copied from that layer's own attn2 Wk, Wv (IP-Adapter's
        initialisation, so training starts with the image tokens read like text tokens); ``unet``
        is a diffusers SD1.5 UNet, LoRA-wrapped or not."""
        modules = dict(unet.named_modules())
        with torch.no_grad():
            for name in self.site_names:
                attention = modules[diffusers_attn2(SITES_BY_NAME[name])]
                projection = self.ip_adapter[str(standard_index(name))]
                projection.to_k_ip.weight.copy_(attention.to_k.weight)
                projection.to_v_ip.weight.copy_(attention.to_v.weight)

    def tokens(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """F_ll for CLIP image embeddings: (B, E) -> (B, N, D)."""
        weight = self.image_proj.proj.weight
        return self.image_proj(image_embeds.to(device=weight.device, dtype=weight.dtype))

    def kv(self, site_name: str, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K_ll, V_ll at ``site_name``: (B, N, D) -> (B, N, C) each."""
        projection = self.ip_adapter[str(standard_index(site_name))]
        cast = tokens.to(device=projection.to_k_ip.weight.device, dtype=projection.to_k_ip.weight.dtype)
        return projection.to_k_ip(cast), projection.to_v_ip(cast)


def ip_attention(q: torch.Tensor, k_ip: torch.Tensor, v_ip: torch.Tensor, heads: int) -> torch.Tensor:
    """Attn(Q, K_ll, V_ll) over ``heads`` heads: q (R, T, C), k/v (R, N, C) -> (R, T, C)."""
    return multihead_attention(q, k_ip, v_ip, heads)


def _flatten(path: str, loaded: Mapping) -> dict[str, torch.Tensor]:
    """{"image_proj": {...}, "ip_adapter": {...}} (or already flat) -> flat standard keys."""
    flat: dict[str, torch.Tensor] = {}
    for key, value in loaded.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{inner}": tensor for inner, tensor in value.items()})
        elif isinstance(value, torch.Tensor):
            flat[key] = value
        else:
            raise IPAdapterFileError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; not an IP-Adapter file")
    if not any(key.startswith(IP_PREFIX) for key in flat):
        raise IPAdapterFileError(f"{path}: no 'ip_adapter.*' keys; not an IP-Adapter file (keys: {sorted(flat)[:5]})")
    return flat


def read_ip_adapter_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a standard IP-Adapter file under flat keys: a torch .bin/.pt (nested dicts) or a .safetensors."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise IPAdapterFileError(f"IP-Adapter file {path} does not exist")
    try:
        if path.endswith(".safetensors"):
            loaded = load_file(path, device="cpu")
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise IPAdapterFileError(f"{path} is not a readable IP-Adapter file ({error})") from error
    if not isinstance(loaded, Mapping):
        raise IPAdapterFileError(f"{path} holds a {type(loaded).__name__}, not a dict of tensors")
    return _flatten(path, loaded)


def write_standard_ip_adapter(module: IPAdapter, path: str | os.PathLike) -> None:
    """Write ``module`` as a flat standard SD1.5 IP-Adapter .safetensors (the keys other IP-Adapter
    loaders read: ``image_proj.*``, ``ip_adapter.{i}.to_k_ip/to_v_ip.weight``)."""
    state = {key: value.detach().to("cpu").contiguous() for key, value in module.state_dict().items()}
    save_file(state, os.fspath(path), metadata={"format": "pt"})


def load_standard_ip_adapter(module: IPAdapter, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy a standard-layout ``state`` into ``module``; errors name ``source`` and the key to fix.

    Keys of standard sites the module does not carry are skipped (an adapter on a subset of sites).
    """
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    if missing:
        hint = ""
        if IMAGE_PROJ_PREFIX + "proj.weight" in missing and any(k.startswith(IMAGE_PROJ_PREFIX) for k in state):
            hint = " (its image projection is another kind, e.g. IP-Adapter Plus; only the basic ip-adapter_sd15 layout fits)"
        raise IPAdapterFileError(f"{source}: {len(missing)} missing key(s), e.g. {missing[:4]}{hint}")
    unexpected = sorted(set(state) - set(expected))
    foreign = [key for key in unexpected if key not in standard_ip_keys()]
    if foreign:
        raise IPAdapterFileError(f"{source}: {len(foreign)} unexpected key(s), e.g. {foreign[:4]}; not a standard SD1.5 IP-Adapter")
    if unexpected:
        logger.info("%s: skipping %d IP-Adapter tensors of sites this adapter does not use", source, len(unexpected))
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise IPAdapterFileError(
                f"{source}: {key} is {tuple(state[key].shape)}, expected {tuple(value.shape)}; the file was made "
                f"for another base model or CLIP vision width"
            )
    module.load_state_dict({key: state[key].to(value) for key, value in expected.items()}, strict=True)
