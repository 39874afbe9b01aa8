"""Small fake trees in the public data sets' layouts, for the loader tests (a few files each).

Every image is a solid colour chosen per file, so a test can tell which file a loader read.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
from PIL import Image

from atelier.models.labels import ATR_LABELS, LIP_LABELS, LIP_PALETTE

# A person standing and facing the camera, COCO-18 order, coordinates as fractions of (width, height).
STANDING_POSE = np.array([
    (0.50, 0.12), (0.50, 0.22), (0.38, 0.23), (0.33, 0.38), (0.30, 0.52), (0.62, 0.23),
    (0.67, 0.38), (0.70, 0.52), (0.44, 0.55), (0.44, 0.72), (0.44, 0.90), (0.56, 0.55),
    (0.56, 0.72), (0.56, 0.90), (0.47, 0.10), (0.53, 0.10), (0.45, 0.11), (0.55, 0.11),
], dtype=np.float32)

# BODY_25 index of each COCO-18 point (MidHip is 8, feet are 19..24).
_BODY25_FROM_COCO = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)


def colour(index: int) -> tuple[int, int, int]:
    """A distinct, JPEG-robust solid colour per file index."""
    return (40 + (index * 70) % 200, 200 - (index * 50) % 160, 60 + (index * 30) % 180)


def write_rgb(path: Path, height: int, width: int, rgb: tuple[int, int, int]) -> None:
    """A solid RGB image (JPEG or PNG by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), rgb, dtype=np.uint8)).save(path, quality=100)


def fake_lip_map(height: int, width: int) -> np.ndarray:
    """(H, W) LIP ids of a standing person matching :data:`STANDING_POSE`."""
    lip = {name: i for i, name in enumerate(LIP_LABELS)}
    label_map = np.zeros((height, width), dtype=np.uint8)

    def box(name: str, x0: float, y0: float, x1: float, y1: float) -> None:
        label_map[int(y0 * height):int(y1 * height), int(x0 * width):int(x1 * width)] = lip[name]

    box("hair", 0.40, 0.03, 0.60, 0.08)
    box("face", 0.42, 0.08, 0.58, 0.20)
    box("upper_clothes", 0.38, 0.21, 0.62, 0.55)
    box("right_arm", 0.28, 0.23, 0.38, 0.55)
    box("left_arm", 0.62, 0.23, 0.72, 0.55)
    box("pants", 0.40, 0.55, 0.60, 0.88)
    box("right_shoe", 0.40, 0.88, 0.50, 0.95)
    box("left_shoe", 0.50, 0.88, 0.60, 0.95)
    return label_map


def lip_to_atr_ids(label_map: np.ndarray) -> np.ndarray:
    """Same-name LIP -> ATR ids for the classes :func:`fake_lip_map` uses."""
    table = np.zeros(len(LIP_LABELS), dtype=np.uint8)
    for index, name in enumerate(LIP_LABELS):
        if name in ATR_LABELS:
            table[index] = ATR_LABELS.index(name)
    return table[label_map]


def write_palette_png(path: Path, label_map: np.ndarray) -> None:
    """A palette-mode PNG of LIP ids with the LIP palette (as VITON-HD ships image-parse-v3)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(label_map.astype(np.uint8), mode="P")
    image.putpalette([value for rgb in LIP_PALETTE for value in rgb])
    image.save(path)


def write_grey_png(path: Path, label_map: np.ndarray) -> None:
    """A single-channel PNG of label ids (as DressCode ships label_maps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label_map.astype(np.uint8), mode="L").save(path)


def build_vitonhd(root: Path, height: int = 32, width: int = 24) -> list[tuple[str, str]]:
    """VITON-HD tree with 2 test pairs (unpaired: each person wears the other's garment)."""
    split = root / "test"
    names = ["00001_00", "00002_00"]
    for index, name in enumerate(names):
        write_rgb(split / "image" / f"{name}.jpg", height, width, colour(index))
        write_rgb(split / "cloth" / f"{name}.jpg", height, width, colour(index + 10))
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = 255
        (split / "cloth-mask").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(split / "cloth-mask" / f"{name}.jpg", quality=100)
        write_palette_png(split / "image-parse-v3" / f"{name}.png", fake_lip_map(height, width))
        body25 = np.zeros((25, 3), dtype=np.float32)
        body25[list(_BODY25_FROM_COCO), :2] = STANDING_POSE * np.array([width, height])
        body25[list(_BODY25_FROM_COCO), 2] = 0.9
        (split / "openpose_json").mkdir(parents=True, exist_ok=True)
        (split / "openpose_json" / f"{name}_keypoints.json").write_text(
            json.dumps({"version": 1.3, "people": [{"pose_keypoints_2d": body25.ravel().tolist()}]})
        )
    pairs = [(f"{names[0]}.jpg", f"{names[1]}.jpg"), (f"{names[1]}.jpg", f"{names[0]}.jpg")]
    (root / "test_pairs.txt").write_text("".join(f"{a} {b}\n" for a, b in pairs))
    return pairs


