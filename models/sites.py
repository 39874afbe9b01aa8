"""The SD1.5 self-attention sites: the one place that names them.

SD1.5 has 16 transformer blocks, each with one self-attention (attn1). ComfyUI addresses a block by
``(block, number, block_index)`` (``block_index`` is always 0 in SD1.5; it is *not* the global
``transformer_index`` counter), diffusers by module path. Token counts follow from the latent size:
level ``l`` sits after ``l`` stride-2 downsamples, each of which maps a side ``s`` to ``ceil(s / 2)``.
Table measured on ComfyUI 0.3.64 (research/comfyui.md §1.6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ReferenceInputError

# Channel multiplier per resolution level: SD1.5 ``channel_mult`` is (1, 2, 4, 4); the middle
# block (level 3) keeps the last level's width.
SD15_CHANNEL_MULT: tuple[int, ...] = (1, 2, 4, 4)


@dataclass(frozen=True)
class AttentionSite:
    """One self-attention layer of the SD1.5 UNet.

    Args:
        block: ComfyUI block name, ``"input"``, ``"middle"`` or ``"output"``.
        number: ComfyUI block number (index into input_blocks / output_blocks; 0 for middle).
        order: call order within one UNet forward (ComfyUI's ``transformer_index``), 0..15.
        level: resolution level 0..3; the token grid is the latent downsampled ``level`` times.
        diffusers_block: diffusers path of the owning ``Transformer2DModel``.
    """

    block: str
    number: int
    order: int
    level: int
    diffusers_block: str
    block_index: int = 0

    @property
    def key(self) -> tuple[str, int, int]:
        """The ComfyUI ``patches_replace`` key ``(block, number, block_index)``."""
        return (self.block, self.number, self.block_index)

    @property
    def name(self) -> str:
        """A stable short name (``"input_1"``, ``"middle_0"``), used in weight-file keys."""
        return f"{self.block}_{self.number}"

    @property
    def comfy_attn1(self) -> str:
        """The module path of this site's self-attention inside ComfyUI's ``UNetModel``."""
        container = "middle_block" if self.block == "middle" else f"{self.block}_blocks.{self.number}"
        return f"{container}.1.transformer_blocks.{self.block_index}.attn1"

    @property
    def diffusers_attn1(self) -> str:
        """The diffusers module path of this site's self-attention."""
        return f"{self.diffusers_block}.transformer_blocks.{self.block_index}.attn1"

    def channels(self, model_channels: int) -> int:
        """Hidden width at this site for a UNet with the given base ``model_channels``."""
        return model_channels * SD15_CHANNEL_MULT[self.level]

    def token_grid(self, latent_height: int, latent_width: int) -> tuple[int, int]:
        """(h, w) of this site's token grid for a latent of the given size."""
        height, width = latent_height, latent_width
        for _ in range(self.level):
            height, width = math.ceil(height / 2), math.ceil(width / 2)
        return height, width

    def token_count(self, latent_height: int, latent_width: int) -> int:
        """Number of tokens T entering this site's attn1."""
        height, width = self.token_grid(latent_height, latent_width)
        return height * width


SD15_SITES: tuple[AttentionSite, ...] = (
    AttentionSite("input", 1, 0, 0, "down_blocks.0.attentions.0"),
    AttentionSite("input", 2, 1, 0, "down_blocks.0.attentions.1"),
    AttentionSite("input", 4, 2, 1, "down_blocks.1.attentions.0"),
    AttentionSite("input", 5, 3, 1, "down_blocks.1.attentions.1"),
    AttentionSite("input", 7, 4, 2, "down_blocks.2.attentions.0"),
    AttentionSite("input", 8, 5, 2, "down_blocks.2.attentions.1"),
    AttentionSite("middle", 0, 6, 3, "mid_block.attentions.0"),
    AttentionSite("output", 3, 7, 2, "up_blocks.1.attentions.0"),
    AttentionSite("output", 4, 8, 2, "up_blocks.1.attentions.1"),
    AttentionSite("output", 5, 9, 2, "up_blocks.1.attentions.2"),
    AttentionSite("output", 6, 10, 1, "up_blocks.2.attentions.0"),
    AttentionSite("output", 7, 11, 1, "up_blocks.2.attentions.1"),
    AttentionSite("output", 8, 12, 1, "up_blocks.2.attentions.2"),
    AttentionSite("output", 9, 13, 0, "up_blocks.3.attentions.0"),
    AttentionSite("output", 10, 14, 0, "up_blocks.3.attentions.1"),
    AttentionSite("output", 11, 15, 0, "up_blocks.3.attentions.2"),
)

SITES_BY_KEY: dict[tuple[str, int, int], AttentionSite] = {site.key: site for site in SD15_SITES}
SITES_BY_NAME: dict[str, AttentionSite] = {site.name: site for site in SD15_SITES}

# Named subsets offered to users; "all" is the default everywhere.
SITE_GROUPS: dict[str, tuple[str, ...]] = {
    "all": tuple(site.name for site in SD15_SITES),
    "input": tuple(site.name for site in SD15_SITES if site.block == "input"),
    "middle": tuple(site.name for site in SD15_SITES if site.block == "middle"),
    "output": tuple(site.name for site in SD15_SITES if site.block == "output"),
    "input+middle": tuple(site.name for site in SD15_SITES if site.block != "output"),
    "middle+output": tuple(site.name for site in SD15_SITES if site.block != "input"),
}


def site_for_block(block: tuple[str, int] | None, block_index: int = 0) -> AttentionSite | None:
    """The site for ComfyUI's ``extra_options["block"]`` / ``["block_index"]``, or None if not a site."""
    if block is None:
        return None
    return SITES_BY_KEY.get((block[0], block[1], block_index))


def sites_named(names: tuple[str, ...] | list[str]) -> tuple[AttentionSite, ...]:
    """Sites for the given names, in call order; unknown names raise an error listing the valid ones."""
    unknown = [name for name in names if name not in SITES_BY_NAME]
    if unknown:
        raise ReferenceInputError(
            f"unknown attention site(s) {unknown}; valid names are {list(SITES_BY_NAME)}"
        )
    wanted = set(names)
    return tuple(site for site in SD15_SITES if site.name in wanted)
