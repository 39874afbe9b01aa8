"""Exponential moving average of the trained weights (the "EMA" of diffusers' and kohya's scripts).

After each optimiser step n (counted from 1), every trained parameter θ updates its shadow θ̄:
θ̄ ← d_n·θ̄ + (1 − d_n)·θ with d_n = min(decay, (1 + n) / (10 + n)), diffusers' ``EMAModel`` warm-up,
so that early shadows are not dominated by the random start. The shadow starts as θ.
"""

from __future__ import annotations

import torch


class ExponentialMovingAverage:
    """Shadow copies (float32) of ``parameters`` and their update; ``state_dict`` / ``load_state_dict``
    make it part of a checkpoint.

    Args:
        parameters: the trained parameters, in a fixed order.
        decay: the largest decay d.
    """

    def __init__(self, parameters: list[torch.nn.Parameter], decay: float) -> None:
        self.parameters = list(parameters)
        self.decay = decay
        self.updates = 0
        self.shadow = [p.detach().float().clone() for p in self.parameters]

    def current_decay(self) -> float:
        """d_n of the next update."""
        n = self.updates + 1
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self) -> None:
        """θ̄ ← d·θ̄ + (1 − d)·θ for every parameter."""
        decay = self.current_decay()
        for shadow, parameter in zip(self.shadow, self.parameters):
            shadow.mul_(decay).add_(parameter.detach().float(), alpha=1.0 - decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to_parameters(self) -> None:
        """Overwrite the parameters with their shadows (before export)."""
        for shadow, parameter in zip(self.shadow, self.parameters):
            parameter.copy_(shadow.to(parameter.dtype))

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange parameters and shadows (twice restores both; used around validation)."""
        for shadow, parameter in zip(self.shadow, self.parameters):
            raw = parameter.detach().float().clone()
            parameter.copy_(shadow.to(parameter.dtype))
            shadow.copy_(raw)

    def state_dict(self) -> dict[str, object]:
        """Decay, update count and shadows (in parameter order)."""
        return {"decay": self.decay, "updates": self.updates, "shadow": [s.cpu() for s in self.shadow]}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore what ``state_dict`` returned (the decay stays this run's ``--ema-decay``)."""
        self.updates = int(state["updates"])
        self.shadow = [s.to(p.device).float() for s, p in zip(state["shadow"], self.parameters)]
