"""The ComfyExtension that lists every Atelier node (registration only)."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import (
    animate_anyone_nodes,
    anydressing_nodes,
    garment_network_nodes,
    human_parsing_nodes,
    igr_nodes,
    outfitgan_nodes,
    pose_keypoint_nodes,
    stable_garment_nodes,
    text2graph_nodes,
    truepose_nodes,
)
from .folders import register_model_folder
from .reference_node import ReferenceAttentionNode

NODES: tuple[type[io.ComfyNode], ...] = (
    ReferenceAttentionNode,
    *anydressing_nodes.NODES,
    *garment_network_nodes.NODES,
    *stable_garment_nodes.NODES,
    *igr_nodes.NODES,
    *outfitgan_nodes.NODES,
    *text2graph_nodes.NODES,
    *truepose_nodes.NODES,
    *pose_keypoint_nodes.NODES,
    *human_parsing_nodes.NODES,
    *animate_anyone_nodes.NODES,
)


class AtelierExtension(ComfyExtension):
    """Atelier's node list. Creating it registers the pack's model folder (ComfyUI 0.3.64 creates
    the extension when it loads the pack but does not call ``on_load``)."""

    def __init__(self) -> None:
        register_model_folder()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)
