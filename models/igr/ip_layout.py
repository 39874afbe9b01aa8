"""The standard SD1.5 IP-Adapter key layout (tencent-ailab/IP-Adapter, ip-adapter_sd15), in one place.

A file holds ``image_proj.proj.weight/bias``, ``image_proj.norm.weight/bias`` and, per cross-attention,
``ip_adapter.{i}.to_k_ip.weight`` / ``ip_adapter.{i}.to_v_ip.weight``. ``i`` is the position of the
site's attn2 processor in diffusers' ``unet.attn_processors`` (attn1 and attn2 alternate, so attn2s
get the odd numbers): down blocks 1..11, up blocks 13..29, the middle block 31 last.
"""

from __future__ import annotations

from ..sites import SD15_SITES, AttentionSite, sites_named

IMAGE_PROJ_PREFIX = "image_proj."
IP_PREFIX = "ip_adapter."
# diffusers registers the UNet's children as down_blocks, up_blocks, mid_block (attn_processors order).
PROCESSOR_BLOCK_ORDER: tuple[str, ...] = ("input", "output", "middle")
STANDARD_SITE_ORDER: tuple[str, ...] = tuple(
    site.name for site in sorted(SD15_SITES, key=lambda s: (PROCESSOR_BLOCK_ORDER.index(s.block), s.order))
)


def standard_index(site_name: str) -> int:
    """The ``i`` of ``ip_adapter.{i}.*`` for a site (unknown names raise an error listing the valid ones)."""
    sites_named((site_name,))
    return 2 * STANDARD_SITE_ORDER.index(site_name) + 1


def standard_ip_keys() -> frozenset[str]:
    """Every per-site key of a full standard SD1.5 IP-Adapter file."""
    return frozenset(
        f"{IP_PREFIX}{standard_index(name)}.{part}.weight" for name in STANDARD_SITE_ORDER for part in ("to_k_ip", "to_v_ip")
    )


def diffusers_attn2(site: AttentionSite) -> str:
    """The diffusers module path of ``site``'s cross-attention."""
    return f"{site.diffusers_block}.transformer_blocks.{site.block_index}.attn2"
