"""Human parsing from a SegFormer clothes parser, without ComfyUI: a tiny random parser in the published
folder layout loads offline, its label maps follow the model card's recipe at the input's own size,
ATR/LIP names and conversions are right, the outputs decode in the conventions the parsing-consuming
nodes read, and every bad folder gets an error that says what to fix."""

import json
import pickle

import numpy as np
import pytest
import torch
from atelier.models.errors import WeightFileError
from atelier.models.parser_labels import (
    ParserLabelsError,
    canonical_label,
    category_groups,
    match_label_set,
)
from atelier.models.parsing import ATR, LIP, UnknownLabelError, palette_image_to_labels
from atelier.models.parsing_outputs import (
    category_masks,
    convert_labels,
    label_id_images,
    palette_images,
)
from atelier.models.segformer_files import (
    NotSegformerError,
    ParserFolderError,
    load_segformer_parser,
)
from atelier.models.segformer_parser import (
    Preprocessing,
    labels_from_logits,
    preprocess,
)
from tiny_segformer import (
    LIP_ID2LABEL,
    PREPROCESSOR,
    PUBLISHED_ATR_ID2LABEL,
    PUBLISHED_KEYS,
    saved_keys,
    write_tiny_segformer,
)

# The Fashionpedia classes of sayeed99/segformer_b2_fashion: a SegFormer, but not a human parser.
FASHIONPEDIA_ID2LABEL = {"0": "Everything Else", "1": "shirt, blouse", "2": "top, t-shirt, sweatshirt", "3": "sweater"}


@pytest.fixture(scope="module")
def parser_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segformer") / "segformer_b2_clothes"
    model = write_tiny_segformer(folder)
    return folder, model


@pytest.fixture(scope="module")
def parser(parser_folder):
    return load_segformer_parser(parser_folder[0])


