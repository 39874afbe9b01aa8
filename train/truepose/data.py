"""TruePose training pairs: (source image, source LIP parsing, target image, target pose) from the toy
world's pose pairs or DeepFashion In-shop's pair files, and the seeded batch of each step.

- ``toyworld``: ``ToyWorld.pose_pair(i)``: source = the person's first pose, target = the second (same
  identity and garments); the source parsing is the rendered LIP map; the target keypoints are the
  second pose's COCO-18 points. A fraction of the targets (``--hidden-part-fraction``, default
  ``DEFAULT_HIDDEN_PART_FRACTION``) is drawn in a view that hides body parts (from behind, far arm
  behind the torso, waist-up or head-cut framing: ``toyworld.views``), so the target-oriented parsing
  selection M (§4.2) leaves part of the source person out (``selection_rate`` measures how often).
- ``deepfashion``: ``DeepFashionPoseTransfer`` pairs (cfld or pidm layout) at the training size; the
  source parsing is the palette PNG ``<parsing dir>/<source image stem>.png`` in the LIP or ATR palette
  (``models.parsing.load_label_map``; ATR is converted to LIP, because CAA's regions and the §4.2
  selection rule are LIP's), nearest-resized to the training size. A missing file is an error naming it.

Target skeletons are drawn with ``models.pose.render_skeleton`` at the training size (OpenPose colours
on black, the image the ComfyUI nodes receive from a POSE_KEYPOINT); the stick width scales with the
picture (``models.truepose.pose_encoder.draw_target_skeleton``, shared with the nodes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...models.errors import AtelierError
from ...models.parsing import ATR, LIP, convert_label_map, load_label_map
from ...models.pose import BodyPose, pose_from_array
from ...models.truepose.pose_encoder import draw_target_skeleton
from ..datasets import sample as keys
from ..datasets.deepfashion import DeepFashionPoseTransfer
from ..datasets.images import array_to_image_tensor, resize_label_map
from ..global_batch import process_rows
from ..toyworld import PosePair, ToyWorld, ToyWorldConfig
from .options import (  # noqa: F401  (defined with the options, which import nothing heavy)
    DATA_SOURCES,
    DEFAULT_HIDDEN_PART_FRACTION,
    LATENT_FACTOR,
    PRESETS,
    SizeOptionError,
    parse_size,
)

PARSING_LABEL_SETS = {"lip": LIP, "atr": ATR}


class ParsingFileError(AtelierError, FileNotFoundError):
    """The source parsing file of a DeepFashion pair is missing from ``--parsing-dir``."""


@dataclass(frozen=True)
class PoseTransferSample:
    """One training pair.

    Args:
        source: (3, H, W) source image in [0, 1].
        parsing: (H, W) int64 LIP labels of the source.
        target: (3, H, W) ground-truth target image in [0, 1].
        target_pose: COCO-18 pose of the target on the (W, H) canvas.
        skeleton: (3, H, W) the target pose drawn as an OpenPose skeleton, in [0, 1].
        name: identifier (toy index or "<source>__<target>").
    """

    source: torch.Tensor
    parsing: np.ndarray
    target: torch.Tensor
    target_pose: BodyPose
    skeleton: torch.Tensor
    name: str


def draw_skeleton(pose: BodyPose, size: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) skeleton image in [0, 1] of ``pose`` at ``size`` (height, width)."""
    return array_to_image_tensor(draw_target_skeleton(pose, *size))  # from (H, W, 3)


class ToyPosePairs:
    """Toy-world pose pairs ``start .. start + count - 1`` at ``size`` (height, width).

    Args:
        size: picture size (multiples of 8).
        start: first person index (evaluation uses held-out indices far above the training ones).
        count: number of pairs.
        seed: toy-world seed.
        hidden_part_fraction: probability that a target is drawn in a view that hides body parts.
    """

    def __init__(self, size: tuple[int, int], start: int = 0, count: int = 1000, seed: int = 0,
                 hidden_part_fraction: float = DEFAULT_HIDDEN_PART_FRACTION) -> None:
        self.size = size
        self.start = start
        self.count = count
        self.world = ToyWorld(ToyWorldConfig(height=size[0], width=size[1], seed=seed, num_people=start + count,
                                             hidden_part_fraction=hidden_part_fraction))

    def __len__(self) -> int:
        return self.count

    def pair(self, position: int) -> PosePair:
        """The toy world's PosePair at ``position`` (with every ground truth)."""
        return self.world.pose_pair(self.start + position)

    def target_pose(self, pair: PosePair, position: int) -> BodyPose:
        """The COCO-18 target pose of ``pair`` (the PosePair at ``position``) on the (W, H) canvas."""
        height, width = self.size
        return pose_from_array(pair.target.keypoints, width, height, source=f"toy person {self.start + position}")

    def __getitem__(self, position: int) -> PoseTransferSample:
        pair = self.pair(position)
        pose = self.target_pose(pair, position)
        return PoseTransferSample(
            source=array_to_image_tensor(pair.source.image), parsing=pair.source.parsing.astype(np.int64),
            target=array_to_image_tensor(pair.target.image), target_pose=pose,
            skeleton=draw_skeleton(pose, self.size), name=f"toy{self.start + position}",
        )


