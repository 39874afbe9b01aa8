"""A judge CCM for the toy world: ``python -m atelier.train.outfitgan.judge``.

A Collocation Classification Module (``models.outfitgan.ccm``, the paper's Bi-LSTM over upper -> bag
-> lower -> shoes) trained on its own, on compatible vs incompatible toy-world outfits of another
world seed than the generator's, then scored by ROC AUC on held-out outfits of the generator's world
(indices from ``test_start``, the outfits ``evaluate`` completes). ``evaluate --judge`` reads the file
``--out`` writes (``OUT/judge.safetensors``): an OutfitGAN weight file whose CCM is the judge (its generator is untrained and
unused).

Besides the AUC over all held-out outfits, ``auc_by_clause`` pits the compatible ones against those that
break a single clause (formality, color or pattern), so a judge that ignores colour shows it.

Example (one CPU thread: about 35 s of rendering, then about a minute per seed)::

    python -m atelier.train.outfitgan.judge --seeds 0 1 2 --threads 1 --out out
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from ...models.errors import AtelierError
from ...models.outfitgan.ccm import CollocationClassifier
from ...models.outfitgan.config import OutfitGANConfig
from ...models.outfitgan.generator import OutfitGenerator
from ...models.outfitgan.losses import ccm_classification_loss
from ...models.outfitgan.spec import OUTFITGAN, outfitgan_base
from ...models.weights import save_weight_file
from ..command_line import add_out_option, add_threads_option, make_parser, output_file, run_cli, start_cli
from ..ablations.stats import mean_sd
from ..metrics import compatibility_auc
from ..toyworld.color_rules import COLOR_RULES, DEFAULT_COLOR_RULE
from ..toyworld.outfits import CLAUSES
from .data import RuleOutfits

logger = logging.getLogger("atelier.train.outfitgan.judge")

SCORE_BATCH = 64
JUDGE_FILE = "judge.safetensors"


class JudgeConfigError(AtelierError, ValueError):
    """A JudgeConfig field is out of range; the message names the field (the flag of the same name)."""


@dataclass(frozen=True)
class JudgeConfig:
    """What a judge is trained on and how.

    Args:
        rule: the toy world's colour rule ("palette" or "accents").
        size: item side in pixels (the CCM reads items at this size).
        train_outfits: training outfits (world ``world_seed``, indices 0..train_outfits-1).
        test_outfits: held-out outfits (world ``test_seed``, from index ``test_start``).
        steps: Adam steps.
        batch_size: outfits per step.
        lr: Adam learning rate.
        channels, embedding, hidden: CCM item-encoder width, item embedding size, LSTM hidden size.
        seed: CCM initialisation and batch order.
        world_seed: seed of the training outfits' world (not the generator's).
        test_seed: seed of the held-out outfits' world (the generator's).
        test_start: first held-out outfit index (``evaluate --start``).
    """

    rule: str = DEFAULT_COLOR_RULE
    size: int = 32
    train_outfits: int = 4000
    test_outfits: int = 400
    steps: int = 800
    batch_size: int = 32
    lr: float = 2e-3
    channels: int = 8
    embedding: int = 32
    hidden: int = 32
    seed: int = 0
    world_seed: int = 1
    test_seed: int = 0
    test_start: int = 3000

    def __post_init__(self) -> None:
        if self.rule not in COLOR_RULES:
            raise JudgeConfigError(f"JudgeConfig.rule must be one of {tuple(COLOR_RULES)}, got {self.rule!r}")
        for name in ("size", "train_outfits", "test_outfits", "batch_size", "channels", "embedding", "hidden"):
            if getattr(self, name) < 1:
                raise JudgeConfigError(f"JudgeConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.steps < 0:
            raise JudgeConfigError(f"JudgeConfig.steps must be >= 0, got {self.steps!r}")

    def model_config(self) -> OutfitGANConfig:
        """The OutfitGANConfig of the judge's CCM (and of the weight file it is saved in)."""
        return OutfitGANConfig.tiny(image_size=self.size, ccm_image_size=self.size, ccm_channels=self.channels,
                                    ccm_embedding=self.embedding, ccm_hidden=self.hidden)


@dataclass(frozen=True)
class JudgeData:
    """Rendered outfits (B, N, 3, S, S) in [0, 1] and labels (B,) 1 = compatible, for training and testing,
    and the clauses each held-out outfit breaks on purpose (empty for compatible ones)."""

    train_items: torch.Tensor
    train_labels: torch.Tensor
    test_items: torch.Tensor
    test_labels: torch.Tensor
    test_broken: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class JudgeResult:
    """A trained judge and how well it separates held-out compatible from incompatible outfits."""

    ccm: CollocationClassifier
    config: JudgeConfig
    auc: float
    auc_by_clause: dict[str, float]
    final_loss: float
    seconds: float


def stack_outfits(data: RuleOutfits) -> tuple[torch.Tensor, torch.Tensor]:
    """Every outfit of ``data`` as items (B, N, 3, S, S) and labels (B,)."""
    samples = [data[i] for i in range(len(data))]
    return torch.stack([s["items"] for s in samples]), torch.stack([s["label"] for s in samples])


def judge_data(config: JudgeConfig) -> JudgeData:
    """Render the training and held-out outfits of ``config`` once (shared by every training seed)."""
    train = stack_outfits(RuleOutfits(config.size, 0, config.train_outfits, config.world_seed, config.rule))
    held_out = RuleOutfits(config.size, config.test_start, config.test_outfits, config.test_seed, config.rule)
    broken = tuple(held_out.design(i).broken for i in range(len(held_out)))
    return JudgeData(*train, *stack_outfits(held_out), broken)