def image_batch(batch=2, height=37, width=53, seed=0):
    return torch.rand(batch, height, width, 3, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------- labels


def test_published_atr_spelling_is_atr_in_order():
    labels = match_label_set(PUBLISHED_ATR_ID2LABEL)
    assert labels.label_set == ATR and labels.is_identity
    assert [canonical_label(PUBLISHED_ATR_ID2LABEL[str(i)]) for i in range(18)] == list(ATR.labels)


def test_lip_spelling_is_lip_and_a_shuffled_order_is_mapped_by_name():
    assert match_label_set(LIP_ID2LABEL).label_set == LIP
    order = [4, 0, 17, 9, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]
    shuffled = {str(k): PUBLISHED_ATR_ID2LABEL[str(old)] for k, old in enumerate(order)}
    labels = match_label_set(shuffled)
    assert labels.label_set == ATR and labels.to_set == tuple(order)


def test_canonical_label_ignores_case_and_separators():
    assert canonical_label("Upper-clothes") == canonical_label("upper clothes") == "upper_clothes"
    assert canonical_label(" Left-Shoe ") == "left_shoe"
    assert canonical_label("Jumpsuit") == "jumpsuits"


def test_other_label_sets_are_refused_with_the_differences():
    with pytest.raises(ParserLabelsError, match="neither the 18 ATR classes.*nor the 20 LIP classes") as error:
        match_label_set(FASHIONPEDIA_ID2LABEL, source="parser folder fashion")
    assert "parser folder fashion" in str(error.value) and "shirt, blouse" in str(error.value)
    plus_one = {**PUBLISHED_ATR_ID2LABEL, "18": "Necklace"}
    with pytest.raises(ParserLabelsError, match="not in ATR: necklace"):
        match_label_set(plus_one)
    with pytest.raises(ParserLabelsError, match="several class ids"):
        match_label_set({**PUBLISHED_ATR_ID2LABEL, "17": "Bag"})
    with pytest.raises(ParserLabelsError, match="without gaps"):
        match_label_set({"0": "Background", "2": "Hat"})


def test_category_groups():
    assert category_groups("upper_clothes", LIP) == (("upper_clothes",),)
    assert category_groups("Upper-clothes + coat, pants+skirt,", LIP) == (("upper_clothes", "coat"), ("pants", "skirt"))
    with pytest.raises(UnknownLabelError, match=r"'categories' names 'coat', not ATR class\(es\); ATR names: background"):
        category_groups("upper_clothes+coat", ATR)
    with pytest.raises(UnknownLabelError, match="'categories' is empty; .*LIP names"):
        category_groups(" , ", LIP)
    with pytest.raises(UnknownLabelError, match="empty name"):
        category_groups("pants+", LIP)


# ---------------------------------------------------------------------------- loading and the recipe


def test_the_tiny_folder_has_the_published_layout(parser_folder):
    folder, _ = parser_folder
    assert {path.name for path in folder.iterdir()} == {"config.json", "model.safetensors", "preprocessor_config.json"}
    assert set(PUBLISHED_KEYS) <= saved_keys(folder)
    assert json.loads((folder / "config.json").read_text())["id2label"] == PUBLISHED_ATR_ID2LABEL


def test_loads_offline_as_an_atr_parser_with_the_processor_settings(parser):
    assert parser.label_set == ATR and parser.name == "segformer_b2_clothes"
    assert (parser.preprocessing.height, parser.preprocessing.width) == (64, 64)
    assert not parser.training


def test_label_maps_have_the_input_size_and_valid_ids(parser):
    for height, width in ((37, 53), (96, 64)):
        with torch.no_grad():
            labels = parser(image_batch(2, height, width))
        assert labels.shape == (2, height, width) and labels.dtype == torch.int64
        assert 0 <= int(labels.min()) and int(labels.max()) < len(ATR)
        assert len(torch.unique(labels)) > 2  # the random parser does not give one class everywhere


def test_preprocessing_matches_segformer_image_processor():
    from transformers import SegformerImageProcessor

    config = {key: value for key, value in PREPROCESSOR.items() if key != "image_processor_type"}
    processor = SegformerImageProcessor(**config)
    rng = np.random.default_rng(1)
    for shape in ((37, 53), (200, 150)):
        pixels = (rng.random((*shape, 3)) * 255).astype(np.uint8)
        expected = processor(images=pixels, return_tensors="pt")["pixel_values"]  # (1, 3, 64, 64)
        mine = preprocess(torch.from_numpy(pixels).float()[None] / 255, Preprocessing.from_processor_config(config))
        assert mine.shape == expected.shape
        # the processor rounds its resized image to uint8: at most one grey level (0.0174 after normalising)
        assert float((mine - expected).abs().max()) < 1.05 / 255 / min(PREPROCESSOR["image_std"])


def test_labels_follow_the_model_card_recipe(parser, parser_folder):
    _, model = parser_folder
    image = image_batch(1, 45, 31, seed=3)
    values = preprocess(image, parser.preprocessing)
    with torch.no_grad():
        logits = model(pixel_values=values).logits  # (1, 18, 16, 16)
        card = torch.nn.functional.interpolate(logits, size=(45, 31), mode="bilinear", align_corners=False).argmax(dim=1)
        assert torch.equal(parser(image), card)
    assert torch.equal(labels_from_logits(logits, (45, 31)), card)


def test_a_shuffled_parser_gives_the_same_atr_ids(tmp_path, parser):
    order = [4, 0, 17, 9, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]
    shuffled = {str(k): PUBLISHED_ATR_ID2LABEL[str(old)] for k, old in enumerate(order)}
    write_tiny_segformer(tmp_path / "shuffled", shuffled)
    loaded = load_segformer_parser(tmp_path / "shuffled")
    image = image_batch(1)
    with torch.no_grad():
        raw = labels_from_logits(loaded.segformer(pixel_values=preprocess(image, loaded.preprocessing)).logits, (37, 53))
        assert torch.equal(loaded(image), torch.tensor(order)[raw])


def test_a_pickle_only_folder_loads_the_same_weights(tmp_path, parser):
    write_tiny_segformer(tmp_path / "bin_only", weights="bin")
    assert {p.name for p in (tmp_path / "bin_only").iterdir()} >= {"pytorch_model.bin"}
    assert not (tmp_path / "bin_only" / "model.safetensors").exists()
    loaded = load_segformer_parser(tmp_path / "bin_only")
    image = image_batch(1)
    with torch.no_grad():
        assert torch.equal(loaded(image), parser(image))


class _RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_with_code_is_refused_without_running_it(tmp_path):
    folder = tmp_path / "evil"
    write_tiny_segformer(folder, weights="none")
    marker = tmp_path / "code_ran"
    with open(folder / "pytorch_model.bin", "wb") as handle:
        pickle.dump({"decode_head.classifier.weight": _RunsCodeWhenUnpickled(marker)}, handle, protocol=2)
    with pytest.raises(WeightFileError, match="weights_only=True.*not loaded"):
        load_segformer_parser(folder)
    assert not marker.exists()


# ---------------------------------------------------------------------------- errors


def test_missing_folder_and_files_are_named(tmp_path):
    with pytest.raises(ParserFolderError, match="does not exist"):
        load_segformer_parser(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParserFolderError, match="has no config.json"):
        load_segformer_parser(tmp_path / "empty")
    write_tiny_segformer(tmp_path / "no_weights", weights="none")
    with pytest.raises(ParserFolderError, match=r"has no weights .*holds \['config.json', 'preprocessor_config.json'\]"):
        load_segformer_parser(tmp_path / "no_weights")


def test_a_folder_that_is_not_a_segformer_parser(tmp_path):
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "config.json").write_text(json.dumps({"model_type": "clip_vision_model"}))
    with pytest.raises(NotSegformerError, match="'clip_vision_model' model"):
        load_segformer_parser(tmp_path / "clip")
    (tmp_path / "classifier").mkdir()
    (tmp_path / "classifier" / "config.json").write_text(
        json.dumps({"model_type": "segformer", "architectures": ["SegformerForImageClassification"]}))
    with pytest.raises(NotSegformerError, match="SegformerForImageClassification.*not a SegformerForSemanticSegmentation"):
        load_segformer_parser(tmp_path / "classifier")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(WeightFileError, match="cannot be read as JSON"):
        load_segformer_parser(tmp_path / "broken")


