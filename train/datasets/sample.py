"""The sample-dict convention every data-set loader in ``train.datasets`` returns (documented once, here).

A loader's ``__getitem__`` returns a plain ``dict`` with a subset of the keys below; a key is
left out when the data set has no such field (never set to ``None``, so ``torch``'s default
collate batches it). Tensors are CPU tensors:

============================ ======================= ==================================================
key                          type / shape            meaning
============================ ======================= ==================================================
``image``                    float32 (3, H, W)       the person (or product) image, RGB in **[0, 1]**
``garment``                  float32 (3, H, W)       the in-shop garment image, RGB in [0, 1]
``garment_mask``             float32 (1, H, W)       1 on the garment in ``garment``, else 0
``parsing``                  int64 (H, W)            label ids of ``image`` in the ``parsing_labels`` set
``parsing_labels``           str                     "lip" or "atr" (``models.parsing.LIP`` / ``ATR``)
``agnostic_mask``            float32 (1, H, W)       1 where a try-on repaints (``models.parsing.agnostic_mask``)
``keypoints``                float32 (18, 3)         COCO-18 (x, y, confidence) of ``image`` in pixels of
                                                     the returned image; missing points are (0, 0, 0)
``target_image``             float32 (3, H, W)       pose transfer: the same person in the target pose
``target_keypoints``         float32 (18, 3)         pose transfer: keypoints of ``target_image``
``item_images``              float32 (N, 3, H, W)    outfit: one image per item
``item_valid``               bool (N,)               outfit: False on padding items (``max_items``)
``item_ids``                 list[str]               outfit: item ids ("" on padding)
``item_categories``          list[str]               outfit: item categories ("" on padding)
``caption``                  str                     a text description ("" when the data set has none)
``category``                 str                     garment category / outfit role ("upper", "tops", ...)
``label``                    int                     class id (Fashion-MNIST)
``attributes``               dict[str, str]          extra per-item metadata columns
``name``                     str                     identifier of the sample (file stem, article id, ...)
``garment_name``             str                     identifier of the garment file
============================ ======================= ==================================================

Images are in [0, 1]; diffusion trainers that want [-1, 1] call :func:`to_signed`. ``H, W`` is the
loader's ``size`` (height, width) when given, else the file's own size. Keypoints follow the image
through every resize.
"""

from __future__ import annotations

from typing import TypedDict

import torch

IMAGE = "image"
GARMENT = "garment"
GARMENT_MASK = "garment_mask"
PARSING = "parsing"
PARSING_LABELS = "parsing_labels"
AGNOSTIC_MASK = "agnostic_mask"
KEYPOINTS = "keypoints"
TARGET_IMAGE = "target_image"
TARGET_KEYPOINTS = "target_keypoints"
ITEM_IMAGES = "item_images"
ITEM_VALID = "item_valid"
ITEM_IDS = "item_ids"
ITEM_CATEGORIES = "item_categories"
CAPTION = "caption"
CATEGORY = "category"
LABEL = "label"
ATTRIBUTES = "attributes"
NAME = "name"
GARMENT_NAME = "garment_name"


class Sample(TypedDict, total=False):
    """Type of a loader's sample dict; see the module docstring for shapes and ranges."""

    image: torch.Tensor
    garment: torch.Tensor
    garment_mask: torch.Tensor
    parsing: torch.Tensor
    parsing_labels: str
    agnostic_mask: torch.Tensor
    keypoints: torch.Tensor
    target_image: torch.Tensor
    target_keypoints: torch.Tensor
    item_images: torch.Tensor
    item_valid: torch.Tensor
    item_ids: list[str]
    item_categories: list[str]
    caption: str
    category: str
    label: int
    attributes: dict[str, str]
    name: str
    garment_name: str


def to_signed(image: torch.Tensor) -> torch.Tensor:
    """Map an image from the convention's [0, 1] to [-1, 1] (what SD VAEs expect)."""
    return image * 2.0 - 1.0