@torch.no_grad()
def judge_scores(ccm: CollocationClassifier, items: torch.Tensor) -> torch.Tensor:
    """Compatibility probabilities (B,) of outfits (B, N, 3, S, S), in eval mode."""
    ccm.eval()
    return torch.cat([ccm.score(items[i:i + SCORE_BATCH]) for i in range(0, len(items), SCORE_BATCH)])


def clause_aucs(scores: torch.Tensor, labels: torch.Tensor, broken: tuple[tuple[str, ...], ...]) -> dict[str, float]:
    """Per clause, the AUC of compatible outfits against the incompatible ones that break only that clause
    (clauses no held-out outfit breaks alone are left out)."""
    compatible = [float(s) for s, label in zip(scores, labels, strict=True) if label > 0.5]
    aucs = {}
    for clause in CLAUSES:
        alone = [float(s) for s, label, b in zip(scores, labels, broken, strict=True) if label < 0.5 and b == (clause,)]
        if compatible and alone:
            aucs[clause] = compatibility_auc(compatible + alone, [True] * len(compatible) + [False] * len(alone))
    return aucs


def train_judge(config: JudgeConfig, data: JudgeData | None = None) -> JudgeResult:
    """Train a CCM on the training outfits (BCE, Adam) and measure its held-out AUC."""
    started = time.perf_counter()
    data = judge_data(config) if data is None else data
    torch.manual_seed(config.seed)
    ccm = CollocationClassifier(config.model_config())
    optimizer = torch.optim.Adam(ccm.parameters(), lr=config.lr)
    loss = torch.tensor(float("nan"))
    ccm.train()
    for step in range(config.steps):
        rng = np.random.default_rng((config.seed, step))
        rows = torch.from_numpy(rng.integers(0, len(data.train_items), config.batch_size))
        loss = ccm_classification_loss(ccm, data.train_items[rows], data.train_labels[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    scores = judge_scores(ccm, data.test_items)
    auc = compatibility_auc(scores.tolist(), (data.test_labels > 0.5).tolist())
    by_clause = clause_aucs(scores, data.test_labels, data.test_broken)
    seconds = time.perf_counter() - started
    return JudgeResult(ccm.requires_grad_(False), config, auc, by_clause, float(loss.detach()), seconds)


def save_judge(path: str, result: JudgeResult) -> None:
    """Write the judge as an OutfitGAN weight file (untrained generator, judge CCM) for ``evaluate --judge``."""
    model_config = result.config.model_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(result.config.seed)
        modules = {"generator": OutfitGenerator(model_config), "ccm": result.ccm}
    save_weight_file(path, OUTFITGAN, outfitgan_base(model_config), model_config.to_dict(), modules)


def judge_aucs(config: JudgeConfig, seeds: list[int]) -> list[JudgeResult]:
    """One judge per training seed on the same rendered outfits."""
    data = judge_data(config)
    return [train_judge(replace(config, seed=seed), data) for seed in seeds]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (defaults from JudgeConfig)."""
    defaults = JudgeConfig()
    p = make_parser("python -m atelier.train.outfitgan.judge", __doc__)
    p.add_argument("--rule", choices=tuple(COLOR_RULES), default=defaults.rule, help="the toy world's colour rule")
    p.add_argument("--size", type=int, default=defaults.size, help="item side in pixels")
    p.add_argument("--train-outfits", type=int, default=defaults.train_outfits, help="training outfits")
    p.add_argument("--test-outfits", type=int, default=defaults.test_outfits, help="held-out outfits")
    p.add_argument("--steps", type=int, default=defaults.steps, help="Adam steps")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="outfits per step")
    p.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate")
    p.add_argument("--world-seed", type=int, default=defaults.world_seed, help="training outfits' world seed")
    p.add_argument("--test-seed", type=int, default=defaults.test_seed, help="held-out outfits' world seed (the GAN's)")
    p.add_argument("--test-start", type=int, default=defaults.test_start, help="first held-out outfit index")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (AUC mean and sd over them)")
    add_threads_option(p)
    add_out_option(p, f"write the first seed's judge there as {JUDGE_FILE} (what evaluate --judge reads)",
                   required=False)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Train one judge per seed, print the AUCs as JSON, and save the first one when asked."""
    start_cli(args)
    config = JudgeConfig(
        rule=args.rule, size=args.size, train_outfits=args.train_outfits, test_outfits=args.test_outfits,
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, world_seed=args.world_seed,
        test_seed=args.test_seed, test_start=args.test_start,
    )
    logger.info("judge CCM (%s rule): rendering %d training and %d held-out outfits at %d px, then %d steps "
                "for each of the seeds %s", config.rule, config.train_outfits, config.test_outfits, config.size,
                config.steps, args.seeds)
    results = judge_aucs(config, args.seeds)
    path = output_file(args.out, JUDGE_FILE) if args.out else None
    if path is not None:
        save_judge(str(path), results[0])
    aucs = [result.auc for result in results]
    auc_mean, auc_sd = mean_sd(aucs)
    print(json.dumps({
        "rule": config.rule, "seeds": args.seeds, "auc": aucs, "auc_mean": auc_mean, "auc_sd": auc_sd,
        "auc_by_clause": [result.auc_by_clause for result in results],
        "seconds": [round(result.seconds, 1) for result in results], "out": str(path) if path else None,
    }, indent=2))


def main(argv: list[str] | None = None) -> None:
    """Entry point; a user error is one line (--debug: the traceback)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
