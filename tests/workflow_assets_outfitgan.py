"""Model files the OutfitGAN workflow needs in the workflow execution test: an initialised, untrained
OutfitGAN weight file (tiny 32x32 config, so the test runs in about a second)."""

import tempfile
from pathlib import Path

WORKFLOW_WEIGHTS = "outfitgan_toyworld.safetensors"


def write_untrained_outfitgan(comfy_node_registry) -> None:
    """Write ``WORKFLOW_WEIGHTS`` into a fresh folder registered as an Atelier model folder."""
    from atelier.models.outfitgan.config import OutfitGANConfig
    from atelier.models.outfitgan.spec import OUTFITGAN, outfitgan_base
    from atelier.models.weights import export_untrained
    from atelier.nodes.folders import FOLDER_NAME

    folder = Path(tempfile.mkdtemp(prefix="atelier_outfitgan_"))
    config = OutfitGANConfig.tiny()
    export_untrained(str(folder / WORKFLOW_WEIGHTS), OUTFITGAN, outfitgan_base(config), config.to_dict())
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))


ASSETS = {WORKFLOW_WEIGHTS: write_untrained_outfitgan}
