"""``python -m atelier.train.gate``: the toy substrate's gate, printed as markdown.

Example (toy32 base from ``python -m atelier.train.anydressing --stage base --base toy32 ...``)::

    python -m atelier.train.gate --base toy32 --init-unet out/toy32/base/base_unet.safetensors

It passes when the self-reference oracle lowers the garment-region ε-MSE at t = 500 by at least
``--threshold`` (20%) through either untrained read; it exits 1 when it does not. About 1-2 minutes
on one CPU thread for toy32 with 24 people.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

import torch

from ...models.errors import AtelierError
from ...models.sites import SD15_SITES, SITE_GROUPS
from ..anydressing.components import load_base
from ..loop import start_cli
from ..substrate import is_substrate, substrate
from .measure import gate_data, probed_error, reference_banks, relative_rise, self_reference_oracle

GATE_TIMESTEP = 500
ABLATION_GROUPS = ("output", "all")
GATE_READS = ("concat", "cross")  # the clean target itself; the other-pose reads are reported beside


class GateOptionError(AtelierError, ValueError):
    """A gate option is out of range; the message names the flag."""


@dataclass(frozen=True)
class GateResult:
    """The gate's numbers: entropy by (t, site), ablation effect by (t, group), oracle ε-MSE by t,
    and the reference shares by site at t = 500."""

    entropy: dict[int, dict[str, float]]
    ablation: dict[int, dict[str, float]]
    oracle: dict[int, dict[str, float]]
    shares: dict[str, tuple[float, float]] = field(default_factory=dict)

    def oracle_gain(self, timestep: int) -> dict[str, float]:
        """Read mode -> relative fall of the garment-region ε-MSE, (none − read) / none."""
        errors = self.oracle[timestep]
        return {mode: (errors["none"] - value) / errors["none"] for mode, value in errors.items() if mode != "none"}

    def passes(self, threshold: float) -> bool:
        """Whether an untrained read of the clean target lowers the error at t = 500 by ``threshold``."""
        gains = self.oracle_gain(GATE_TIMESTEP)
        return max(gains[mode] for mode in GATE_READS) >= threshold


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m atelier.train.gate", description=__doc__.splitlines()[0])
    p.add_argument("--base", default="toy32", help="toy substrate of the base (tiny, toy32)")
    p.add_argument("--init-unet", required=True, help="the trained base (base_unet.safetensors of --stage base)")
    p.add_argument("--size", type=int, default=None, help="image side (default: the substrate's)")
    p.add_argument("--count", type=int, default=24, help="held-out people measured")
    p.add_argument("--timesteps", default="0,300,500,800", help="timesteps measured (500 is the gate's)")
    p.add_argument("--threshold", type=float, default=0.2, help="least relative oracle gain at t = 500 to pass")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    args = p.parse_args(argv)
    if not is_substrate(args.base):
        raise GateOptionError(f"--base must be a toy substrate (tiny, toy32), got {args.base!r}")
    if args.count < 1:
        raise GateOptionError(f"--count must be >= 1, got {args.count}")
    args.timestep_list = sorted({int(t) for t in args.timesteps.split(",") if t} | {GATE_TIMESTEP})
    if any(not 0 <= t < 1000 for t in args.timestep_list):
        raise GateOptionError(f"--timesteps must lie in 0..999, got {args.timesteps!r}")
    args.size = args.size or substrate(args.base).size
    return args


def run_gate(args: argparse.Namespace) -> GateResult:
    """All the measurements on ``args.count`` held-out people: per timestep one intact probed call
    (entropy, and the error the ablations are measured against), one per ablated site group, and
    the oracle's reads of the two banks, which are captured once."""
    components = load_base(args.base, 0, args.init_unet)
    components.unet.requires_grad_(False).eval()
    data = gate_data(components, args.size, args.count, args.world_seed)
    banks = reference_banks(components, data)
    entropy, ablation, oracle = {}, {}, {}
    for t in args.timestep_list:
        intact, state = probed_error(components, data, t)
        entropy[t] = dict(state.entropy)
        ablation[t] = {group: relative_rise(probed_error(components, data, t, frozenset(SITE_GROUPS[group]))[0], intact)
                       for group in ABLATION_GROUPS}
        if t > 0:
            oracle[t] = self_reference_oracle(components, data, t, banks)
    target = {site.name: banks[""].get(site) for site in SD15_SITES}
    shares = probed_error(components, data, GATE_TIMESTEP, reference=target)[1].shares
    return GateResult(entropy, ablation, oracle, dict(shares))


def markdown(result: GateResult, threshold: float) -> str:
    """The four tables and the verdict."""
    steps = sorted(result.entropy)
    lines = ["Normalised attn1 entropy (1 = uniform):", "", "| site | " + " | ".join(f"t={t}" for t in steps) + " |",
             "|---|" + "---|" * len(steps)]
    for site in SD15_SITES:
        cells = [f"{result.entropy[t].get(site.name, float('nan')):.2f}" for t in steps]
        lines.append(f"| {site.name} | " + " | ".join(cells) + " |")
    lines += ["", "Self-attention removed: relative rise of the person-region ε-MSE:", "",
              "| sites zeroed | " + " | ".join(f"t={t}" for t in steps) + " |", "|---|" + "---|" * len(steps)]
    for group in ABLATION_GROUPS:
        lines.append(f"| {group} | " + " | ".join(f"{result.ablation[t][group]:+.1%}" for t in steps) + " |")
    if result.shares:
        lines += ["", f"CONCAT read of the clean target at t={GATE_TIMESTEP}: attention mass on its tokens (uniform 0.50) and "
                  "the weight of its token at the query's own place (×uniform):", "",
                  "| site | mass | same place |", "|---|---|---|"]
        for site in SD15_SITES:
            mass, same_place = result.shares[site.name]
            lines.append(f"| {site.name} | {mass:.2f} | ×{same_place:.1f} |")
    oracle_steps = sorted(result.oracle)
    lines += ["", "Reference oracle: garment-region ε-MSE (relative fall); the gate reads the clean target itself:", "",
              "| read | " + " | ".join(f"t={t}" for t in oracle_steps) + " |", "|---|" + "---|" * len(oracle_steps)]
    for mode in result.oracle[oracle_steps[0]]:
        cells = []
        for t in oracle_steps:
            value = result.oracle[t][mode]
            cells.append(f"{value:.4f}" if mode == "none" else f"{value:.4f} ({result.oracle_gain(t)[mode]:+.1%})")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    gains = result.oracle_gain(GATE_TIMESTEP)
    verdict = "PASS" if result.passes(threshold) else "FAIL"
    lines += ["", f"gate: {verdict} (oracle fall at t={GATE_TIMESTEP}: "
              + ", ".join(f"{mode} {gains[mode]:.1%}" for mode in GATE_READS) + f"; needs {threshold:.0%})"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on a user error, exit 1 when the gate fails."""
    try:
        args = parse_args(argv)
        start_cli(args)
        with torch.no_grad():
            result = run_gate(args)
    except AtelierError as error:
        sys.exit(f"error: {error}")
    print(markdown(result, args.threshold))
    if not result.passes(args.threshold):
        sys.exit(1)
