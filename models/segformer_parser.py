"""A SegFormer clothes parser as one module: IMAGE pixels -> LIP or ATR label map at the image's size.

The recipe is the model cards' (mattmdjaga/segformer_b2_clothes, sayeed99/segformer_b3_clothes):
``SegformerImageProcessor`` (resize to 512×512, rescale to [0, 1], ImageNet normalisation), the
model's logits at 1/4 of that size, upsampled bilinearly (``align_corners=False``) to the image's
own size, then argmax over classes. The processor step is done here in torch
(:func:`preprocess`), so a batch stays on the model's device.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .parser_labels import ParserLabels
from .parsing import LabelSet

logger = logging.getLogger("atelier.models.segformer_parser")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PIL_RESAMPLE_MODES = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PIL.Image NEAREST, BILINEAR, BICUBIC


@dataclass(frozen=True)
class Preprocessing:
    """What ``SegformerImageProcessor`` does to an image, read from ``preprocessor_config.json``.

    Args:
        height, width: the size images are resized to (the published parsers: 512×512).
        resize: whether to resize at all.
        mode: torch interpolation mode of the resize (from the processor's PIL ``resample``).
        scale: factor on pixels in [0, 1] (the processor rescales 0..255 by ``rescale_factor``).
        normalize: whether to subtract ``mean`` and divide by ``std`` per channel.
        mean, std: per-channel RGB statistics.
    """

    height: int = 512
    width: int = 512
    resize: bool = True
    mode: str = "bilinear"
    scale: float = 1.0
    normalize: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def from_processor_config(cls, config: Mapping) -> Preprocessing:
        """From the keys of a ``preprocessor_config.json`` (missing keys keep the processor's defaults)."""
        size = config.get("size", {"height": 512, "width": 512})
        if isinstance(size, int):
            size = {"height": size, "width": size}
        resample = int(config.get("resample", 2))
        if resample not in PIL_RESAMPLE_MODES:
            logger.warning("preprocessor resample %s has no torch mode; resizing bilinearly", resample)
        rescale = float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else 1.0
        return cls(
            height=int(size.get("height", 512)), width=int(size.get("width", 512)),
            resize=bool(config.get("do_resize", True)), mode=PIL_RESAMPLE_MODES.get(resample, "bilinear"),
            scale=rescale * 255.0, normalize=bool(config.get("do_normalize", True)),
            mean=tuple(float(v) for v in config.get("image_mean", IMAGENET_MEAN)),
            std=tuple(float(v) for v in config.get("image_std", IMAGENET_STD)),
        )


def preprocess(pixels: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """ComfyUI IMAGE pixels (B, H, W, 3) in [0, 1] -> the model's ``pixel_values`` (B, 3, h, w)."""
    values = pixels[..., :3].permute(0, 3, 1, 2).float()  # (B, 3, H, W)
    if preprocessing.resize:
        size = (preprocessing.height, preprocessing.width)
        if preprocessing.mode == "nearest":
            values = F.interpolate(values, size=size, mode="nearest")  # (B, 3, h, w)
        else:  # antialiased, like PIL's resize when it shrinks
            values = F.interpolate(values, size=size, mode=preprocessing.mode, align_corners=False, antialias=True)
    values = values * preprocessing.scale
    if preprocessing.normalize:
        mean = torch.tensor(preprocessing.mean, device=values.device).view(1, 3, 1, 1)
        std = torch.tensor(preprocessing.std, device=values.device).view(1, 3, 1, 1)
        values = (values - mean) / std
    return values


def labels_from_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Class logits (B, C, h, w) -> class ids (B, H, W) int64 at ``size`` = (H, W).

    Upsamples the logits bilinearly (``align_corners=False``), then takes the argmax over classes,
    as the model cards do; upsampling ids instead would give blocky edges.
    """
    upsampled = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)  # (B, C, H, W)
    return upsampled.argmax(dim=1)  # (B, H, W)


class SegformerParser(nn.Module):
    """A ``SegformerForSemanticSegmentation`` with its preprocessing and its map onto LIP or ATR.

    Args:
        segformer: the transformers model (eval mode).
        labels: its classes' ids in ``labels.label_set``.
        preprocessing: the processor's resize and normalisation.
        name: where it was loaded from, for messages.
    """

    def __init__(self, segformer: nn.Module, labels: ParserLabels, preprocessing: Preprocessing, name: str) -> None:
        super().__init__()
        self.segformer = segformer
        self.labels = labels
        self.preprocessing = preprocessing
        self.name = name

    @property
    def label_set(self) -> LabelSet:
        """The label set (ATR or LIP) of the maps this parser returns."""
        return self.labels.label_set

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """IMAGE pixels (B, H, W, 3) in [0, 1] -> label ids (B, H, W) int64 of :attr:`label_set`, on the model's device."""
        weight = next(self.segformer.parameters())
        values = preprocess(pixels.to(weight.device), self.preprocessing).to(weight.dtype)  # (B, 3, h, w)
        logits = self.segformer(pixel_values=values).logits  # (B, C, h/4, w/4)
        ids = labels_from_logits(logits, tuple(pixels.shape[1:3]))  # (B, H, W) parser ids
        if self.labels.is_identity:
            return ids
        to_set = torch.tensor(self.labels.to_set, dtype=torch.int64, device=ids.device)  # (C,)
        return to_set[ids]  # (B, H, W) label-set ids
