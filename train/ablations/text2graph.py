"""``python -m atelier.train.ablations.text2graph``: Text2Graph's attribute binding on the toy substrate
(plain caption vs the paper's linearised triple prompt vs the pack's bound per-entity encoding).

The paper (kg-garment-synthesis) says the triple prompt fixes "attribute confusion: incorrect
assignment of colors, patterns, or styles" (its navy jacket / red collar / blue waist example); the
pack adds the bound encoding (``models/text2graph/binding.py``), which encodes each entity's phrase
in its own window. Here a two-part garment (``binding_world``: a dress in one colour, its skirt in
another) is generated from each encoding of the same prompt, and the colour inside each part's mask
is read back (``binding_eval``).

Protocol. One fixed text encoder (the tiny CLIP, random weights of ``--text-seed``, frozen) for
every variant. Every variant × seed starts from the same denoiser: ``--init-unet`` (the gated toy32
base; toy32 heads and pixel VAE ×4) after a shared warm-up of ``--warmup-steps`` on the pictures with
the empty prompt (trained once, so each run only has to learn to read its prompt). Each is then
fine-tuned for ``--steps`` steps with the same pictures, timesteps, noise and 10% condition dropout
per step, and is sampled with DDIM and classifier-free guidance (ω = ``--guidance``) from the same
noise for every held-out prompt (every ordered colour pair, ``--eval-repeats`` times).

The instrument gate comes first and stops the command if it fails: the true pictures (through the
pixel VAE) must read back right, the true pictures with the two colours swapped must read back as
swaps, and an oracle denoiser trained with the answer in fixed slots ("red blue": bodice, skirt)
must bind at least GATE_ORACLE_ACCURACY while the same model sampled without its prompt stays near
chance. Finished runs are reused (resumable; ``--table-only`` prints what finished).

The defaults are the CPU protocol (32 px pictures, 8×8 latents, batch 32, a 200-step warm-up, then
500 steps per run; about 50 minutes on one thread for 3 seeds). On a GPU run the same protocol larger, e.g. ``--size 64 --steps 2000``::

    python -m atelier.train.ablations.text2graph --init-unet out/toy32-self/base_unet.safetensors \\
        --seeds 0,1,2 --threads 1 --out out/ablations/text2graph
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from ..anydressing.pixel_vae import PixelVAE
from ..command_line import run_cli, start_cli
from ..substrate import substrate
from ..text2graph.models import sd_scheduler
from ..text2graph.tiny import tiny_text_encoder, tiny_tokenizer
from ..tiny import tiny_unet
from .binding_eval import binding_scores
from .binding_train import (
    ORACLE,
    BindingTrainConfig,
    encode_prompts,
    sample_latents,
    train_denoiser,
    window_tokens,
)
from .binding_world import (
    BACKGROUND,
    RGB_BY_NAME,
    BindingWorldConfig,
    evaluation_samples,
    training_samples,
)
from .runs import (
    AblationOptionError,
    ablation_parser,
    chosen,
    gather,
    record_gate,
    report,
    require_at_least,
    seed_list,
)
from .stats import Claim, score_table

logger = logging.getLogger("atelier.train.ablations")

VARIANTS = ("plain", "linearised", "bound")
WARMUP_SEED = 999
# The oracle's bar: well above chance (1/6 with six colours) and above the oracle's own unprompted
# samples (0.10-0.15), and within reach of the CPU protocol's 500 steps; a longer GPU run can ask for
# more with --oracle-threshold.
GATE_ORACLE_ACCURACY = 0.6
GATE_CHANCE_MARGIN = 0.15
GATE_TRUTH_ACCURACY = 0.95

COLUMNS = (
    ("binding_accuracy", "binding accuracy ↑"), ("swap_rate", "swap rate ↓"), ("both_right", "both parts right ↑"),
    ("accuracy_body", "bodice right ↑"), ("accuracy_part", "skirt right ↑"), ("final_loss", "final loss"),
)

CLAIMS: tuple[Claim, ...] = (
    ("Triple prompt binds better than the plain caption (binding accuracy ↑)", "linearised", "plain", "binding_accuracy", True),
    ("Triple prompt confuses attributes less than the plain caption (swap rate ↓)", "linearised", "plain", "swap_rate", False),
    ("Bound encoding binds better than the plain caption (binding accuracy ↑)", "bound", "plain", "binding_accuracy", True),
    ("Bound encoding confuses attributes less than the plain caption (swap rate ↓)", "bound", "plain", "swap_rate", False),
    ("Bound encoding binds better than the triple prompt (binding accuracy ↑)", "bound", "linearised", "binding_accuracy", True),
    ("Bound encoding confuses attributes less than the triple prompt (swap rate ↓)", "bound", "linearised", "swap_rate", False),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; cross-field checks raise AblationOptionError naming the flag."""
    p = ablation_parser("python -m atelier.train.ablations.text2graph", __doc__, VARIANTS,
                        "folder of the runs, instrument.md and table.md")
    p.add_argument("--init-unet", default=None,
                   help="the denoiser every run starts from (the gated out/toy32-self/base_unet.safetensors); none: random toy32")
    p.add_argument("--steps", type=int, default=500, help="fine-tuning steps of every variant")
    p.add_argument("--warmup-steps", type=int, default=200,
                   help="steps of the shared warm-up on the pictures with the empty prompt (0: none)")
    p.add_argument("--batch-size", type=int, default=32, help="pictures per step")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    p.add_argument("--size", type=int, default=32, help="picture side in pixels (latents: size / 4; 64 or more on a GPU)")
    p.add_argument("--colors", default=",".join(BindingWorldConfig.colors), help="single-word palette colours the parts take")
    p.add_argument("--pictures", type=int, default=2000, help="training pictures")
    p.add_argument("--eval-repeats", type=int, default=3, help="held-out pictures per ordered colour pair")
    p.add_argument("--ddim-steps", type=int, default=20, help="DDIM steps")
    p.add_argument("--guidance", type=float, default=4.0, help="classifier-free guidance ω")
    p.add_argument("--erosion", type=int, default=None, help="pixels each part's mask shrinks by before its mean (default size/16)")
    p.add_argument("--full-windows", action="store_true",
                   help="read whole 77-token windows (pads included) instead of each window's prompt tokens")
    p.add_argument("--oracle-threshold", type=float, default=GATE_ORACLE_ACCURACY,
                   help="binding accuracy the oracle must reach for the gate to pass (say which you used)")
    p.add_argument("--text-seed", type=int, default=0, help="seed of the fixed, frozen text encoder")
    p.add_argument("--eval-batch", type=int, default=30, help="pictures sampled together")
    args = p.parse_args(argv)
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks; each message names the flag. Fills ``seed_list``, ``variant_names``,
    ``world`` and ``erosion``."""
    args.seed_list = seed_list(args.seeds)
    require_at_least((("--steps", args.steps, 1), ("--warmup-steps", args.warmup_steps, 0),
                      ("--batch-size", args.batch_size, 1), ("--pictures", args.pictures, 1),
                      ("--eval-repeats", args.eval_repeats, 1), ("--ddim-steps", args.ddim_steps, 1),
                      ("--eval-batch", args.eval_batch, 1), ("--guidance", args.guidance, 0.0)))
    factor = substrate("toy32").vae_factor
    if args.size % (factor * 8):
        raise AblationOptionError(f"--size {args.size} must be a multiple of {factor * 8} (pixel VAE ×{factor}, 3 UNet levels)")
    args.erosion = args.size // 16 if args.erosion is None else args.erosion
    args.world = BindingWorldConfig(size=args.size, colors=tuple(c.strip() for c in args.colors.split(",") if c.strip()))
    args.variant_names = chosen(args.variants, VARIANTS)


class BindingRuns:
    """The frozen pieces every run shares (text encoder, pixel VAE, pictures) and one run's training
    and evaluation."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        toy = substrate("toy32")
        self.vae = PixelVAE(toy.vae_factor)
        self.scheduler = sd_scheduler()
        self.tokenizer = tiny_tokenizer()
        self.text_encoder = tiny_text_encoder(len(self.tokenizer), seed=args.text_seed).requires_grad_(False).eval()
        self.train_set = training_samples(args.world, args.pictures)
        self.eval_set = evaluation_samples(args.world, args.eval_repeats)
        self.latents = self.vae.encode(_images(self.train_set))  # (N, 4, h, w)
        self.latent_shape = (4, args.size // toy.vae_factor, args.size // toy.vae_factor)

    def keep(self, variant: str) -> int | None:
        """Tokens kept per window for ``variant`` (None: whole 77-token windows, ``--full-windows``)."""
        if self.args.full_windows:
            return None
        return window_tokens(variant, [*self.train_set, *self.eval_set], self.tokenizer)

    def fresh_unet(self):
        """The denoiser every run starts from: ``--init-unet`` (or a random toy32) after the shared
        warm-up on binding-world pictures with the empty prompt (trained once, in OUT/warmup)."""
        toy = substrate("toy32")
        unet = tiny_unet(0, head_dim=toy.head_dim, tied_qk_gain=toy.tied_qk_gain)
        if self.args.init_unet is not None:
            path = Path(self.args.init_unet)
            if not path.is_file():
                raise AblationOptionError(f"--init-unet {str(path)!r} does not exist")
            unet.load_state_dict(load_file(str(path)), strict=True)
        if self.args.warmup_steps:
            _, empty = encode_prompts("plain", self.train_set[:1], self.tokenizer, self.text_encoder)  # (1, 77, C)
            config = BindingTrainConfig(steps=self.args.warmup_steps, batch_size=self.args.batch_size, lr=self.args.lr)
            train_denoiser(unet, self.latents, empty.expand(len(self.latents), -1, -1), empty, self.scheduler, config,
                           WARMUP_SEED, Path(self.args.out) / "warmup", self.identity("warm-up"))
        return unet

    def identity(self, run: str) -> dict:
        """What a resumed checkpoint of ``run`` (a variant, or the warm-up) must have been made with
        besides its step count: the protocol's settings (``settings_of``, steps aside) and the run."""
        return {**{key: value for key, value in settings_of(self.args).items() if key != "steps"}, "run": run}

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Latents (N, 4, h, w) -> pictures (N, S, S, 3) in 0..255."""
        images = self.vae.decode(latents).clamp(0, 1) * 255.0  # (N, 3, S, S)
        return images.permute(0, 2, 3, 1).numpy()  # (N, S, S, 3)

    def score(self, images: np.ndarray) -> dict[str, float]:
        """Binding scores of pictures generated for the held-out prompts."""
        return binding_scores(images, self.eval_set, self.args.world.colors, self.args.erosion)

    def train(self, variant: str, seed: int, folder: Path):
        """Fine-tune a fresh denoiser under ``variant``'s encoding; returns it and its losses."""
        args = self.args
        contexts, empty = encode_prompts(variant, self.train_set, self.tokenizer, self.text_encoder, self.keep(variant))
        unet = self.fresh_unet()
        config = BindingTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr)
        losses = train_denoiser(unet, self.latents, contexts, empty, self.scheduler, config, seed, folder,
                                self.identity(variant))
        return unet, losses

    def sample(self, unet, variant: str, unconditional: bool = False) -> np.ndarray:
        """Pictures for the held-out prompts (guided; or the empty prompt alone)."""
        args = self.args
        contexts, empty = encode_prompts(variant, self.eval_set, self.tokenizer, self.text_encoder, self.keep(variant))
        latents = sample_latents(unet, contexts, empty, self.scheduler, self.latent_shape, args.ddim_steps,
                                 None if unconditional else args.guidance, seed=1, batch=args.eval_batch)
        return self.decode(latents)

    def run(self, variant: str, seed: int, folder: Path) -> dict:
        """Train and evaluate one variant × seed; the oracle also scores its unconditional samples."""
        unet, losses = self.train(variant, seed, folder)
        images = self.sample(unet, variant)
        np.save(folder / "samples.npy", images[:16].round().astype(np.uint8))
        metrics = {**self.score(images), "final_loss": float(np.mean(losses[-50:]))}
        if variant == ORACLE:
            metrics |= {f"unconditional_{k}": v for k, v in self.score(self.sample(unet, variant, True)).items()}
        return metrics


