"""The pack's public surface: node ids and the /object_info snapshot that workflows are checked against."""

import json
import os
from pathlib import Path


from comfy_fixtures import pack_node_ids, pack_object_info, requires_comfyui

SNAPSHOT = Path(__file__).parent / "snapshots" / "object_info_atelier.json"
UPDATE_ENV = "ATELIER_UPDATE_SNAPSHOT"

# Node ids are public API: once shipped, an id stays. Add new ids here; never remove or rename one.
FILE_COMBOS = ("weights", "pose_file", "parser", "network", "denoising_unet", "reference_unet", "pose_guider")  # combos that list files (or model folders) on disk
SHIPPED_NODE_IDS = {"AtelierReferenceAttention"}
SHIPPED_NODE_IDS |= {"AtelierOutfitGANLoader", "AtelierOutfitComplete", "AtelierOutfitCompatibility"}  # issue 5
SHIPPED_NODE_IDS |= {"AtelierText2GraphParse", "AtelierText2GraphEncode", "AtelierText2GraphRender"}  # issue 6
SHIPPED_NODE_IDS |= {"AtelierDressingLoader", "AtelierEncodeGarments", "AtelierApplyDressing"}  # issue 4
SHIPPED_NODE_IDS |= {"AtelierIGRLoader", "AtelierGarmentRestoration", "AtelierGarmentMaskFromParsing"}  # issue 8
SHIPPED_NODE_IDS |= {"AtelierTruePoseLoader", "AtelierEncodePoseSource", "AtelierApplyTruePose", "AtelierLoadPoseKeypoint"}  # issue 9
SHIPPED_NODE_IDS |= {"AtelierHumanParserLoader", "AtelierHumanParsing"}
SHIPPED_NODE_IDS |= {"AtelierGarmentNetworkLoader", "AtelierEncodeReferenceGarments", "AtelierApplyStableGarment"}
SHIPPED_NODE_IDS |= {"AtelierAnimateAnyoneLoader", "AtelierEncodeAnimateAnyoneSource", "AtelierApplyAnimateAnyone"}


def test_snapshot_lists_every_shipped_node_with_the_pack_prefix():
    snapshot = json.loads(SNAPSHOT.read_text())
    assert SHIPPED_NODE_IDS <= set(snapshot)
    assert all(node_id.startswith("Atelier") for node_id in snapshot)
    assert all(info["category"].startswith("Atelier") for info in snapshot.values())


@requires_comfyui
def test_snapshot_matches_what_comfyui_serves(comfy_server_nodes):
    """Regenerate with ATELIER_UPDATE_SNAPSHOT=1 after a deliberate, compatible schema change."""
    node_ids = sorted(pack_node_ids(comfy_server_nodes))
    served = pack_object_info(node_ids)
    for info in served.values():
        info["python_module"] = "custom_nodes.atelier"  # the folder name is the user's choice
        for name in FILE_COMBOS:
            files = info["input"].get("required", {}).get(name)
            if files is not None and files[0] == "COMBO":
                files[1]["options"] = []  # the files present in models/atelier/ or the input folder, not schema
    if os.environ.get(UPDATE_ENV):
        SNAPSHOT.write_text(json.dumps(served, indent=2, sort_keys=True) + "\n")
    assert served == json.loads(SNAPSHOT.read_text()), (
        f"the pack's /object_info changed; if that is intended, rerun with {UPDATE_ENV}=1 and review the diff"
    )
    assert SHIPPED_NODE_IDS <= set(node_ids)
