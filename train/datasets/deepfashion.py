"""DeepFashion In-shop pose-transfer pairs, in the two layouts that PIDM and CFLD publish.

"cfld" layout (CFLD, DPTN, GFLA; the csv files are spelled ``fasion-`` in the released archive and
``fashion-`` in some READMEs, both are accepted)::

    root/fasion-resize-pairs-<split>.csv        header "from,to", flat image names
    root/fasion-resize-annotation-<split>.csv   header "name:keypoints_y:keypoints_x", ':'-separated,
                                                JSON lists of 18 coordinates, -1 when missing,
                                                in a 176x256 (width x height) frame
    root/<split>_highres/<name>.jpg             images (CFLD); GFLA/DPTN use root/<split>/<name>.jpg

"pidm" layout (PIDM)::

    root/<split>_pairs.txt          "target,source[,source...]" per line, paths relative to root
                                    such as img/MEN/Denim/id_00000080/01_1_front.jpg
    root/img/...                    images
    root/pose/....txt               (18, 2) rows "x y", -1 when missing, in a 256x256 frame whose
                                    person area starts at x = 40 (PIDM's ``trans_keypoins``
                                    subtracts 40 and scales by 176)

Every (source, target) pair is one sample (a PIDM line with several sources gives several).
Samples follow ``train.datasets.sample``: image and keypoints of the source, target_image and
target_keypoints, name "<source>__<target>".
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Literal

import numpy as np
from torch.utils.data import Dataset

from ...models.pose import BodyPose, pose_from_array
from . import sample as keys
from .files import (
    DatasetFormatError,
    DatasetLayoutError,
    first_existing_dir,
    first_existing_file,
    read_pair_lines,
    require_dir,
    require_file,
)
from .images import Size, load_image, output_size, pose_tensor

CFLD_FRAME = (176, 256)  # (width, height) of the cfld annotation coordinates
PIDM_FRAME = (176, 256)  # after removing PIDM's 40-pixel x offset
PIDM_X_OFFSET = 40.0


class DeepFashionPoseTransfer(Dataset):
    """DeepFashion In-shop (source, target) pose-transfer pairs.

    Args:
        root: the data set folder (``fashion/`` for CFLD, ``dataset/deepfashion/`` for PIDM).
        split: "train" or "test".
        layout: "cfld", "pidm", or "auto" (cfld when its pair csv exists, else pidm).
        size: (height, width) to resize to, or None for the files' size.
    """

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "test"] = "train",
        *,
        layout: Literal["auto", "cfld", "pidm"] = "auto",
        size: Size | None = None,
    ) -> None:
        self.root = require_dir(Path(root), "DeepFashion root")
        self.size = size
        if layout == "auto":
            has_cfld = any((self.root / f"{p}-resize-pairs-{split}.csv").is_file() for p in ("fasion", "fashion"))
            has_pidm = (self.root / f"{split}_pairs.txt").is_file()
            if not (has_cfld or has_pidm):
                raise DatasetLayoutError(
                    f"DeepFashion {split} pair list not found in {self.root}: expected "
                    f"fasion-resize-pairs-{split}.csv (CFLD) or {split}_pairs.txt (PIDM)"
                )
            layout = "cfld" if has_cfld else "pidm"
        self.layout = layout
        if layout == "cfld":
            self._init_cfld(split)
        elif layout == "pidm":
            self._init_pidm(split)
        else:
            raise ValueError(f"layout must be 'auto', 'cfld' or 'pidm', got {layout!r}")

    def _init_cfld(self, split: str) -> None:
        pairs_path = first_existing_file(
            self.root, [f"{p}-resize-pairs-{split}.csv" for p in ("fasion", "fashion")], "DeepFashion pair csv"
        )
        annotation_path = first_existing_file(
            self.root, [f"{p}-resize-annotation-{split}.csv" for p in ("fasion", "fashion")],
            "DeepFashion keypoint annotation csv",
        )
        self.image_dir = first_existing_dir(self.root, (f"{split}_highres", split), "DeepFashion image")
        with pairs_path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"from", "to"} <= set(reader.fieldnames):
                raise DatasetFormatError(f"{pairs_path}: expected a header with 'from' and 'to' columns")
            self.pairs = [(row["from"], row["to"]) for row in reader]
        self.annotations = _read_cfld_annotations(annotation_path)
        self._annotation_path = annotation_path

    def _init_pidm(self, split: str) -> None:
        require_dir(self.root / "img", "DeepFashion img")
        require_dir(self.root / "pose", "DeepFashion pose")
        rows = read_pair_lines(self.root / f"{split}_pairs.txt", f"DeepFashion {split} pair list", separator=",")
        self.pairs = [(source, row[0]) for row in rows for source in row[1:]]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> keys.Sample:
        source, target = self.pairs[index]
        source_image = load_image(self._image_path(source), self.size)
        size = output_size(self.size, source_image)
        target_image = load_image(self._image_path(target), size)
        if self.layout == "cfld":
            source_pose, target_pose = self._cfld_pose(source), self._cfld_pose(target)
        else:
            source_pose, target_pose = self._pidm_pose(source), self._pidm_pose(target)
        return {
            keys.IMAGE: source_image,
            keys.KEYPOINTS: pose_tensor(source_pose, size),
            keys.TARGET_IMAGE: target_image,
            keys.TARGET_KEYPOINTS: pose_tensor(target_pose, size),
            keys.NAME: f"{Path(source).stem}__{Path(target).stem}",
        }

    def _image_path(self, name: str) -> Path:
        return self.image_dir / name if self.layout == "cfld" else self.root / name

    def _cfld_pose(self, name: str) -> BodyPose:
        if name not in self.annotations:
            raise DatasetFormatError(f"{self._annotation_path} has no keypoints for image {name!r}")
        return self.annotations[name]

    def _pidm_pose(self, relative: str) -> BodyPose:
        path = self.root / str(Path(relative).with_suffix(".txt")).replace("img/", "pose/", 1)
        require_file(path, "DeepFashion pose file")
        rows = np.loadtxt(path, dtype=np.float32, ndmin=2)
        if rows.shape != (18, 2):
            raise DatasetFormatError(f"{path}: expected 18 rows of 'x y', got shape {rows.shape}")
        present = (rows[:, 0] != -1) & (rows[:, 1] != -1)
        xy = np.where(present[:, None], rows - np.array([PIDM_X_OFFSET, 0.0], dtype=np.float32), 0.0)
        array = np.concatenate([xy, present[:, None].astype(np.float32)], axis=1)  # (18, 3)
        return pose_from_array(array, *PIDM_FRAME, source=str(path))


def _read_cfld_annotations(path: Path) -> dict[str, BodyPose]:
    """name -> pose from a ``*-resize-annotation-*.csv`` (':'-separated, y and x JSON lists)."""
    poses = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter=":")
        if reader.fieldnames is None or not {"name", "keypoints_y", "keypoints_x"} <= set(reader.fieldnames):
            raise DatasetFormatError(f"{path}: expected a header 'name:keypoints_y:keypoints_x'")
        for number, row in enumerate(reader, start=2):
            try:
                ys = np.asarray(json.loads(row["keypoints_y"]), dtype=np.float32)
                xs = np.asarray(json.loads(row["keypoints_x"]), dtype=np.float32)
            except (TypeError, ValueError) as error:
                raise DatasetFormatError(f"{path}:{number}: bad keypoint lists: {error}") from error
            if ys.shape != (18,) or xs.shape != (18,):
                raise DatasetFormatError(f"{path}:{number}: expected 18 y and 18 x values, got {ys.shape}, {xs.shape}")
            present = (ys != -1) & (xs != -1)
            array = np.stack([np.where(present, xs, 0), np.where(present, ys, 0), present.astype(np.float32)], axis=1)
            poses[row["name"]] = pose_from_array(array, *CFLD_FRAME, source=f"{path}:{number}")
    return poses
