"""TruePose on a diffusers SD1.5 UNet (training and equivalence tests; ComfyUI runs the same math
through patches on the user's MODEL).

SourceNet = the TargetNet's own UNet weights (as loaded, LoRA included): one pass per sampling run at
t = 0 over z_s = E(I_s) banks every HPFA site's attn1 input F' (the foundation's ``capture``). A fully
trained separate SourceNet is a later option. The TargetNet's calls then run TruePoseRun's fused
attn1 at the HPFA sites and add the pose encoder's features after conv_in (a forward hook), both on
the rows that read the source only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..diffusers_host import (
    DiffusersReferenceHost,
    ReferenceAttnProcessor,
    sd15_attn1_key,
)
from ..reference_attention import multihead_attention
from ..reference_bank import ReferenceBank
from ..reference_config import ReadMode, ReferenceConfig, UncondPolicy
from ..sites import sites_named
from .caa import CAAProjections
from .config import TruePoseConfig
from .hpfa import HPFAProjections
from .pose_encoder import PoseEncoder
from .truepose_run import TruePoseInputError, TruePoseRun, TruePoseSource

SOURCE_TIMESTEP = 0.0


def default_reference_config(truepose: TruePoseConfig) -> ReferenceConfig:
    """CROSS read at every HPFA site with weight 1, s_hpfa = 1, unconditional chunk unpatched."""
    return ReferenceConfig(mode=ReadMode.CROSS, site_weights={name: 1.0 for name in truepose.hpfa_sites},
                           uncond=UncondPolicy.NONE)


class TruePoseAttnProcessor(ReferenceAttnProcessor):
    """attn1 of one HPFA site: banks F' in SourceNet's pass; in a TargetNet call fuses HPFA/CAA into
    the reading rows; otherwise the original processor."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        host = self.host
        if host.writing is not None:
            host.writing.store(self.site, hidden_states)
        run = host.run
        if host.writing is not None or run is None or encoder_hidden_states is not None or not run.patches(self.site):
            return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)

        def plain(q_: torch.Tensor, k_: torch.Tensor, v_: torch.Tensor) -> torch.Tensor:
            return multihead_attention(q_, k_, v_, attn.heads)

        out = run.fuse(self.site, q, k, v, attn.heads, plain)
        return attn.to_out[1](attn.to_out[0](out))


class DiffusersTruePoseHost(DiffusersReferenceHost):
    """SourceNet's pass and the TruePose TargetNet on one diffusers SD1.5 UNet (shared weights).

    Use as a context manager (processors restored on exit)::

        with DiffusersTruePoseHost(unet, truepose, hpfa, caa, pose_encoder) as host:
            bank = host.source_pass(source_latent, source_context)
            run = host.new_run(bank, TruePoseSource(mask, source_latent.shape[-2:], regions, clip), skeleton)
            eps = host.forward(run, noisy, t, context, cond_or_uncond=[1, 0]).sample

    Args:
        unet: TargetNet (and SourceNet): an SD1.5-layout ``UNet2DConditionModel``.
        truepose: the model's settings.
        hpfa: HPFA projections for ``truepose.hpfa_sites``.
        caa: CAA projections; None = no CAA term.
        pose_encoder: the pose encoder; None = no pose features.
        config: schedule, CFG policy, site weights, s_hpfa; None = :func:`default_reference_config`.
    """

    def __init__(self, unet, truepose: TruePoseConfig, hpfa: HPFAProjections, caa: CAAProjections | None = None,
                 pose_encoder: PoseEncoder | None = None, config: ReferenceConfig | None = None) -> None:
        super().__init__(unet, default_reference_config(truepose) if config is None else config)
        self.truepose = truepose
        self.hpfa = hpfa
        self.caa = caa
        self.pose_encoder = pose_encoder
        self._site_heads: dict[str, int] = {}

    def processors(self, original: dict, modules: dict) -> dict:
        """The attn1 processors of the HPFA sites (and each site's head count, for the run)."""
        replaced = {}
        for site in sites_named(self.truepose.hpfa_sites):
            key = sd15_attn1_key(site, original, modules, "TruePose")
            replaced[key] = TruePoseAttnProcessor(site, self, original[key])
            self._site_heads[site.name] = modules[site.diffusers_attn1].heads
        return replaced

    def source_pass(self, source_latent: torch.Tensor, context: torch.Tensor, keep_grad: bool = False) -> ReferenceBank:
        """SourceNet over z_s (B_s, 4, h, w) at t = 0 with ``context`` (B_s or 1, L, D): the bank of F'."""
        if self._original_processors is None:
            raise RuntimeError("use DiffusersTruePoseHost as a context manager")
        batch = source_latent.shape[0]
        if context.shape[0] not in (1, batch):
            raise TruePoseInputError(f"the source context batch is {context.shape[0]}; need 1 or {batch}")
        timestep = torch.full((batch,), SOURCE_TIMESTEP, device=source_latent.device)
        return self.capture(source_latent, timestep, context.expand(batch, -1, -1), keep_grad=keep_grad)

    def new_run(self, bank: ReferenceBank, source: TruePoseSource, skeleton: torch.Tensor | None = None,
                caa_strength: float = 1.0) -> TruePoseRun:
        """A run reading SourceNet's ``bank`` with ``source``'s M (and CAA inputs), the pose encoder
        applied once to the target ``skeleton`` (B_p, 3, H, W) (None = no pose features)."""
        if self._original_processors is None:
            raise RuntimeError("use DiffusersTruePoseHost as a context manager")
        pose = None
        if skeleton is not None and self.pose_encoder is not None:
            pose = self.pose_encoder(skeleton)  # (B_p, C, H/8, W/8)
        run = TruePoseRun(self.config, self.truepose, self.hpfa, self._site_heads, source, self.caa, caa_strength, pose)
        run.set_bank(bank)
        return run

    def forward(self, run: TruePoseRun, sample: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                cond_or_uncond: Sequence[int] = (0,), active: bool = True, **unet_kwargs):
        """One TargetNet call (``cond_or_uncond`` as in ComfyUI, e.g. [1, 0]) with the pose hook on conv_in."""

        def add_pose(module, inputs, output):
            return run.add_pose(output)

        hook = self.unet.conv_in.register_forward_hook(add_pose)
        try:
            return super().forward(run, sample, timestep, context, cond_or_uncond, active, **unet_kwargs)
        finally:
            hook.remove()