def _images(samples) -> torch.Tensor:
    stacked = np.stack([sample.image for sample in samples])  # (N, S, S, 3)
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, S, S)


def swapped_truth(samples) -> np.ndarray:
    """The true pictures with the two parts' colours exchanged, (N, S, S, 3) uint8."""
    images = []
    for sample in samples:
        image = np.empty_like(sample.image)
        image[:] = BACKGROUND
        image[sample.body_mask] = RGB_BY_NAME[sample.part]
        image[sample.part_mask] = RGB_BY_NAME[sample.body]
        images.append(image)
    return np.stack(images)


def settings_of(args: argparse.Namespace) -> dict:
    """What a stored result must have been made with to be reused."""
    return {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "world": asdict(args.world),
            "pictures": args.pictures, "eval_repeats": args.eval_repeats, "ddim_steps": args.ddim_steps,
            "guidance": args.guidance, "erosion": args.erosion, "text_seed": args.text_seed,
            "init_unet": args.init_unet, "warmup_steps": args.warmup_steps,
            "full_windows": args.full_windows}


def instrument_rows(runs: BindingRuns, oracle: dict[str, float]) -> dict[str, dict[str, float]]:
    """The gate's rows: the truth, the swapped truth, the oracle, the oracle without its prompt."""
    truth = runs.decode(runs.vae.encode(_images(runs.eval_set)))
    swapped = runs.decode(runs.vae.encode(torch.from_numpy(swapped_truth(runs.eval_set)).permute(0, 3, 1, 2).float() / 255.0))
    return {
        "true pictures (through the pixel VAE)": runs.score(truth),
        "true pictures, colours swapped": runs.score(swapped),
        "oracle: colours in fixed slots": {k: oracle[k] for k in oracle if not k.startswith("unconditional_")},
        "oracle sampled without its prompt": {k[len("unconditional_"):]: v for k, v in oracle.items()
                                              if k.startswith("unconditional_")},
    }


