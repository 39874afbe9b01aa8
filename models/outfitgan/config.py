"""Configuration of OutfitGAN (Zhou et al., "Learning to Synthesize Compatible Fashion Items Using
Semantic Alignment and Collocation Classification: An Outfit Generation Framework", arXiv 2502.06827).

An outfit is the paper's fixed sequence upper -> bag -> lower -> shoes (``OUTFIT_ORDER``). One item
(the source O_k, an upper garment by default) is given; the other N-1 items are generated, each
inside its target reference mask.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from .errors import OutfitGANConfigError

OUTFIT_ORDER: tuple[str, ...] = ("upper", "bag", "lower", "shoes")
"""The paper's fixed collocation order, read by the Bi-LSTM of the CCM."""

MIN_IMAGE_SIZE = 16


@dataclass(frozen=True)
class OutfitGANConfig:
    """Sizes and options of one OutfitGAN model (generators + CCM; discriminators are training-only).

    Args:
        image_size: side of the square item images the model works at (paper: 256).
        source_slot: the given item's category; the generated ones are the rest of ``OUTFIT_ORDER``.
        base_channels: width of the first encoder level; doubles per downsampling, capped at 8x.
        downsamples: stride-2 convolutions in each encoder; the SAM runs on a grid of
            image_size / 2**downsamples (256 -> 32x32 = 1024 positions by default).
        residual_blocks: residual blocks between the SAM and the decoder.
        use_sam: True: Semantic Alignment Module (correlation + softmax warp of source features);
            False: the paper's "w/o SAM" ablation, plain concatenation of source and mask features.
        sam_temperature: tau of softmax(M / tau) over source positions (cosine similarities lie in
            [-1, 1], so a small tau gives a sharp correspondence).
        shared_generator: False: N-1 item generators, one per target item (the paper);
            True: one generator conditioned on the target category (the paper's open question).
        ccm_channels: width of the CCM's item encoder.
        ccm_embedding: item embedding size fed to the CCM's Bi-LSTM.
        ccm_hidden: hidden size of each LSTM direction.
        ccm_image_size: the CCM reads every item resized to this side.
    """

    image_size: int = 256
    source_slot: str = "upper"
    base_channels: int = 32
    downsamples: int = 3
    residual_blocks: int = 2
    use_sam: bool = True
    sam_temperature: float = 0.01
    shared_generator: bool = False
    ccm_channels: int = 16
    ccm_embedding: int = 64
    ccm_hidden: int = 64
    ccm_image_size: int = 64

    def __post_init__(self) -> None:
        if self.source_slot not in OUTFIT_ORDER:
            raise OutfitGANConfigError(f"OutfitGANConfig.source_slot must be one of {OUTFIT_ORDER}, got {self.source_slot!r}")
        for name in ("base_channels", "downsamples", "ccm_channels", "ccm_embedding", "ccm_hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise OutfitGANConfigError(f"OutfitGANConfig.{name} must be a positive int, got {value!r}")
        if not isinstance(self.residual_blocks, int) or self.residual_blocks < 0:
            raise OutfitGANConfigError(f"OutfitGANConfig.residual_blocks must be >= 0, got {self.residual_blocks!r}")
        if self.image_size < MIN_IMAGE_SIZE or self.image_size % (2 ** self.downsamples):
            raise OutfitGANConfigError(
                f"OutfitGANConfig.image_size must be at least {MIN_IMAGE_SIZE} and a multiple of "
                f"2**downsamples = {2 ** self.downsamples}, got {self.image_size}"
            )
        if self.ccm_image_size < MIN_IMAGE_SIZE:
            raise OutfitGANConfigError(f"OutfitGANConfig.ccm_image_size must be at least {MIN_IMAGE_SIZE}, got {self.ccm_image_size}")
        if self.sam_temperature <= 0.0:
            raise OutfitGANConfigError(f"OutfitGANConfig.sam_temperature must be > 0, got {self.sam_temperature}")

    @property
    def target_slots(self) -> tuple[str, ...]:
        """The N-1 generated categories, in outfit order."""
        return tuple(slot for slot in OUTFIT_ORDER if slot != self.source_slot)

    @property
    def feature_size(self) -> int:
        """Side of the encoder feature grid the SAM correlates."""
        return self.image_size // 2 ** self.downsamples

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready) of every field."""
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> OutfitGANConfig:
        """Build from a dict; unknown keys are refused by name."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OutfitGANConfigError(f"unknown OutfitGANConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def tiny(cls, **overrides) -> OutfitGANConfig:
        """A test-sized config: 32x32 items, 8 channels, 4x4 SAM grid."""
        values = {"image_size": 32, "base_channels": 8, "downsamples": 3, "residual_blocks": 1,
                  "ccm_channels": 8, "ccm_embedding": 16, "ccm_hidden": 16, "ccm_image_size": 32}
        values.update(overrides)
        return cls(**values)

    @classmethod
    def small(cls, **overrides) -> OutfitGANConfig:
        """The toy-world evidence size: 64x64 items, 16 channels, 8x8 SAM grid."""
        values = {"image_size": 64, "base_channels": 16, "downsamples": 3, "residual_blocks": 2, "ccm_image_size": 64}
        values.update(overrides)
        return cls(**values)
