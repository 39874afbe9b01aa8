"""Human parsing inside a real ComfyUI (CPU, tiny random SegFormer parsers in models/segformer/): the
loader lists and loads parser folders into a ModelPatcher, the parsing node's outputs plug into Garment
Mask From Parsing, Encode Pose Source's parsing formats and Apply Dressing's garment_masks, and a
prompt run twice with a new photo reuses the loaded parser. Needs COMFYUI_PATH."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from comfy_fixtures import execute_prompt, new_prompt_executor, requires_comfyui
from PIL import Image
from tiny_segformer import LIP_ID2LABEL, write_tiny_segformer

pytestmark = [requires_comfyui]

HEIGHT, WIDTH = 48, 40
PARSER = "atr_parser_under_test"  # not the workflow assets' segformer_b2_clothes, which a sibling folder may register first
NESTED = "sayeed99/segformer_b3_clothes"
LIP_PARSER = "lip_parser"


@pytest.fixture(scope="module")
def world(comfy_server_nodes, comfy_node_registry, tmp_path_factory):
    from atelier.nodes.folders import PARSER_FOLDER_NAME
    from atelier.nodes.human_parsing_nodes import NODES

    root = tmp_path_factory.mktemp("segformer")
    write_tiny_segformer(root / PARSER)
    write_tiny_segformer(root / NESTED, seed=1)
    write_tiny_segformer(root / LIP_PARSER, LIP_ID2LABEL, seed=2)
    (root / "not_a_parser").mkdir()
    (root / "not_a_parser" / "config.json").write_text(json.dumps({"model_type": "clip_vision_model"}))
    (root / "notes").mkdir()  # no config.json: not listed
    comfy_node_registry.folder_paths.add_model_folder_path(PARSER_FOLDER_NAME, str(root))
    nodes = {node.define_schema().node_id: node for node in NODES}
    image = torch.rand(2, HEIGHT, WIDTH, 3, generator=torch.Generator().manual_seed(0))
    return SimpleNamespace(nodes=nodes, root=root, image=image)


def load(world, name=PARSER):
    return world.nodes["AtelierHumanParserLoader"].execute(parser=name).args[0]


def parse(world, parser=None, image=None, label_set="lip", categories="upper_clothes", mask_mode="combined"):
    return world.nodes["AtelierHumanParsing"].execute(
        parser=parser or load(world), image=world.image if image is None else image, label_set=label_set,
        categories=categories, mask_mode=mask_mode,
    ).args


def test_loader_lists_parser_folders_and_checks_the_choice(world):
    loader = world.nodes["AtelierHumanParserLoader"]
    options = loader.define_schema().inputs[0].options
    assert {PARSER, NESTED, LIP_PARSER, "not_a_parser"} <= set(options) and "notes" not in options
    assert loader.validate_inputs(parser=PARSER) is True
    assert "not a folder with a config.json" in loader.validate_inputs(parser="notes")


def test_loader_gives_a_managed_model(world):
    import comfy.model_patcher
    from atelier.models.parsing import ATR, LIP
    from atelier.models.segformer_parser import SegformerParser

    parser = load(world)
    assert isinstance(parser.patcher, comfy.model_patcher.ModelPatcher)
    assert isinstance(parser.patcher.model, SegformerParser) and parser.label_set == ATR
    assert parser.patcher.model_size() > 0
    assert load(world, NESTED).name == NESTED and load(world, LIP_PARSER).label_set == LIP


def test_loader_errors_name_the_folder(world):
    from atelier.models.segformer_files import NotSegformerError, ParserFolderError

    with pytest.raises(NotSegformerError, match="'clip_vision_model' model"):
        load(world, "not_a_parser")
    with pytest.raises(ParserFolderError, match="'parser' is 'missing'.*models/segformer/<name>/"):
        load(world, "missing")
    outside = world.root.parent / f"{world.root.name}_outside"
    write_tiny_segformer(outside)
    with pytest.raises(ParserFolderError, match="'parser' is '../"):  # a real parser, but not under models/segformer/
        load(world, f"../{outside.name}")


def test_outputs_have_the_image_size_and_the_consumers_read_them(world):
    from atelier.models.parsing import LIP, LIP_REGIONS, palette_image_to_labels
    from atelier.nodes.igr_nodes import GarmentMaskFromParsingNode
    from atelier.nodes.truepose_inputs import source_labels

    parsing, label_ids, mask = parse(world, categories="upper_clothes+coat+jumpsuits+scarf")
    assert parsing.shape == label_ids.shape == (2, HEIGHT, WIDTH, 3) and mask.shape == (2, HEIGHT, WIDTH)
    labels = torch.stack([torch.from_numpy(palette_image_to_labels((row * 255).round().byte().numpy(), LIP)) for row in parsing])
    assert len(torch.unique(labels)) > 2
    assert torch.equal(source_labels(label_ids, "lip_ids", world.image[:, :, :, :3]), labels[:, :HEIGHT // 8 * 8, :WIDTH // 8 * 8])
    assert torch.equal(source_labels(parsing, "lip_palette", world.image), labels[:, :HEIGHT // 8 * 8, :WIDTH // 8 * 8])
    garment = GarmentMaskFromParsingNode.execute(parsing=parsing, label_set="lip", category="upper", region="garment").args[0]
    assert torch.equal(garment, mask)
    assert torch.equal(mask.bool(), torch.isin(labels, torch.tensor(LIP.ids(LIP_REGIONS["upper"]))))
    GarmentMaskFromParsingNode.execute(parsing=parsing, label_set="lip", category="upper", region="agnostic")


def test_atr_outputs_read_as_atr(world):
    from atelier.models.parsing import ATR, palette_image_to_labels

    parsing, label_ids, _ = parse(world, label_set="atr", categories="belt, bag")
    for row, ids in zip(parsing, label_ids):
        labels = palette_image_to_labels((row * 255).round().byte().numpy(), ATR)
        assert np.array_equal(labels, (ids[..., 0] * 255).round().long().numpy())


def test_per_category_masks_fit_apply_dressing(world):
    from atelier.nodes.anydressing_inputs import garment_mask_batch

    _, _, combined = parse(world, categories="upper_clothes, pants+skirt")
    _, _, per = parse(world, categories="upper_clothes, pants+skirt", mask_mode="per_category")
    assert per.shape == (4, HEIGHT, WIDTH)
    grouped = garment_mask_batch(per, 2)  # (B_m, N, H, W): one mask per garment for each latent
    assert grouped.shape == (2, 2, HEIGHT, WIDTH)
    assert torch.equal(grouped.amax(dim=1), combined)


def test_progress_reports_each_image(world):
    import comfy.utils

    seen = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        parse(world)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert seen == [(1, 2), (2, 2)]


def test_bad_inputs_name_what_to_fix(world):
    from atelier.models.errors import ReferenceInputError
    from atelier.models.parsing import UnknownLabelError

    node = world.nodes["AtelierHumanParsing"]
    message = node.validate_inputs(label_set="atr", categories="coat", mask_mode="combined")
    assert "'categories' names 'coat', not ATR" in message and "upper_clothes" in message
    assert "'mask_mode' is 'sideways'" in node.validate_inputs(label_set="lip", categories="hat", mask_mode="sideways")
    assert node.validate_inputs(label_set="lip", categories="Upper-clothes, hat", mask_mode="per_category") is True
    with pytest.raises(UnknownLabelError, match="'categories' names 'shirt'"):
        parse(world, categories="shirt")
    with pytest.raises(ReferenceInputError, match="'image' must be an IMAGE"):
        parse(world, image=torch.rand(HEIGHT, WIDTH, 3))


def test_a_prompt_reuses_the_loaded_parser(world, comfy_node_registry):
    from atelier.models.parsing import LIP, palette_image_to_labels

    rng = np.random.default_rng(0)
    names = []
    for index in range(2):
        name = f"parsing_person_{index}.png"
        Image.fromarray((rng.random((HEIGHT, WIDTH, 3)) * 255).astype(np.uint8)).save(comfy_node_registry.input_dir / name)
        names.append(name)
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": names[0]}},
        "2": {"class_type": "AtelierHumanParserLoader", "inputs": {"parser": PARSER}},
        "3": {"class_type": "AtelierHumanParsing", "inputs": {"parser": ["2", 0], "image": ["1", 0], "label_set": "lip",
                                                              "categories": "upper_clothes", "mask_mode": "combined"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "parsing_test"}},
    }
    executor = new_prompt_executor()
    first = execute_prompt(prompt, executor=executor)
    assert "2" in first["executed_nodes"]
    prompt["1"]["inputs"]["image"] = names[1]
    second = execute_prompt(prompt, executor=executor)
    assert "2" not in second["executed_nodes"] and "3" in second["executed_nodes"]
    saved = sorted(comfy_node_registry.output_dir.glob("parsing_test_*.png"))
    assert len(saved) == 2
    for path in saved:  # a lossless PNG of the palette output reads back as a LIP map
        palette_image_to_labels(np.asarray(Image.open(path).convert("RGB")), LIP)
