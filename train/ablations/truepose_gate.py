"""The instrument gate of TruePose's Table 2: can the metrics, and the denoiser, see a pose transfer?

Two checks, both before any variant is trained:

- **Pictures** (no model): the image metrics of the table (``train.truepose.evaluate.pair_scores``,
  inside the target's person region and on its garments) score three candidates against each
  held-out target: the target itself, the source picture (the same person and clothes in the source
  pose: what a model that ignores the skeleton would return), and another held-out person's target
  (right layout, wrong person). Passes when the truth ranks first on every metric.
- **Oracle reference** (the base model, untrained TruePose modules): the person-region ε-MSE at
  t = ``ERROR_TIMESTEP`` without C, with the real source as C, and with the **target itself given as
  the source**, for ``concat`` (B2: SourceNet's bank appended to the self-attention, which starts
  as the base's own attention over both) and ``full`` (HPFA starts as the aligned read; CAA and the
  pose encoder start at zero). Passes when the target-as-source lowers the person-region ε-MSE of
  ``concat`` by at least ``ORACLE_FALL`` (``--gate-fall``): the base can read a source that carries the answer, so a
  trained variant's gain from a real source is measurable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..anydressing.components import load_base
from ..igr.components import FROZEN_SEED, ImageEncoder
from ..igr.steps import DenoiserUpdate
from ..substrate import vae_factor_for
from ..truepose.data import ToyPosePairs, collate
from ..truepose.evaluate import (
    TrainedTruePose,
    latent_region,
    noise_prediction_error,
    pair_noise,
    pair_scores,
    target_as_source,
)
from ..truepose.steps import build_trainables, truepose_config_for, uses_caa
from .stats import score_table

IMAGE_METRICS = (("ssim_person", True), ("psnr_person", True), ("ssim", True), ("color_error", False),
                 ("color_fidelity", True))
IMAGE_ROWS = ("the target itself", "the source picture", "another person's target")
ORACLE_VARIANTS = ("concat", "full")
ORACLE_FALL = 0.2  # the substrate gate's threshold for a reference that carries the answer


@dataclass(frozen=True)
class GateResult:
    """Image rows (row -> metric -> mean), oracle rows (variant -> {"no C", "source", "target as
    source"} -> mean person-region ε-MSE) and the least fall the oracle must show to pass."""

    images: dict[str, dict[str, float]]
    oracle: dict[str, dict[str, float]]
    least_fall: float = ORACLE_FALL

    def fall(self, variant: str, read: str) -> float:
        """Relative fall of the person-region ε-MSE of ``variant`` when it reads ``read`` instead of no C."""
        row = self.oracle[variant]
        return (row["no C"] - row[read]) / row["no C"]

    def image_passes(self) -> bool:
        """Whether the target itself ranks first on every image metric."""
        truth = self.images[IMAGE_ROWS[0]]
        return all((truth[name] > self.images[row][name]) if higher else (truth[name] < self.images[row][name])
                   for row in IMAGE_ROWS[1:] for name, higher in IMAGE_METRICS)

    def passes(self) -> bool:
        """Both checks (module docstring)."""
        return self.image_passes() and self.fall("concat", "target as source") >= self.least_fall


def _pixel_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255.0  # (3, H, W) from (H, W, 3) uint8


def image_gate(dataset: ToyPosePairs, count: int) -> dict[str, dict[str, float]]:
    """The picture check over the first ``count`` pairs (the next pair's target is "another person")."""
    rows: dict[str, list[dict[str, float]]] = {row: [] for row in IMAGE_ROWS}
    total = min(count, len(dataset))
    for position in range(total):
        pair = dataset.pair(position)
        truth = _pixel_tensor(pair.target.image)
        other = _pixel_tensor(dataset.pair((position + 1) % total).target.image)
        for row, candidate in zip(IMAGE_ROWS, (truth, _pixel_tensor(pair.source.image), other)):
            rows[row].append(pair_scores(candidate, truth, pair.target))
    return {row: {name: float(np.nanmean([s[name] for s in scores])) for name in scores[0]}
            for row, scores in rows.items()}


@torch.no_grad()
def oracle_gate(base: str, init_unet: str | None, dataset: ToyPosePairs, count: int, encoder: ImageEncoder,
                batch_size: int = 8) -> dict[str, dict[str, float]]:
    """The oracle check: per variant of ORACLE_VARIANTS, untrained on the base, the mean person-region
    ε-MSE without C, with the source, and with the target as source (noise fixed per pair, seed 0)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    result: dict[str, dict[str, float]] = {}
    for variant in ORACLE_VARIANTS:
        components = load_base(base, FROZEN_SEED, init_unet).to(device)
        config = truepose_config_for(variant, encoder.embed_dim, vae_factor_for(base, None))
        trainables = build_trainables(components, config, variant, DenoiserUpdate("full")).to(device)
        trained = TrainedTruePose(variant, config, trainables.requires_grad_(False).eval())
        reader = encoder.to(device) if uses_caa(variant) else None
        sums = {"no C": [], "source": [], "target as source": []}
        total = min(count, len(dataset))
        for first in range(0, total, batch_size):
            positions = list(range(first, min(first + batch_size, total)))
            pairs = [dataset.pair(p) for p in positions]
            batch = collate([dataset[p] for p in positions]).to(device)
            shape = tuple(components.vae.encode(batch.targets[:1]).shape[1:])
            noise = pair_noise(shape, 0, positions, 1).to(batch.targets)
            person = latent_region(torch.from_numpy(np.stack([pair.target.masks["person"] for pair in pairs])),
                                   shape[-2:]).to(batch.targets)  # (B, 1, h, w)
            read, plain = noise_prediction_error(components, trained, batch, reader, noise, person)
            oracle = target_as_source(batch, [pair.target.parsing.astype(np.int64) for pair in pairs])
            oracle_read, _ = noise_prediction_error(components, trained, oracle, reader, noise, person, plain=False)
            sums["no C"] += plain.tolist()
            sums["source"] += read.tolist()
            sums["target as source"] += oracle_read.tolist()
        result[variant] = {name: float(np.mean(values)) for name, values in sums.items()}
    return result


def gate_report(gate: GateResult) -> str:
    """The gate as two markdown tables and its PASS / FAIL line."""
    lines = [score_table("scored against the target", gate.images, [name for name, _ in IMAGE_METRICS])]
    lines += ["", "| untrained on the base | person ε-MSE, no C | with the source | target as source | "
              "fall, source | fall, target as source |", "|---|---|---|---|---|---|"]
    for variant, row in gate.oracle.items():
        lines.append(f"| {variant} | {row['no C']:.4f} | {row['source']:.4f} | {row['target as source']:.4f} | "
                     f"{gate.fall(variant, 'source'):+.1%} | {gate.fall(variant, 'target as source'):+.1%} |")
    verdict = "PASS" if gate.passes() else "FAIL"
    lines += ["", f"Instrument gate: {verdict} (the target itself ranks first on every image metric: "
              f"{'yes' if gate.image_passes() else 'no'}; the target as source lowers concat's person-region "
              f"ε-MSE by at least {gate.least_fall:.0%}: {gate.fall('concat', 'target as source'):.1%})"]
    return "\n".join(lines)