def build_dresscode(root: Path, height: int = 32, width: int = 24) -> dict[str, list[str]]:
    """DressCode tree: upper_body with 2 train pairs, dresses with 1; keypoints in the 384x512 frame."""
    created = {}
    for category, ids in (("upper_body", ["000001", "000002"]), ("dresses", ["020001"])):
        folder = root / category
        for index, identifier in enumerate(ids):
            write_rgb(folder / "images" / f"{identifier}_0.jpg", height, width, colour(index))
            write_rgb(folder / "images" / f"{identifier}_1.jpg", height, width, colour(index + 20))
            write_grey_png(folder / "label_maps" / f"{identifier}_4.png", lip_to_atr_ids(fake_lip_map(height, width)))
            rows = [[float(x * 384), float(y * 512), 0.8, i] for i, (x, y) in enumerate(STANDING_POSE)]
            rows[4] = [-1.0, -1.0, 0.0, 4]  # right wrist missing
            (folder / "keypoints").mkdir(parents=True, exist_ok=True)
            (folder / "keypoints" / f"{identifier}_2.json").write_text(json.dumps({"keypoints": rows}))
        (folder / "train_pairs.txt").write_text("".join(f"{i}_0.jpg {i}_1.jpg\n" for i in ids))
        created[category] = ids
    return created


def build_deepfashion_cfld(root: Path, height: int = 32, width: int = 22) -> list[tuple[str, str]]:
    """CFLD/DPTN layout (spelled 'fasion-' as released) with 2 train pairs over 3 images."""
    names = ["fashionWOMENDressesid0000000101_1front.jpg", "fashionWOMENDressesid0000000101_2side.jpg",
             "fashionMENDenimid0000008001_1front.jpg"]
    for index, name in enumerate(names):
        write_rgb(root / "train_highres" / name, height, width, colour(index))
    pairs = [(names[0], names[1]), (names[1], names[0])]
    with (root / "fasion-resize-pairs-train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["from", "to"])
        writer.writerows(pairs)
    lines = ["name:keypoints_y:keypoints_x"]
    for index, name in enumerate(names):
        ys = [int(y * 256) for _, y in STANDING_POSE]
        xs = [int(x * 176) + index for x, _ in STANDING_POSE]
        ys[17] = xs[17] = -1  # left ear missing
        lines.append(f"{name}: {json.dumps(ys)}: {json.dumps(xs)}")
    (root / "fasion-resize-annotation-train.csv").write_text("\n".join(lines) + "\n")
    return pairs


def build_deepfashion_pidm(root: Path, height: int = 32, width: int = 32) -> list[str]:
    """PIDM layout: one train line with a target and two sources; poses in PIDM's 256x256 frame."""
    names = ["img/WOMEN/Dresses/id_00000001/01_1_front.jpg", "img/WOMEN/Dresses/id_00000001/01_2_side.jpg",
             "img/WOMEN/Dresses/id_00000001/01_3_back.jpg"]
    for index, name in enumerate(names):
        write_rgb(root / name, height, width, colour(index))
        pose = np.stack([STANDING_POSE[:, 0] * 176 + 40, STANDING_POSE[:, 1] * 256], axis=1)
        pose[16] = -1  # right ear missing
        path = root / name.replace("img/", "pose/").replace(".jpg", ".txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(path, pose, fmt="%.1f")
    (root / "train_pairs.txt").write_text(",".join(names) + "\n")
    return names


def build_polyvore(root: Path, size: int = 16) -> dict:
    """polyvore_outfits/ with nondisjoint train outfits of 3 and 2 items."""
    base = root / "polyvore_outfits"
    outfits = [
        {"set_id": "100", "items": [{"item_id": "b1", "index": 2}, {"item_id": "t1", "index": 1},
                                    {"item_id": "s1", "index": 3}]},
        {"set_id": "200", "items": [{"item_id": "t2", "index": 1}, {"item_id": "g1", "index": 2}]},
    ]
    categories = {"t1": "tops", "b1": "bottoms", "s1": "shoes", "t2": "tops", "g1": "bags"}
    (base / "nondisjoint").mkdir(parents=True, exist_ok=True)
    (base / "nondisjoint" / "train.json").write_text(json.dumps(outfits))
    metadata = {item: {"semantic_category": category, "title": f"item {item}"} for item, category in categories.items()}
    (base / "polyvore_item_metadata.json").write_text(json.dumps(metadata))
    for index, item in enumerate(categories):
        write_rgb(base / "images" / f"{item}.jpg", size, size, colour(index))
    return {"outfits": outfits, "categories": categories}


def build_hm(root: Path, height: int = 20, width: int = 16) -> list[dict]:
    """articles.csv with 3 articles (ids written without the leading zero, as pandas saves them);
    the third has no image."""
    rows = [
        {"article_id": "108775015", "prod_name": "Strap top", "product_type_name": "Vest top",
         "product_group_name": "Garment Upper body", "graphical_appearance_name": "Solid",
         "colour_group_name": "Black", "detail_desc": "Jersey top with narrow shoulder straps."},
        {"article_id": "0110065001", "prod_name": "OP T-shirt", "product_type_name": "Bra",
         "product_group_name": "Underwear", "graphical_appearance_name": "Solid",
         "colour_group_name": "White", "detail_desc": ""},
        {"article_id": "0999999001", "prod_name": "Ghost", "product_type_name": "Sweater",
         "product_group_name": "Garment Upper body", "graphical_appearance_name": "Stripe",
         "colour_group_name": "Red", "detail_desc": "No picture of this one."},
    ]
    root.mkdir(parents=True, exist_ok=True)
    with (root / "articles.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for index, row in enumerate(rows[:2]):
        padded = row["article_id"].zfill(10)
        write_rgb(root / "images" / padded[:3] / f"{padded}.jpg", height, width, colour(index))
    (root / "images").mkdir(exist_ok=True)
    return rows


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())
