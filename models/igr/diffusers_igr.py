"""IGR on a diffusers SD1.5 UNet (training and equivalence tests; ComfyUI runs the same math through
patches on the user's MODEL, nodes/igr_*.py).

GarmNet's pass: one UNet call at t = GARMNET_TIMESTEP over E(p) with the category prompt; conv_in's
output gets + mask_in(m) (a forward hook, = the paper's 5-channel conv), every attn1 banks its input
n = norm1(x) and adds GarmNet's LoRA deltas to q/k/v. The denoiser's calls then read the bank with the
foundation's CONCAT processor (eq. 4) and add the IP-Adapter term beside attn2 (eq. 3).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..diffusers_host import (
    DiffusersReferenceHost,
    ReferenceAttnProcessor,
    sd15_attn1_key,
)
from ..errors import ReferenceInputError, UnsupportedModelError
from ..reference_attention import multihead_attention
from ..reference_bank import ReferenceBank
from ..reference_config import ReferenceConfig
from ..sites import SITES_BY_NAME, AttentionSite, sites_named
from .garmnet import GARMNET_TIMESTEP, GarmNet
from .igr_run import IGRRun
from .ip_adapter import IPAdapter, ip_attention
from .ip_layout import diffusers_attn2


class IGRSelfAttnProcessor(ReferenceAttnProcessor):
    """attn1 of one site: in GarmNet's pass bank n (if the site is read) and attend with Ŵ + ΔŴ;
    in a denoiser call the foundation's read; otherwise the original processor."""

    def __init__(self, site: AttentionSite, host: DiffusersIGRHost, original, banked: bool) -> None:
        super().__init__(site, host, original)
        self.banked = banked

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        host = self.host
        bank = host.garmnet_bank
        if bank is None:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        if self.banked:
            bank.store(self.site, hidden_states)
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        if self.site.name in host.garmnet.site_names:
            dq, dk, dv = host.garmnet.deltas(self.site.name, hidden_states)
            q, k, v = q + dq, k + dk, v + dv
        out = multihead_attention(q, k, v, attn.heads)
        return attn.to_out[1](attn.to_out[0](out))


class IGRCrossAttnProcessor:
    """attn2 of one site: Attn(Q, K_c, V_c) + λ_ip·Attn(Q, K_ll, V_ll) on the run's reading rows."""

    def __init__(self, site: AttentionSite, host: DiffusersIGRHost, original) -> None:
        self.site = site
        self.host = host
        self.original = original

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        run = self.host.run
        if run is None or encoder_hidden_states is None or run.ip_strength_at(self.site) == 0.0:
            return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        q = attn.to_q(hidden_states)
        text_out = multihead_attention(q, attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states), attn.heads)
        out = run.ip_read(self.site, q, text_out, attn.heads, ip_attention)
        return attn.to_out[1](attn.to_out[0](out))


def _check_sd15_cross_attention(attn, path: str) -> None:
    unusual = [name for name in ("group_norm", "spatial_norm", "norm_q", "norm_k", "norm_cross") if getattr(attn, name, None) is not None]
    if unusual or getattr(attn, "residual_connection", False) or getattr(attn, "rescale_output_factor", 1.0) != 1.0:
        raise UnsupportedModelError(f"attention at {path} is not an SD1.5 cross-attention (has {unusual or 'a residual/rescaled output'})")