def test_labels_that_are_not_atr_or_lip_are_refused_before_the_weights(tmp_path):
    write_tiny_segformer(tmp_path / "fashion", FASHIONPEDIA_ID2LABEL, weights="none")
    with pytest.raises(ParserLabelsError, match="fashion has 4 classes"):
        load_segformer_parser(tmp_path / "fashion")


def test_truncated_and_mismatched_weights(tmp_path, parser_folder):
    source, _ = parser_folder
    write_tiny_segformer(tmp_path / "truncated")
    data = (source / "model.safetensors").read_bytes()
    (tmp_path / "truncated" / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match="truncated.*download it again"):
        load_segformer_parser(tmp_path / "truncated")
    write_tiny_segformer(tmp_path / "wider", decoder_hidden_size=24)  # its config says 24, the file below has 16
    (tmp_path / "wider" / "model.safetensors").write_bytes(data)
    with pytest.raises(WeightFileError, match="its config.json describes.*another model size"):
        load_segformer_parser(tmp_path / "wider")
    from safetensors.torch import load_file, save_file

    state = load_file(str(source / "model.safetensors"))
    write_tiny_segformer(tmp_path / "partial")
    save_file({k: v for k, v in state.items() if not k.startswith("decode_head.classifier")},
              str(tmp_path / "partial" / "model.safetensors"))
    with pytest.raises(WeightFileError, match="weights missing"):
        load_segformer_parser(tmp_path / "partial")


# ---------------------------------------------------------------------------- outputs


def atr_map():
    labels = torch.zeros(2, 6, 8, dtype=torch.int64)
    labels[0, :3] = ATR.index("upper_clothes")
    labels[0, 3:, :4] = ATR.index("belt")
    labels[0, 3:, 4:] = ATR.index("bag")
    labels[1, :, :5] = ATR.index("pants")
    labels[1, :, 5:] = ATR.index("left_arm")
    return labels


def test_atr_maps_convert_to_lip_by_name():
    lip = convert_labels(atr_map(), ATR, LIP)
    assert lip[0, 0, 0] == LIP.index("upper_clothes")
    assert lip[0, 4, 0] == LIP.index("pants") and lip[0, 4, 6] == LIP.index("background")  # belt, bag
    assert lip[1, 0, 0] == LIP.index("pants") and lip[1, 0, 7] == LIP.index("left_arm")
    assert torch.equal(convert_labels(atr_map(), ATR, ATR), atr_map())


def test_palette_and_id_images_decode_exactly():
    labels = convert_labels(atr_map(), ATR, LIP)
    palette = palette_images(labels, LIP)
    ids = label_id_images(labels)
    assert palette.shape == ids.shape == (2, 6, 8, 3) and palette.dtype == ids.dtype == torch.float32
    for row in range(2):
        colours = (palette[row].clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # as the consuming nodes read it
        assert np.array_equal(palette_image_to_labels(colours, LIP), labels[row].numpy())
        grey = (ids[row] * 255).round().to(torch.int64)
        assert torch.equal(grey[..., 0], labels[row]) and torch.equal(grey[..., 0], grey[..., 2])


def test_the_id_image_reads_back_through_encode_pose_source_inputs():
    from atelier.nodes.truepose_inputs import source_labels

    labels = torch.zeros(1, 16, 16, dtype=torch.int64)
    labels[0, 4:12, 4:12] = LIP.index("upper_clothes")
    labels[0, :4] = LIP.index("face")
    source = torch.rand(1, 16, 16, 3)
    assert torch.equal(source_labels(label_id_images(labels), "lip_ids", source), labels)
    assert torch.equal(source_labels(palette_images(labels, LIP), "lip_palette", source), labels)


def test_category_masks_combined_and_per_category():
    labels = convert_labels(atr_map(), ATR, LIP)
    groups = category_groups("upper_clothes, pants+left_arm", LIP)
    combined = category_masks(labels, LIP, groups)
    assert combined.shape == (2, 6, 8) and combined.dtype == torch.float32
    assert torch.equal(combined[0], ((labels[0] == 5) | (labels[0] == 9)).float())
    assert combined[1].min() == 1.0
    per = category_masks(labels, LIP, groups, combined=False)
    assert per.shape == (4, 6, 8)  # image-major: image 0 (upper, lower), image 1 (upper, lower)
    assert torch.equal(per[0], (labels[0] == LIP.index("upper_clothes")).float())
    assert torch.equal(per[1], (labels[0] == LIP.index("pants")).float())
    assert per[2].max() == 0.0 and per[3].min() == 1.0
