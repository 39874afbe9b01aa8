"""The state-dict layout of a diffusers SD1.5 ``UNet2DConditionModel``: every key and its shape at a
given width, in ``state_dict()`` order. The public garment networks' files, Moore-AnimateAnyone's
UNets and ComfyUI's key table are all checked against it."""

from __future__ import annotations

import math

from ..weight_format import SD15, BaseModel

# SD1.5 channel multipliers and UNet block layout (diffusers names).
_MULT = (1, 2, 4, 4)
_ATTENTION_LEVELS = (0, 1, 2)  # down blocks with attentions (CrossAttnDownBlock2D); up blocks 1..3 mirror them


def _resnet(prefix: str, cin: int, cout: int, temb: int) -> dict[str, tuple[int, ...]]:
    shapes = {
        f"{prefix}.norm1.weight": (cin,), f"{prefix}.norm1.bias": (cin,),
        f"{prefix}.conv1.weight": (cout, cin, 3, 3), f"{prefix}.conv1.bias": (cout,),
        f"{prefix}.time_emb_proj.weight": (cout, temb), f"{prefix}.time_emb_proj.bias": (cout,),
        f"{prefix}.norm2.weight": (cout,), f"{prefix}.norm2.bias": (cout,),
        f"{prefix}.conv2.weight": (cout, cout, 3, 3), f"{prefix}.conv2.bias": (cout,),
    }
    if cin != cout:
        shapes[f"{prefix}.conv_shortcut.weight"] = (cout, cin, 1, 1)
        shapes[f"{prefix}.conv_shortcut.bias"] = (cout,)
    return shapes


def _transformer(prefix: str, width: int, context_dim: int) -> dict[str, tuple[int, ...]]:
    block = f"{prefix}.transformer_blocks.0"
    shapes = {
        f"{prefix}.norm.weight": (width,), f"{prefix}.norm.bias": (width,),
        f"{prefix}.proj_in.weight": (width, width, 1, 1), f"{prefix}.proj_in.bias": (width,),
    }
    for norm, attn, kv_width in (("norm1", "attn1", width), ("norm2", "attn2", context_dim)):
        shapes[f"{block}.{norm}.weight"] = (width,)
        shapes[f"{block}.{norm}.bias"] = (width,)
        shapes[f"{block}.{attn}.to_q.weight"] = (width, width)
        shapes[f"{block}.{attn}.to_k.weight"] = (width, kv_width)
        shapes[f"{block}.{attn}.to_v.weight"] = (width, kv_width)
        shapes[f"{block}.{attn}.to_out.0.weight"] = (width, width)
        shapes[f"{block}.{attn}.to_out.0.bias"] = (width,)
    shapes[f"{block}.norm3.weight"] = (width,)
    shapes[f"{block}.norm3.bias"] = (width,)
    shapes[f"{block}.ff.net.0.proj.weight"] = (8 * width, width)  # GEGLU: 2 × 4·width
    shapes[f"{block}.ff.net.0.proj.bias"] = (8 * width,)
    shapes[f"{block}.ff.net.2.weight"] = (width, 4 * width)
    shapes[f"{block}.ff.net.2.bias"] = (width,)
    shapes[f"{prefix}.proj_out.weight"] = (width, width, 1, 1)
    shapes[f"{prefix}.proj_out.bias"] = (width,)
    return shapes


def sd15_unet_shapes(base: BaseModel = SD15, in_channels: int = 4, out_channels: int = 4) -> dict[str, tuple[int, ...]]:
    """Every key of a diffusers SD1.5 ``UNet2DConditionModel`` state dict and its shape, for a UNet of
    ``base.model_channels`` width and ``base.context_dim`` text context (SD1.5: 320 / 768), in
    ``state_dict()`` order."""
    c0, ctx = base.model_channels, base.context_dim
    widths = [c0 * m for m in _MULT]
    temb = 4 * c0
    shapes: dict[str, tuple[int, ...]] = {
        "conv_in.weight": (c0, in_channels, 3, 3), "conv_in.bias": (c0,),
        "time_embedding.linear_1.weight": (temb, c0), "time_embedding.linear_1.bias": (temb,),
        "time_embedding.linear_2.weight": (temb, temb), "time_embedding.linear_2.bias": (temb,),
    }
    previous = c0
    for level, width in enumerate(widths):
        if level in _ATTENTION_LEVELS:
            for j in range(2):
                shapes.update(_transformer(f"down_blocks.{level}.attentions.{j}", width, ctx))
        for j in range(2):
            shapes.update(_resnet(f"down_blocks.{level}.resnets.{j}", previous if j == 0 else width, width, temb))
        if level < len(widths) - 1:
            shapes[f"down_blocks.{level}.downsamplers.0.conv.weight"] = (width, width, 3, 3)
            shapes[f"down_blocks.{level}.downsamplers.0.conv.bias"] = (width,)
        previous = width
    reversed_widths = widths[::-1]
    previous = reversed_widths[0]
    for i, width in enumerate(reversed_widths):
        skip_in = reversed_widths[min(i + 1, len(widths) - 1)]
        if i > 0:
            for j in range(3):
                shapes.update(_transformer(f"up_blocks.{i}.attentions.{j}", width, ctx))
        for j in range(3):
            resnet_in = previous if j == 0 else width
            skip = skip_in if j == 2 else width
            shapes.update(_resnet(f"up_blocks.{i}.resnets.{j}", resnet_in + skip, width, temb))
        if i < len(widths) - 1:
            shapes[f"up_blocks.{i}.upsamplers.0.conv.weight"] = (width, width, 3, 3)
            shapes[f"up_blocks.{i}.upsamplers.0.conv.bias"] = (width,)
        previous = width
    shapes.update(_transformer("mid_block.attentions.0", widths[-1], ctx))  # diffusers registers mid_block last
    for j in range(2):
        shapes.update(_resnet(f"mid_block.resnets.{j}", widths[-1], widths[-1], temb))
    shapes["conv_norm_out.weight"] = (c0,)
    shapes["conv_norm_out.bias"] = (c0,)
    shapes["conv_out.weight"] = (out_channels, c0, 3, 3)
    shapes["conv_out.bias"] = (out_channels,)
    return shapes


def sd15_parameter_count(base: BaseModel = SD15) -> int:
    """Parameters of the whole SD1.5 diffusers UNet (859,520,964 at 320 / 768)."""
    return sum(math.prod(shape) for shape in sd15_unet_shapes(base).values())


def sd15_diffusers_unet_keys() -> frozenset[str]:
    """Every state-dict key of a diffusers SD1.5 ``UNet2DConditionModel`` (686; the same at any width)."""
    return frozenset(sd15_unet_shapes())