class DiffusersIGRHost(DiffusersReferenceHost):
    """GarmNet's pass and the GarmFus denoiser on one diffusers SD1.5 UNet (GarmNet shares its weights).

    Use as a context manager (processors restored on exit)::

        with DiffusersIGRHost(unet, garmnet, ip_adapter, ReferenceConfig(uncond=UncondPolicy.NONE)) as host:
            bank = host.garmnet_pass(person_latent, mask_to_latent(mask, hw), category_context)
            run = host.new_run(bank, ip_adapter.tokens(image_embeds), ip_strength=1.0)
            eps = host.forward(run, noisy, t, context, cond_or_uncond=[1, 0]).sample

    Args:
        unet: the denoiser (any SD1.5-layout ``UNet2DConditionModel``, with its LoRA if trained so).
        garmnet: GarmNet's own weights; None = no high-level path (IP-only).
        ip_adapter: the low-level path; None = no IP term.
        config: the high-level read (CONCAT, strength, sites, schedule, CFG policy).
    """

    def __init__(self, unet, garmnet: GarmNet | None, ip_adapter: IPAdapter | None, config: ReferenceConfig) -> None:
        super().__init__(unet, config)
        self.garmnet = garmnet
        self.ip_adapter = ip_adapter
        self.garmnet_bank: ReferenceBank | None = None

    def processors(self, original: dict, modules: dict) -> dict:
        """The attn1 processors (read and LoRA sites) and the attn2 ones (IP sites)."""
        replaced = {}
        read_sites = set(self.config.enabled_site_names)
        lora_sites = set(self.garmnet.site_names) if self.garmnet is not None else set()
        for site in sites_named(tuple(read_sites | lora_sites)):
            key = sd15_attn1_key(site, original, modules, "IGR")
            replaced[key] = IGRSelfAttnProcessor(site, self, original[key], banked=site.name in read_sites)
        for name in self.ip_adapter.site_names if self.ip_adapter is not None else ():
            path = diffusers_attn2(SITES_BY_NAME[name])
            if f"{path}.processor" not in original:
                raise UnsupportedModelError(f"the UNet has no cross-attention at {path}; IGR needs SD1.5's layout")
            _check_sd15_cross_attention(modules[path], path)
            replaced[f"{path}.processor"] = IGRCrossAttnProcessor(SITES_BY_NAME[name], self, original[f"{path}.processor"])
        return replaced

    def garmnet_pass(
        self, person_latent: torch.Tensor, mask_latent: torch.Tensor, context: torch.Tensor, keep_grad: bool = False
    ) -> ReferenceBank:
        """GarmNet over E(p) (B, 4, h, w) and m (B or 1, 1, h, w) with the category prompt's embedding
        ``context`` (B or 1, L, D); returns the bank of every read site's attn1 input."""
        if self.garmnet is None:
            raise ReferenceInputError("this IGR host has no GarmNet (IP-only); build it with GarmNet's weights")
        if self._original_processors is None:
            raise RuntimeError("use DiffusersIGRHost as a context manager")
        batch, _, height, width = person_latent.shape
        if mask_latent.ndim != 4 or mask_latent.shape[1] != 1 or tuple(mask_latent.shape[-2:]) != (height, width) \
                or mask_latent.shape[0] not in (1, batch):
            raise ReferenceInputError(
                f"GarmNet's mask must be (1 or {batch}, 1, {height}, {width}) to match the person latent; got "
                f"{tuple(mask_latent.shape)} (use mask_to_latent)"
            )
        if context.shape[0] not in (1, batch):
            raise ReferenceInputError(f"the category context batch is {context.shape[0]}; need 1 or {batch}")
        mask_latent = mask_latent.expand(batch, -1, -1, -1)
        context = context.expand(batch, -1, -1)

        def add_mask(module, inputs, output):
            return output + self.garmnet.mask_features(mask_latent)

        bank = ReferenceBank(keep_grad=keep_grad)
        hook = self.unet.conv_in.register_forward_hook(add_mask)
        self.garmnet_bank = bank
        try:
            timestep = torch.full((batch,), float(GARMNET_TIMESTEP), device=person_latent.device)
            self.unet(person_latent, timestep, encoder_hidden_states=context)
        finally:
            self.garmnet_bank = None
            hook.remove()
        return bank

    def new_run(self, bank: ReferenceBank | None, ip_tokens: torch.Tensor | None = None, ip_strength: float = 1.0) -> IGRRun:
        """A run reading GarmNet's ``bank`` (None = IP-only) and the IP tokens F_ll (None = no IP term)."""
        run = IGRRun(self.config, self.ip_adapter, ip_tokens, ip_strength)
        if bank is not None:
            run.set_bank(bank)
        return run

    def forward(self, run: IGRRun, sample: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                cond_or_uncond: Sequence[int] = (0,), active: bool = True, **unet_kwargs):
        """One denoiser call reading the run (``cond_or_uncond`` as in ComfyUI, e.g. [1, 0])."""
        return super().forward(run, sample, timestep, context, cond_or_uncond, active, **unet_kwargs)
