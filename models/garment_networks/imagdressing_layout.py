"""Key layout facts of IMAGDressing-v1's published file that do not depend on tensor shapes.

- The garment UNet (``ref_unet.``) is a complete diffusers ``UNet2DConditionModel`` with SD1.5's
  block layout (``sd15_layout.sd15_diffusers_unet_keys``: its 686 state-dict keys).
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
