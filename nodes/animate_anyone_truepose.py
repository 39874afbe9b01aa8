"""TruePose's HPFA (§4.2, eq. 6–8) and CAA (§4.3, eq. 9) on top of AnimateAnyone's concat read.

AnimateAnyone's reference UNet plays TruePose's SourceNet: its bank (Encode AnimateAnyone Source)
is F', the attn1 input of every site at timestep 0. At each of the TruePose weights' HPFA sites the
denoiser's attn1 output becomes

    ConcatRead(Q, [K; K'], [V; V']) + s_hpfa·F̃ + s_caa·F̂      (on the rows that read the source)

where the first term is AnimateAnyone's published read, unchanged, and F̃, F̂ are TruePose's terms
computed by ``models.truepose.truepose_run.TruePoseRun`` from the same bank: H' = Softmax(A' ⊙ M')V'
with M the source parsing of the categories the target pose shows (``selected_masks``), K'_h, V'_h
of H' read by the layer's own Q, and CAA's K lowest-attended regions' CLIP embeddings. Without a
source parsing, M' ≡ 1 (eq. 7 as plain attention: the paper's "w/o HPFA" ablation B4) and CAA
cannot run. Off (both strengths 0, the default) nothing here is built and Apply AnimateAnyone
installs exactly the published path.

Both terms run on the conditional half only (UncondPolicy.NONE), the rows that read the bank.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import comfy.model_patcher
import torch

from ..models.errors import ReferenceInputError, UnsupportedModelError
from ..models.reference_bank import ReferenceBank
from ..models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from ..models.sites import SITES_BY_NAME
from ..models.truepose.caa import CAAProjections
from ..models.truepose.config import TruePoseConfig
from ..models.truepose.hpfa import HPFAProjections
from ..models.truepose.truepose_run import TruePoseRun, TruePoseSource
from .model_check import require_base
from .reference_patch import ReferenceReadPatch, run_for
from .truepose_inputs import target_poses
from .truepose_nodes import TruePoseWeights, selected_masks


@dataclass(frozen=True)
class TruePoseOnTop:
    """HPFA/CAA for one Apply AnimateAnyone: everything a run needs besides the bank it shares.

    Attributes:
        config: CROSS at the HPFA sites, ``strength`` = s_hpfa, AnimateAnyone's schedule window, UncondPolicy.NONE.
        settings: the weights' TruePoseConfig with the node's σ, δ, K (parsing guidance off without a parsing).
        hpfa, caa: the weights' projections (caa None = no CAA term).
        caa_strength: s_caa.
        source: M (B_m, H, W), the source latent size and CAA's region inputs, on the intermediate device.
        bank: the reference UNet's bank, one row per (source, target pose) pair when poses outnumber sources.
        site_heads: site name -> heads of that site's attn1 in the denoising UNet.
        patcher: the TruePose weights' ModelPatcher (loaded with the UNet).
    """

    config: ReferenceConfig
    settings: TruePoseConfig
    hpfa: HPFAProjections
    caa: CAAProjections | None
    caa_strength: float
    source: TruePoseSource
    bank: ReferenceBank
    site_heads: dict[str, int]
    patcher: comfy.model_patcher.ModelPatcher | None

    def new_run(self, device: torch.device) -> TruePoseRun:
        """A fresh TruePoseRun of one sampling run (the caller installs the bank)."""
        source = self.source
        on_device = replace(
            source, mask=source.mask.to(device),
            region_masks=None if source.region_masks is None else source.region_masks.to(device),
            clip_embeds=None if source.clip_embeds is None else source.clip_embeds.to(device),
        )
        return TruePoseRun(self.config, self.settings, self.hpfa, self.site_heads, on_device, self.caa,
                           self.caa_strength)


def _caa_inputs_ready(truepose: TruePoseWeights, source, caa_strength: float) -> bool:
    """Whether CAA runs; a CAA strength the inputs cannot serve is an error naming the input."""
    if caa_strength == 0:
        return False
    if not truepose.config.caa_sites:
        raise ReferenceInputError(f"'truepose' ('{truepose.name}') was trained without CAA; set 'caa_strength' to 0")
    if source.labels is None or source.clip_embeds is None:
        missing = "'source_parsing' and 'caa_clip_vision'" if source.labels is None else "'caa_clip_vision'"
        raise ReferenceInputError(
            f"'caa_strength' is above 0 but 'source' was encoded without {missing}; connect them to Atelier Encode "
            "AnimateAnyone Source, or set 'caa_strength' to 0"
        )
    width, expected = source.clip_embeds.shape[-1], truepose.config.clip_embed_dim
    if width != expected:
        raise UnsupportedModelError(
            f"the source's 'caa_clip_vision' gives {width}-wide image embeddings but 'truepose' ('{truepose.name}') "
            f"expects {expected}; load the CLIP vision model its CAA was trained with in Encode AnimateAnyone Source"
        )
    return True


def truepose_on_top(model, truepose: TruePoseWeights | None, source, target_pose, person: int, hpfa_strength: float,
                    caa_strength: float, sigma: float, delta: float, k: int, start_percent: float,
                    end_percent: float) -> TruePoseOnTop | None:
    """HPFA/CAA for Apply AnimateAnyone's inputs, or None when both strengths are 0 (the published path).

    M pairs each source with each target pose (``target_pose`` gives the visible categories even when a
    ready skeleton image is drawn), so one source read under several poses gets one bank row per pose.
    """
    if hpfa_strength == 0 and caa_strength == 0:
        return None
    if truepose is None:
        raise ReferenceInputError(
            "'hpfa_strength' or 'caa_strength' is above 0 but 'truepose' is not connected; connect Atelier Load "
            "TruePose, or set both to 0"
        )
    if source.latent_hw is None:
        raise ReferenceInputError("'source' holds no latent size; connect Atelier Encode AnimateAnyone Source")
    require_base(model, truepose.base, "truepose")  # the projections' widths follow the base's model_channels
    settings = replace(truepose.config, sigma=sigma, delta=delta, k=k)
    use_caa = _caa_inputs_ready(truepose, source, caa_strength)
    bank = source.bank
    if source.labels is None:
        settings = replace(settings, parsing_guidance=False)
        masks = torch.ones(1, 1, 1)  # (1, 1, 1): M is not read without parsing guidance (M' ≡ 1)
    else:
        masks = selected_masks(source.labels, target_poses(target_pose, person))  # (B_m, H, W)
        if masks.shape[0] > bank.batch:
            bank = bank.expanded(masks.shape[0])
    unet = model.model.diffusion_model
    site_heads = {name: unet.get_submodule(SITES_BY_NAME[name].comfy_attn1).heads for name in settings.hpfa_sites}
    config = ReferenceConfig(
        mode=ReadMode.CROSS, strength=hpfa_strength, site_weights={name: 1.0 for name in settings.hpfa_sites},
        start_percent=start_percent, end_percent=end_percent, uncond=UncondPolicy.NONE,
    )
    inputs = TruePoseSource(
        mask=masks, latent_hw=tuple(source.latent_hw),
        region_masks=source.region_masks if use_caa else None, clip_embeds=source.clip_embeds if use_caa else None,
    )
    return TruePoseOnTop(
        config=config, settings=settings, hpfa=truepose.modules["hpfa"],
        caa=truepose.modules["caa"] if use_caa else None, caa_strength=caa_strength if use_caa else 0.0,
        source=inputs, bank=bank, site_heads=site_heads, patcher=truepose.patcher,
    )


class AnimateAnyoneReadPatch(ReferenceReadPatch):
    """attn1 replace patch: AnimateAnyone's concat read, plus s_hpfa·F̃ + s_caa·F̂ on the reading rows at the
    sites where the run's HPFA/CAA are active (the concat read alone everywhere else)."""

    def __call__(self, q, k, v, extra_options):
        run = run_for(extra_options, self.run_key)
        parsing_run = getattr(run, "truepose_run", None)
        if parsing_run is None or not parsing_run.patches(self.site):
            return super().__call__(q, k, v, extra_options)

        def concat_read(q_, k_, v_):
            return ReferenceReadPatch.__call__(self, q_, k_, v_, extra_options)

        return parsing_run.fuse(self.site, q, k, v, extra_options["n_heads"], concat_read)
