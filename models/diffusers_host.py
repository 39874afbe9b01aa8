"""The diffusers host: reference attention as attention processors on ``UNet2DConditionModel``.

``train/`` trains with this host; the ComfyUI nodes run the same math through patches
(nodes/reference_patch.py). Both call ReferenceRun.read with already-projected q/k/v.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import UnsupportedModelError
from .reference_attention import multihead_attention
from .reference_bank import ReferenceBank
from .reference_config import ReferenceConfig
from .reference_projections import ReferenceProjections
from .reference_run import ReferenceRun
from .sites import SITES_BY_NAME, AttentionSite


class ReferenceAttnProcessor:
    """Processor for one SD1.5 attn1 site: stores its input while the host writes, reads the bank
    while a run is active, and otherwise defers to the layer's original processor unchanged.

    Args:
        site: the attention site this processor sits on.
        host: the host whose ``writing`` bank / ``run`` it consults.
        original: the processor it replaced (used for every unpatched call).
    """

    def __init__(self, site: AttentionSite, host: "DiffusersReferenceHost", original) -> None:
        self.site = site
        self.host = host
        self.original = original

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        host = self.host
        if host.writing is not None:
            host.writing.store(self.site, hidden_states)
        run = host.run
        if (
            host.writing is not None
            or run is None
            or encoder_hidden_states is not None
            or run.strength_at(self.site) == 0.0
        ):
            return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)

        q = attn.to_q(hidden_states)
        k = attn.to_k(hidden_states)
        v = attn.to_v(hidden_states)
        k_ref, v_ref = run.reference_kv(self.site, lambda states: (attn.to_k(states), attn.to_v(states)))

        def plain(q_: torch.Tensor, k_: torch.Tensor, v_: torch.Tensor) -> torch.Tensor:
            return multihead_attention(q_, k_, v_, attn.heads)

        out = run.read(self.site, q, k, v, k_ref, v_ref, attn.heads, plain)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


def check_sd15_attention(attn, site: AttentionSite) -> None:
    """Refuse attention layers whose processor path we do not reproduce (not SD1.5's attn1)."""
    unusual = [
        name
        for name in ("group_norm", "spatial_norm", "norm_q", "norm_k", "norm_cross")
        if getattr(attn, name, None) is not None
    ]
    if unusual or getattr(attn, "residual_connection", False) or getattr(attn, "rescale_output_factor", 1.0) != 1.0:
        raise UnsupportedModelError(
            f"attention at {site.diffusers_attn1} is not an SD1.5 self-attention "
            f"(has {unusual or 'a residual/rescaled output'}); reference attention needs an SD1.5 UNet"
        )


def sd15_attn1_key(site: AttentionSite, processors, modules, system: str) -> str:
    """The ``attn_processors`` key of ``site``'s self-attention, once it is checked to be SD1.5's;
    ``system`` names what needs it in the error."""
    key = f"{site.diffusers_attn1}.processor"
    if key not in processors:
        raise UnsupportedModelError(
            f"the UNet has no self-attention at {site.diffusers_attn1}; {system} needs the SD1.5 block layout "
            f"(16 self-attention sites)"
        )
    check_sd15_attention(modules[site.diffusers_attn1], site)
    return key


class DiffusersReferenceHost:
    """Installs ReferenceAttnProcessors on the enabled attn1 sites of a diffusers SD1.5 UNet.

    Use as a context manager (processors are restored on exit)::

        with DiffusersReferenceHost(unet, config) as host:
            bank = host.capture(ref_latents, torch.zeros(1), text)
            run = host.new_run(bank)
            noise_pred = host.forward(run, latents, t, text, cond_or_uncond=[1, 0]).sample

    Args:
        unet: a ``UNet2DConditionModel`` with the SD1.5 block layout (any width).
        config: the reference settings (site weights decide which sites get processors).
        projections: learned W'k, W'v for CROSS mode; None uses each layer's own Wk, Wv.
    """

    def __init__(self, unet, config: ReferenceConfig, projections: ReferenceProjections | None = None) -> None:
        self.unet = unet
        self.config = config
        self.projections = projections
        self.writing: ReferenceBank | None = None
        self.run: ReferenceRun | None = None
        self._original_processors: dict | None = None

    def install(self) -> None:
        """Swap in the processors (idempotent)."""
        if self._original_processors is not None:
            return
        original = self.unet.attn_processors
        replaced = dict(original)
        replaced.update(self.processors(original, dict(self.unet.named_modules())))
        self.unet.set_attn_processor(replaced)
        self._original_processors = original

    def processors(self, original: dict, modules: dict) -> dict:
        """The processors to swap in, by ``attn_processors`` key, given the UNet's current processors
        and its modules by path. A system's host (IGR, TruePose) returns its own."""
        installed = {}
        for name in self.config.enabled_site_names:
            site = SITES_BY_NAME[name]
            key = sd15_attn1_key(site, original, modules, "reference attention")
            installed[key] = ReferenceAttnProcessor(site, self, original[key])
        return installed

    def remove(self) -> None:
        """Restore the processors that were there before ``install``."""
        if self._original_processors is not None:
            self.unet.set_attn_processor(self._original_processors)
            self._original_processors = None

    def __enter__(self) -> "DiffusersReferenceHost":
        self.install()
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def capture(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor, keep_grad: bool = False) -> ReferenceBank:
        """Run the UNet over the reference latent ``sample`` and return the bank of its attn1 inputs."""
        bank = ReferenceBank(keep_grad=keep_grad)
        self.writing = bank
        try:
            self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states)
        finally:
            self.writing = None
        return bank

    def new_run(self, bank: ReferenceBank, mask: torch.Tensor | None = None) -> ReferenceRun:
        """A run reading ``bank`` (optionally only inside ``mask`` (B_m, H, W))."""
        run = ReferenceRun(self.config, mask=mask, projections=self.projections)
        run.set_bank(bank)
        return run

    def forward(
        self,
        run: ReferenceRun,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        cond_or_uncond: Sequence[int] = (0,),
        active: bool = True,
        **unet_kwargs,
    ):
        """One UNet call reading the run's bank. ``cond_or_uncond`` describes the batch's CFG
        chunks exactly as in ComfyUI (e.g. [1, 0] for uncond then cond)."""
        run.begin_call(sample.shape[0], cond_or_uncond, tuple(sample.shape[-2:]), active)
        self.run = run
        try:
            return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, **unet_kwargs)
        finally:
            self.run = None