class DeepFashionPairs:
    """DeepFashion In-shop pose-transfer pairs with source parsing files.

    Args:
        root: the DeepFashion folder (cfld or pidm layout, ``train.datasets.deepfashion``).
        parsing_dir: folder of ``<source image stem>.png`` parsing maps.
        label_set: LIP or ATR, the palette of those files.
        size: training size (height, width).
        split: "train" or "test".
    """

    def __init__(self, root: str | Path, parsing_dir: str | Path, label_set, size: tuple[int, int],
                 split: str = "train") -> None:
        self.pairs = DeepFashionPoseTransfer(root, split, size=size)
        self.parsing_dir = Path(parsing_dir)
        self.label_set = label_set
        self.size = size

    def __len__(self) -> int:
        return len(self.pairs)

    def parsing_path(self, position: int) -> Path:
        """The parsing file of pair ``position``'s source image."""
        source, _ = self.pairs.pairs[position]
        return self.parsing_dir / f"{Path(source).stem}.png"

    def __getitem__(self, position: int) -> PoseTransferSample:
        path = self.parsing_path(position)
        if not path.is_file():
            raise ParsingFileError(
                f"source parsing {str(path)!r} is missing; --parsing-dir must hold <source image stem>.png for every pair"
            )
        sample = self.pairs[position]
        labels = resize_label_map(load_label_map(path, self.label_set), self.size)  # (H, W)
        if self.label_set != LIP:
            labels = convert_label_map(labels, self.label_set, LIP)
        height, width = self.size
        keypoints = sample[keys.TARGET_KEYPOINTS].numpy()  # (18, 3) in pixels of the training size
        pose = pose_from_array(keypoints, width, height, source=f"target keypoints of {sample[keys.NAME]}")
        return PoseTransferSample(
            source=sample[keys.IMAGE], parsing=labels.astype(np.int64), target=sample[keys.TARGET_IMAGE],
            target_pose=pose, skeleton=draw_skeleton(pose, self.size), name=sample[keys.NAME],
        )


@dataclass
class PoseTransferBatch:
    """A batch of pairs: ``sources``, ``targets``, ``skeletons`` (B, 3, H, W); ``parsings`` and
    ``target_poses`` stay per row (numpy / BodyPose: they feed the source-side conditions)."""

    sources: torch.Tensor
    targets: torch.Tensor
    skeletons: torch.Tensor
    parsings: list[np.ndarray]
    target_poses: list[BodyPose]
    names: list[str]

    def to(self, device: torch.device | str) -> PoseTransferBatch:
        """The image tensors moved to ``device``."""
        return PoseTransferBatch(self.sources.to(device), self.targets.to(device), self.skeletons.to(device),
                                 self.parsings, self.target_poses, self.names)


def collate(samples: Sequence[PoseTransferSample]) -> PoseTransferBatch:
    """Stack samples into a batch."""
    return PoseTransferBatch(
        sources=torch.stack([s.source for s in samples]), targets=torch.stack([s.target for s in samples]),
        skeletons=torch.stack([s.skeleton for s in samples]), parsings=[s.parsing for s in samples],
        target_poses=[s.target_pose for s in samples], names=[s.name for s in samples],
    )


def batch_for_step(dataset, step: int, batch_size: int, seed: int, process: int = 0, processes: int = 1) -> PoseTransferBatch:
    """The batch of training step ``step``: this process's ``batch_size`` of the global batch's pairs
    drawn from ``(seed, step)``, so a resumed run sees exactly the batches it would have seen."""
    rng = np.random.default_rng((seed, step, 0, 13))
    rows = process_rows(rng, len(dataset), batch_size, process, processes)
    return collate([dataset[int(i)] for i in rows])


def build_dataset(source: str, size: tuple[int, int], *, people: int = 1000, world_seed: int = 0,
                  data_root: str | None = None, parsing_dir: str | None = None, label_set: str = "lip",
                  split: str = "train", hidden_part_fraction: float = DEFAULT_HIDDEN_PART_FRACTION):
    """The training pairs of ``--data`` (``hidden_part_fraction``: toy world only)."""
    if source == "toyworld":
        return ToyPosePairs(size, 0, people, world_seed, hidden_part_fraction)
    return DeepFashionPairs(data_root, parsing_dir, PARSING_LABEL_SETS[label_set], size, split)
