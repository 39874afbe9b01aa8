"""Reading images, masks, label maps and keypoints into the sample-dict tensors (see ``sample.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...models.parsing import LabelSet, load_label_map
from ...models.pose import BodyPose
from .files import require_file

Size = tuple[int, int]  # (height, width)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file without decoding its pixels."""
    with Image.open(require_file(path, "image")) as image:
        return image.size


def load_image(path: Path, size: Size | None = None) -> torch.Tensor:
    """RGB image as float32 (3, H, W) in [0, 1], resized (bilinear, antialiased) to ``size``."""
    with Image.open(require_file(path, "image")) as image:
        image = image.convert("RGB")
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0  # (H, W, 3)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()  # (3, H, W)


def array_to_image_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) or (H, W) uint8 array -> float32 (3, H, W) in [0, 1] (grey is repeated to RGB)."""
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)  # (H, W, 3)
    return torch.from_numpy(array.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()  # (3, H, W)


def load_mask(path: Path, size: Size | None = None, threshold: float = 0.5) -> torch.Tensor:
    """Binary mask as float32 (1, H, W) in {0, 1}: grey level >= ``threshold`` * 255 (nearest resize)."""
    with Image.open(require_file(path, "mask")) as image:
        image = image.convert("L")
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.NEAREST)
        array = np.asarray(image, dtype=np.float32) >= threshold * 255.0  # (H, W)
    return torch.from_numpy(array.astype(np.float32))[None]  # (1, H, W)


def load_label_tensor(path: Path, label_set: LabelSet, size: Size | None = None) -> torch.Tensor:
    """Label map file as int64 (H, W), nearest-resized to ``size`` (see ``models.parsing.load_label_map``)."""
    require_file(path, "label map")
    return torch.from_numpy(resize_label_map(load_label_map(path, label_set), size))


def resize_label_map(label_map: np.ndarray, size: Size | None) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) label map to ``size`` (height, width)."""
    if size is None or label_map.shape == tuple(size):
        return label_map.astype(np.int64)
    image = Image.fromarray(label_map.astype(np.int32), mode="I")
    return np.asarray(image.resize((size[1], size[0]), Image.NEAREST)).astype(np.int64)


def pose_tensor(pose: BodyPose, size: Size | None) -> torch.Tensor:
    """A pose as float32 (18, 3) (x, y, confidence) in pixels of the output ``size`` (or its own canvas)."""
    if size is not None:
        pose = pose.resized(size[1], size[0])
    return torch.from_numpy(pose.as_array())  # (18, 3)


def output_size(size: Size | None, tensor: torch.Tensor) -> Size:
    """The (height, width) a sample ends up with: ``size`` or the loaded tensor's own."""
    return tuple(size) if size is not None else (int(tensor.shape[-2]), int(tensor.shape[-1]))
