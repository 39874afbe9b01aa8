"""Key layout facts of IMAGDressing-v1's published file that do not depend on tensor shapes.

- The garment UNet (``ref_unet.``) is a complete diffusers ``UNet2DConditionModel`` with SD1.5's
  block layout; ``sd15_diffusers_unet_keys`` lists its 686 state-dict keys (width-independent).
- ``adapter_modules.{i}`` is ``ModuleList(unet.attn_processors.values())`` of the denoiser. diffusers
  registers a UNet's children in the order conv_in, time_proj, time_embedding, down_blocks,
  up_blocks, mid_block, …, so ``attn_processors`` runs down_blocks → up_blocks → mid_block, and
  within each transformer block attn1 then attn2. Only the attn1 processors
  (RefSAttnProcessor2_0) own weights; the attn2 ones (CAttnProcessor2_0) have none. Hence
  adapter index 2·j is the attn1 of the j-th site in that order, and the middle block is 30 (last),
  not 12 as in ComfyUI's call order. IP-Adapter's SD1.5 files use the same index order.
"""

from __future__ import annotations

from ..sites import SD15_SITES, AttentionSite

# Sites in diffusers ``attn_processors`` order (down_blocks, up_blocks, mid_block).
_BLOCK_RANK = {"input": 0, "output": 1, "middle": 2}
PROCESSOR_ORDER: tuple[AttentionSite, ...] = tuple(
    sorted(SD15_SITES, key=lambda site: (_BLOCK_RANK[site.block], site.order))
)

# adapter_modules index -> site; every other index (the attn2 processors) carries no weight.
ADAPTER_INDEX_TO_SITE: dict[int, AttentionSite] = {2 * j: site for j, site in enumerate(PROCESSOR_ORDER)}
SITE_TO_ADAPTER_INDEX: dict[str, int] = {site.name: index for index, site in ADAPTER_INDEX_TO_SITE.items()}
PROCESSOR_COUNT = 2 * len(PROCESSOR_ORDER)  # 32: attn1 and attn2 of 16 transformer blocks


def _pair(stem: str) -> list[str]:
    return [f"{stem}.weight", f"{stem}.bias"]


def _resnet_keys(stem: str, shortcut: bool) -> list[str]:
    keys: list[str] = []
    for part in ("norm1", "conv1", "time_emb_proj", "norm2", "conv2"):
        keys += _pair(f"{stem}.{part}")
    if shortcut:
        keys += _pair(f"{stem}.conv_shortcut")
    return keys


def _transformer_keys(stem: str) -> list[str]:
    block = f"{stem}.transformer_blocks.0"
    keys = _pair(f"{stem}.norm") + _pair(f"{stem}.proj_in")
    for norm in ("norm1", "norm2", "norm3"):
        keys += _pair(f"{block}.{norm}")
    for attn in ("attn1", "attn2"):
        keys += [f"{block}.{attn}.to_q.weight", f"{block}.{attn}.to_k.weight", f"{block}.{attn}.to_v.weight"]
        keys += _pair(f"{block}.{attn}.to_out.0")
    keys += _pair(f"{block}.ff.net.0.proj") + _pair(f"{block}.ff.net.2")
    keys += _pair(f"{stem}.proj_out")
    return keys


def sd15_diffusers_unet_keys() -> frozenset[str]:
    """Every state-dict key of a diffusers ``UNet2DConditionModel`` with SD1.5's block layout."""
    keys = _pair("conv_in") + _pair("time_embedding.linear_1") + _pair("time_embedding.linear_2")
    for level in range(4):
        stem = f"down_blocks.{level}"
        if level < 3:
            keys += _transformer_keys(f"{stem}.attentions.0") + _transformer_keys(f"{stem}.attentions.1")
            keys += _pair(f"{stem}.downsamplers.0.conv")
        # the first resnet of a level changes width (320→640→1280) except at levels 0 and 3
        keys += _resnet_keys(f"{stem}.resnets.0", shortcut=level in (1, 2)) + _resnet_keys(f"{stem}.resnets.1", False)
    keys += _transformer_keys("mid_block.attentions.0")
    keys += _resnet_keys("mid_block.resnets.0", False) + _resnet_keys("mid_block.resnets.1", False)
    for level in range(4):
        stem = f"up_blocks.{level}"
        for index in range(3):
            keys += _resnet_keys(f"{stem}.resnets.{index}", shortcut=True)  # skip concat: width always changes
            if level > 0:
                keys += _transformer_keys(f"{stem}.attentions.{index}")
        if level < 3:
            keys += _pair(f"{stem}.upsamplers.0.conv")
    keys += _pair("conv_norm_out") + _pair("conv_out")
    return frozenset(keys)
