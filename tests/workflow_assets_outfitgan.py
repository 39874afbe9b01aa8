"""Model files the OutfitGAN workflow needs in the workflow execution test: an initialised, untrained
OutfitGAN weight file (tiny 32x32 config, so the test runs in about a second)."""

from asset_files import write_untrained_atelier_file

WORKFLOW_WEIGHTS = "outfitgan_toyworld.safetensors"


def write_untrained_outfitgan(comfy_node_registry) -> None:
    """Write ``WORKFLOW_WEIGHTS`` into a fresh folder registered as an Atelier model folder."""
    from atelier.models.outfitgan.config import OutfitGANConfig
    from atelier.models.outfitgan.spec import OUTFITGAN, outfitgan_base

    config = OutfitGANConfig.tiny()
    write_untrained_atelier_file(comfy_node_registry, WORKFLOW_WEIGHTS, OUTFITGAN, config.to_dict(), outfitgan_base(config))


ASSETS = {WORKFLOW_WEIGHTS: write_untrained_outfitgan}
