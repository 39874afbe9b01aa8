"""Garment network files in their published layouts at small width, for the tests: IMAGDressing-v1's
``{"module": …}`` dict (``ref_unet.`` / ``proj.`` / ``adapter_modules.``) and MagicClothing's bare
diffusers UNet. Random tensors under the published key names; nothing here is fetched code."""

from __future__ import annotations

import torch


def published_resampler_state(dim, depth, dim_head, heads, num_queries, embedding_dim, output_dim, ff_mult, seed=0):
    """Random tensors under the public Resampler's key names (adapter/resampler.py, no pos_emb)."""
    g = torch.Generator().manual_seed(seed)
    inner = dim_head * heads

    def rnd(*shape, std=0.2):
        return torch.randn(*shape, generator=g) * std

    state = {"latents": rnd(1, num_queries, dim, std=1.0), "proj_in.weight": rnd(dim, embedding_dim),
             "proj_in.bias": rnd(dim), "proj_out.weight": rnd(output_dim, dim), "proj_out.bias": rnd(output_dim),
             "norm_out.weight": 1 + rnd(output_dim), "norm_out.bias": rnd(output_dim)}
    for i in range(depth):
        p = f"layers.{i}."
        for norm in ("norm1", "norm2"):
            state[f"{p}0.{norm}.weight"], state[f"{p}0.{norm}.bias"] = 1 + rnd(dim), rnd(dim)
        state[f"{p}0.to_q.weight"], state[f"{p}0.to_kv.weight"] = rnd(inner, dim), rnd(2 * inner, dim)
        state[f"{p}0.to_out.weight"] = rnd(dim, inner)
        state[f"{p}1.0.weight"], state[f"{p}1.0.bias"] = 1 + rnd(dim), rnd(dim)
        state[f"{p}1.1.weight"], state[f"{p}1.3.weight"] = rnd(dim * ff_mult, dim), rnd(dim, dim * ff_mult)
    return state


def adapter_state(unet, seed=0):
    """to_k_ref / to_v_ref at the attn1 processors' positions in diffusers' own attn_processors order."""
    g = torch.Generator().manual_seed(seed)
    modules = dict(unet.named_modules())
    state = {}
    for index, name in enumerate(unet.attn_processors):
        if name.endswith("attn1.processor"):
            width = modules[name[: -len(".processor")]].to_k.weight.shape[0]
            state[f"adapter_modules.{index}.to_k_ref.weight"] = torch.randn(width, width, generator=g) * 0.2
            state[f"adapter_modules.{index}.to_v_ref.weight"] = torch.randn(width, width, generator=g) * 0.2
    return state


def perturbed_state(unet, seed: int, std: float = 0.02) -> dict[str, torch.Tensor]:
    """A diffusers UNet's state dict with small seeded noise added: a garment UNet that shares the
    denoiser's layout but not its weights."""
    g = torch.Generator().manual_seed(seed)
    return {key: (value + std * torch.randn(value.shape, generator=g)).contiguous() for key, value in unet.state_dict().items()}


def imagdressing_state(garment_unet: dict[str, torch.Tensor], denoiser, resampler: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """The module dict IMAGDressing's train.py saves, without the frozen ``unet.*`` copy (which the
    loader ignores): ``ref_unet.*``, ``proj.*`` and the denoiser's ``adapter_modules.{i}.to_{k,v}_ref``."""
    state = {f"ref_unet.{key}": value for key, value in garment_unet.items()}
    state.update({f"proj.{key}": value for key, value in published_resampler_state(**resampler, seed=seed).items()})
    state.update(adapter_state(denoiser, seed=seed + 1))
    return state
