"""Atelier: fashion image generation nodes for ComfyUI.

This file is the ComfyUI entry point and nothing else. It imports nothing from ComfyUI at
module level, so the same folder also imports as the installed package ``atelier`` (tests,
``train/``) without a ComfyUI around.
"""


async def comfy_entrypoint():
    """Return the ComfyExtension that lists Atelier's nodes (called by ComfyUI when it loads us)."""
    from .nodes.extension import AtelierExtension

    return AtelierExtension()
