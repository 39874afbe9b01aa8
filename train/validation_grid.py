"""Validation grids: a trainer's few fixed validation samples at a step, written as one PNG a person
can look at (one row per sample: its inputs, then the model's output; or any tiles the trainer
returns) and sent to the trackers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# step -> rows of images, each (3, H, W) in [0, 1]; every row has the same count and sizes.
Validate = Callable[[int], list[list[torch.Tensor]]]


def grid_array(rows: list[list[torch.Tensor]], gap: int = 2) -> np.ndarray:
    """The rows tiled into one (H, W, 3) uint8 image with white gaps; tiles of other sizes are resized
    to the first tile's size."""
    height, width = rows[0][0].shape[-2:]
    columns = max(len(row) for row in rows)
    canvas = np.full((len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            tile = tile.detach().float().cpu().clamp(0, 1)
            if tile.shape[-2:] != (height, width):
                tile = torch.nn.functional.interpolate(tile[None], size=(height, width), mode="nearest")[0]
            pixels = (tile.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H, W, 3)
            y, x = r * (height + gap), c * (width + gap)
            canvas[y:y + height, x:x + width] = pixels
    return canvas


def write_grid(rows: list[list[torch.Tensor]], path: Path) -> Path:
    """Write the grid of ``rows`` to ``path`` (PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid_array(rows)).save(path)
    return path


def validate_and_write(validate: Validate, step: int, folder: Path, accelerator, ema=None) -> Path | None:
    """Main process: the grid of ``validate(step)`` at ``folder/step-<step>.png`` (with the EMA weights
    swapped in when there is an EMA), also logged to the trackers; returns its path."""
    path = None
    if accelerator.is_main_process:
        if ema is not None:
            ema.swap()
        try:
            with torch.no_grad():
                rows = validate(step)
        finally:
            if ema is not None:
                ema.swap()
        path = write_grid(rows, folder / f"step-{step:07d}.png")
        for tracker in accelerator.trackers:
            if tracker.name == "tensorboard":
                tracker.log_images({"validation": grid_array(rows)[None]}, step=step, dataformats="NHWC")
    accelerator.wait_for_everyone()
    return path
