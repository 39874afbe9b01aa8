"""OutfitGAN nodes inside a real ComfyUI (CPU): loader, outfit completion, compatibility. Needs COMFYUI_PATH."""

from types import SimpleNamespace

import pytest
import torch

from comfy_fixtures import requires_comfyui

pytestmark = [requires_comfyui]


@pytest.fixture(scope="module")
def pack(comfy_node_registry, tmp_path_factory):
    """The node module and a models/atelier folder with an untrained tiny OutfitGAN and a reference file."""
    import comfy.utils
    from atelier.models.errors import WeightFileError
    from atelier.models.outfitgan.config import OutfitGANConfig
    from atelier.models.outfitgan.errors import OutfitInputError
    from atelier.models.outfitgan.spec import OUTFITGAN, outfitgan_base
    from atelier.models.weight_format import BaseModel
    from atelier.models.weight_systems import REFERENCE
    from atelier.models.weights import export_untrained
    from atelier.nodes import outfitgan_nodes
    from atelier.nodes.folders import FOLDER_NAME

    folder = tmp_path_factory.mktemp("atelier_outfitgan_nodes")
    config = OutfitGANConfig.tiny()
    export_untrained(str(folder / "og_tiny.safetensors"), OUTFITGAN, outfitgan_base(config), config.to_dict())
    export_untrained(str(folder / "ref_tiny.safetensors"), REFERENCE, BaseModel(model_channels=32, context_dim=64))
    (folder / "broken.safetensors").write_bytes(b"not a safetensors file")
    folder_paths = comfy_node_registry.folder_paths
    folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    yield SimpleNamespace(nodes=outfitgan_nodes, utils=comfy.utils, WeightFileError=WeightFileError,
                          OutfitInputError=OutfitInputError)
    folder_paths.folder_names_and_paths[FOLDER_NAME][0].remove(str(folder))  # later tests see the folder as before


@pytest.fixture(scope="module")
def model(pack):
    return pack.nodes.OutfitGANLoaderNode.execute("og_tiny.safetensors").args[0]


def test_node_ids_and_schemas(pack):
    ids = [node.define_schema().node_id for node in pack.nodes.NODES]
    assert ids == ["AtelierOutfitGANLoader", "AtelierOutfitComplete", "AtelierOutfitCompatibility"]
    for node in pack.nodes.NODES:
        schema = node.define_schema()
        schema.validate()
        assert schema.category == "Atelier/outfitgan"


def test_loader_lists_only_outfitgan_files(pack):
    from atelier.nodes.weights_loader import weight_file_names

    assert {"og_tiny.safetensors", "ref_tiny.safetensors", "broken.safetensors"} <= set(weight_file_names())
    assert "og_tiny.safetensors" in pack.nodes.outfitgan_file_names()
    assert not {"ref_tiny.safetensors", "broken.safetensors"} & set(pack.nodes.outfitgan_file_names())


def test_loader_checks_the_file_name_and_the_system(pack, model):
    assert model.config.image_size == 32 and model.config.target_slots == ("bag", "lower", "shoes")
    assert pack.nodes.OutfitGANLoaderNode.validate_inputs(weights="og_tiny.safetensors") is True
    assert "'weights' is 'nope.safetensors'" in pack.nodes.OutfitGANLoaderNode.validate_inputs(weights="nope.safetensors")
    assert "not an OutfitGAN weight file" in pack.nodes.OutfitGANLoaderNode.validate_inputs(weights="ref_tiny.safetensors")
    with pytest.raises(pack.WeightFileError, match="is a 'reference' weight file; this node needs a 'outfitgan' file"):
        pack.nodes.OutfitGANLoaderNode.execute("ref_tiny.safetensors")


def test_complete_a_batch_of_any_size_with_default_silhouettes(pack, model):
    calls = []
    pack.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        source = torch.rand(2, 50, 70, 3)
        upper, bag, lower, shoes, grid = pack.nodes.OutfitCompleteNode.execute(model, source).args
    finally:
        pack.utils.set_progress_bar_global_hook(None)
    assert calls == [(1, 3), (2, 3), (3, 3)], "one progress tick per generated item"
    assert all(image.shape == (2, 32, 32, 3) for image in (upper, bag, lower, shoes))
    assert grid.shape == (2, 32, 128, 3)
    assert torch.equal(grid[:, :, 32:64], bag) and torch.equal(grid[:, :, 96:], shoes)
    assert torch.allclose(upper[:, :3], torch.ones_like(upper[:, :3])), "wide source padded with white on top"
    assert not torch.allclose(bag[0], bag[1]), "each source item gets its own outfit"


def test_given_masks_are_used_and_wrong_ones_are_named(pack, model):
    source = torch.rand(1, 32, 32, 3)
    default_bag = pack.nodes.OutfitCompleteNode.execute(model, source).args[1]
    square = torch.zeros(64, 64)
    square[8:56, 8:56] = 1.0
    given_bag = pack.nodes.OutfitCompleteNode.execute(model, source, bag_mask=square).args[1]
    assert not torch.allclose(default_bag, given_bag)
    with pytest.raises(pack.OutfitInputError, match="'upper_mask' is connected"):
        pack.nodes.OutfitCompleteNode.execute(model, source, upper_mask=square)
    with pytest.raises(pack.OutfitInputError, match="'lower_mask' holds 2 masks for 1 source items"):
        pack.nodes.OutfitCompleteNode.execute(model, source, lower_mask=square[None].repeat(2, 1, 1))
    with pytest.raises(pack.OutfitInputError, match="'source' must be an IMAGE"):
        pack.nodes.OutfitCompleteNode.execute(model, torch.rand(32, 32, 3))


def test_compatibility_scores_each_outfit(pack, model):
    g = torch.Generator().manual_seed(0)
    items = {slot: torch.rand(2, 32, 32, 3, generator=g) for slot in ("upper", "bag", "lower", "shoes")}
    score, report = pack.nodes.OutfitCompatibilityNode.execute(model, **items).args
    ccm = model.ccm.model
    with torch.no_grad():
        direct = ccm.score(torch.stack([items[s].permute(0, 3, 1, 2) for s in ("upper", "bag", "lower", "shoes")], dim=1))
    assert score == pytest.approx(float(direct.mean()), abs=1e-5)
    assert report.splitlines() == [f"outfit {i}: compatibility {float(v):.3f}" for i, v in enumerate(direct)]
    single = pack.nodes.OutfitCompatibilityNode.execute(model, **{**items, "bag": items["bag"][:1]}).args[1]
    assert len(single.splitlines()) == 2, "a single image is shared by every outfit"
    with pytest.raises(pack.OutfitInputError, match="different batch sizes .*'shoes' holds 3 images"):
        pack.nodes.OutfitCompatibilityNode.execute(model, **{**items, "shoes": torch.rand(3, 32, 32, 3)})
