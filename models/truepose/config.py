"""What a TruePose weight file holds: HPFA and CAA sites, eq. 6's σ and δ, CAA's K, the encoder widths.

Default sites: HPFA and CAA both sit on the **decoder** ("output", 9 sites, levels 2, 1, 0). The paper
says only that the modules go "into different layers of the TargetNet"; we choose the decoder because
(1) eq. 6 applies the parsing mask M on each layer's token grid, and the middle block (level 3: 4×3
tokens at 256×176) is too coarse for a face or a sleeve to own a token, while the encoder's level-2/3
grids are the same size as the decoder's but carry features of the noisy *target* that are not yet
pose-aligned; (2) the decoder is where SD1.5 synthesises texture and faces, the detail TruePose is
about (CAA's stated purpose is under-represented local regions "particularly the face"); (3) HPFA's
source-side A' is T'×T' per site and is computed once per sampling run, so the decoder's 9 sites cost
about half of all 16. CAA reads the same site's A' (eq. 9 ranks regions by A'), so every CAA site
must also be an HPFA site.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import ReferenceInputError
from ..sites import SITE_GROUPS, SITES_BY_NAME
from .pose_encoder import LATENT_FACTOR, LATENT_FACTORS

# The paper's §4.2 and §4.4 values.
PAPER_SIGMA = 0.3
PAPER_DELTA = 0.6
PAPER_K = 2
PAPER_GUIDANCE = 3.5
PAPER_CONDITION_DROPOUT = 0.3


class TruePoseConfigError(ReferenceInputError):
    """A TruePose config (or the config block of a TruePose weight file) has a bad field."""


@dataclass(frozen=True)
class TruePoseConfig:
    """Settings of one TruePose model.

    Args:
        hpfa_sites: sites with human-parsing-guided fusion attention (eq. 6–8).
        caa_sites: sites with CLIP-guided attention alignment (eq. 9); a subset of ``hpfa_sites``.
        sigma: σ of eq. 6 (weights outside the selected parsing mask M).
        delta: δ of eq. 6 (weights inside M).
        k: K, the number of lowest-attention parsing regions whose CLIP embeddings CAA reads.
        clip_embed_dim: width E of one region's CLIP image embedding (1024 for ViT-H/14).
        pose_encoder_widths: widths of the pose encoder's first three convolutions; the fourth
            maps to the UNet's ``model_channels``.
        pose_channels: channels of the target skeleton image (3, RGB).
        latent_factor: the VAE's down-sampling f, which the pose encoder strides to (8: SD1.5;
            4: the toy32 substrate's pixel VAE). It changes strides only, not the file's tensors.
        parsing_guidance: False = M' ≡ 1 in eq. 7 (the fusion of eq. 7–8 without the parsing
            reweighting; the paper's ablation B4 "w/o HPFA", CAA kept).
    """

    hpfa_sites: tuple[str, ...] = SITE_GROUPS["output"]
    caa_sites: tuple[str, ...] = SITE_GROUPS["output"]
    sigma: float = PAPER_SIGMA
    delta: float = PAPER_DELTA
    k: int = PAPER_K
    clip_embed_dim: int = 1024
    pose_encoder_widths: tuple[int, ...] = (16, 32, 96)
    pose_channels: int = 3
    parsing_guidance: bool = True
    latent_factor: int = LATENT_FACTOR

    def __post_init__(self) -> None:
        for name in ("hpfa_sites", "caa_sites"):
            sites = getattr(self, name)
            unknown = [site for site in sites if site not in SITES_BY_NAME]
            if unknown or len(set(sites)) != len(sites):
                raise TruePoseConfigError(
                    f"TruePoseConfig.{name} has unknown or repeated names {unknown or list(sites)}; "
                    f"valid: {list(SITES_BY_NAME)}"
                )
        if not self.hpfa_sites:
            raise TruePoseConfigError("TruePoseConfig.hpfa_sites must name at least one site")
        outside = [site for site in self.caa_sites if site not in self.hpfa_sites]
        if outside:
            raise TruePoseConfigError(
                f"TruePoseConfig.caa_sites {outside} are not in hpfa_sites; CAA ranks regions by that site's HPFA map A'"
            )
        for name in ("sigma", "delta"):
            if getattr(self, name) < 0:
                raise TruePoseConfigError(f"TruePoseConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("k", "clip_embed_dim", "pose_channels"):
            if getattr(self, name) < 1:
                raise TruePoseConfigError(f"TruePoseConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.latent_factor not in LATENT_FACTORS:
            raise TruePoseConfigError(
                f"TruePoseConfig.latent_factor must be one of {list(LATENT_FACTORS)}, got {self.latent_factor}"
            )
        if len(self.pose_encoder_widths) != 3 or min(self.pose_encoder_widths) < 1:
            raise TruePoseConfigError(
                f"TruePoseConfig.pose_encoder_widths must be 3 positive widths, got {list(self.pose_encoder_widths)}"
            )

    def to_dict(self) -> dict:
        """The config as JSON-ready data (the ``atelier.config`` block of a weight file)."""
        data = asdict(self)
        for name in ("hpfa_sites", "caa_sites", "pose_encoder_widths"):
            data[name] = list(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TruePoseConfig:
        """Parse ``data`` (missing fields take defaults); errors name the field to fix."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TruePoseConfigError(f"TruePose config has unknown field(s) {unknown}; known: {sorted(known)}")
        kinds = {"hpfa_sites": tuple, "caa_sites": tuple, "pose_encoder_widths": tuple, "sigma": float,
                 "delta": float, "k": int, "clip_embed_dim": int, "pose_channels": int, "parsing_guidance": bool,
                 "latent_factor": int}
        parsed = {}
        for name, value in data.items():
            kind = kinds[name]
            if kind is tuple:
                if isinstance(value, str) or not isinstance(value, list | tuple):
                    raise TruePoseConfigError(f"TruePose config field {name!r} must be a list, got {value!r}")
                parsed[name] = tuple(value)
                continue
            if kind is bool:
                if not isinstance(value, bool):
                    raise TruePoseConfigError(f"TruePose config field {name!r} must be true or false, got {value!r}")
                parsed[name] = value
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TruePoseConfigError(f"TruePose config field {name!r} must be a number, got {value!r}")
            if kind is int and value != int(value):
                raise TruePoseConfigError(f"TruePose config field {name!r} must be an integer, got {value!r}")
            parsed[name] = kind(value)
        return cls(**parsed)