def gate_passes(rows: dict[str, dict[str, float]], colors: int, oracle_least: float = GATE_ORACLE_ACCURACY) -> bool:
    """The truth reads back right and the swapped truth as swaps; the oracle binds at least
    ``oracle_least``; without its prompt it stays within GATE_CHANCE_MARGIN of chance."""
    truth, swapped, oracle, unconditional = rows.values()
    return (truth["binding_accuracy"] >= GATE_TRUTH_ACCURACY and swapped["swap_rate"] >= GATE_TRUTH_ACCURACY
            and oracle["binding_accuracy"] >= oracle_least
            and unconditional["binding_accuracy"] <= 1.0 / colors + GATE_CHANCE_MARGIN)


def gate_report(rows: dict[str, dict[str, float]], colors: int, oracle_least: float = GATE_ORACLE_ACCURACY) -> str:
    """The gate as a markdown table and its PASS / FAIL line."""
    lines = [score_table("scored against the prompt", rows, ("binding_accuracy", "swap_rate", "both_right"))]
    verdict = "PASS" if gate_passes(rows, colors, oracle_least) else "FAIL"
    lines += ["", f"Instrument gate: {verdict} (truth ≥ {GATE_TRUTH_ACCURACY} right, swapped truth ≥ "
              f"{GATE_TRUTH_ACCURACY} swapped, oracle ≥ {oracle_least}, oracle without prompt ≤ chance "
              f"1/{colors} + {GATE_CHANCE_MARGIN})"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    """Run the protocol with parsed options; prints the report."""
    start_cli(args)
    out = Path(args.out)
    runs = BindingRuns(args)
    settings = settings_of(args)
    oracle_rows = gather(out, [ORACLE], args.seed_list[:1], settings, None if args.table_only else runs.run)
    if ORACLE not in oracle_rows:
        raise AblationOptionError(f"--table-only: no finished oracle run in {out}; run without --table-only first")
    oracle = {key: values[0] for key, values in oracle_rows[ORACLE].items()}
    gate = instrument_rows(runs, oracle)
    gate_text = gate_report(gate, len(args.world.colors), args.oracle_threshold)
    record_gate(out, gate_text, gate_passes(gate, len(args.world.colors), args.oracle_threshold))
    for seed in [] if args.table_only else args.seed_list:  # seed by seed, so a stopped run leaves whole seeds
        gather(out, args.variant_names, [seed], settings, runs.run)
    rows = gather(out, args.variant_names, args.seed_list, settings, None)
    print(gate_text + "\n\n" + report(out, rows, COLUMNS, CLAIMS))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on a user error; prints the gate and the table (also written to
    OUT/instrument.md and OUT/table.md)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
