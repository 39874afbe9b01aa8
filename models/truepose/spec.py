"""How a TruePose weight file is laid out (the ``SystemSpec`` to register in ``models.weight_systems``).

Components:
- ``hpfa`` (HPFAProjections: W^{Q'}, W^{K'}, W^{V'}, W^{K'_h}, W^{V'_h} per HPFA site) under ``truepose_hpfa.``;
- ``caa`` (CAAProjections: W^{Q̃}, W^{K^clip}, W^{V^clip} per CAA site) under ``truepose_caa.``;
- ``pose_encoder`` (PoseEncoder) under ``truepose_pose.``.
``atelier.config`` is the TruePoseConfig as JSON. SourceNet/TargetNet updates (LoRA or full
fine-tune) are separate files for the core loaders, as for IGR.
"""

from __future__ import annotations

from torch import nn

from ..weight_format import BaseModel, SystemSpec
from .caa import CAAProjections
from .config import TruePoseConfig
from .hpfa import HPFAProjections
from .pose_encoder import PoseEncoder

SYSTEM_NAME = "truepose"


def build_truepose(config: dict, base: BaseModel) -> dict[str, nn.Module]:
    """HPFA and CAA projections and the pose encoder with the shapes of ``config`` on ``base``."""
    parsed = TruePoseConfig.from_dict(config)
    return {
        "hpfa": HPFAProjections.for_sd15(base.model_channels, parsed.hpfa_sites),
        "caa": CAAProjections.for_sd15(base.model_channels, parsed.caa_sites, parsed.clip_embed_dim),
        "pose_encoder": PoseEncoder(base.model_channels, parsed.pose_encoder_widths, parsed.pose_channels,
                                    parsed.latent_factor),
    }


def default_truepose_config(base: BaseModel) -> dict:
    return TruePoseConfig().to_dict()


TRUEPOSE = SystemSpec(
    name=SYSTEM_NAME,
    prefixes={"hpfa": "truepose_hpfa.", "caa": "truepose_caa.", "pose_encoder": "truepose_pose."},
    signature={"hpfa": ".weight", "pose_encoder": "conv_out.weight"},  # CAA is empty in a file trained without it
    build=build_truepose,
    default_config=default_truepose_config,
)
