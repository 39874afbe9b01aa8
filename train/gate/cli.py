"""The measuring half of ``python -m atelier.train.gate``, run once ``options.py`` has parsed the
options (its docstring is the command's ``--help``: what it does, the files it writes, examples)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

import torch

from ...models.sites import SD15_SITES, SITE_GROUPS
from ..anydressing.components import load_base
from ..command_line import run_cli, start_cli
from .measure import gate_data, probed_error, reference_banks, relative_rise, self_reference_oracle
from .options import GATE_TIMESTEP, GateOptionError, parse_args  # noqa: F401  (light: parsed before torch loads)

ABLATION_GROUPS = ("output", "all")
GATE_READS = ("concat", "cross")  # the clean target itself; the other-pose reads are reported beside


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


def run(args: argparse.Namespace) -> None:
    """Measure, print the markdown, exit 1 when the gate fails."""
    start_cli(args)
    with torch.no_grad():
        result = run_gate(args)
    print(markdown(result, args.threshold))
    if not result.passes(args.threshold):
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on a user error, exit 1 when the gate fails."""
    run_cli(parse_args, run, argv)
