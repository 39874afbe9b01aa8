"""The toy substrates: which tiny denoiser, pixel-VAE factor and image size a toy-world run uses.

``tiny`` is the first toy setup: 8 heads of 4-16 dimensions and 8x8 latents (64 px, VAE x8). Its
self-attention is near uniform (normalised entropy 0.97-1.00), so no reference-attention mechanism
can act through it. ``toy32`` keeps the SD1.5 block layout and widths with heads 32 wide (1, 2, 4
heads at the three attention levels) and 32x32 latents (128 px, VAE x4), so a garment covers tens
of tokens, and starts every self-attention as a similarity attention (Wk = Wq, gain 2). Measured
with ``python -m atelier.train.gate``: with diffusers' default initialisation a toy32 base trained
600 steps still attended uniformly (logit spread 0.3-0.6, entropy 0.95-1.00) and learned nothing
from a reference read in 300 further steps of cross-view training; after 300 steps from the tied
start the entropy is 0.29-0.89 and removing the self-attention costs 12% of the noise error.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.errors import AtelierError

SD_VAE_FACTOR = 8


class SubstrateError(AtelierError, ValueError):
    """An unknown substrate name; the message lists the known ones."""


@dataclass(frozen=True)
class ToySubstrate:
    """One toy denoiser setup.

    Args:
        name: the ``--base`` value that selects it.
        head_dim: attention head width (None: 8 heads per layer, whatever their width).
        vae_factor: the pixel VAE's down-sampling factor.
        size: default image side in pixels (latent side = size / vae_factor).
        tied_qk_gain: start attn1 with Wk = Wq = gain·Wq (``tiny.tie_self_attention``), or None.
    """

    name: str
    head_dim: int | None
    vae_factor: int
    size: int
    tied_qk_gain: float | None = None

    @property
    def latent_side(self) -> int:
        """Latent side at the default image size."""
        return self.size // self.vae_factor


SUBSTRATES: dict[str, ToySubstrate] = {
    "tiny": ToySubstrate("tiny", None, 8, 64),
    "toy32": ToySubstrate("toy32", 32, 4, 128, tied_qk_gain=2.0),
}


def substrate(name: str) -> ToySubstrate:
    """The substrate called ``name``."""
    if name not in SUBSTRATES:
        raise SubstrateError(f"unknown toy substrate {name!r}; use one of {sorted(SUBSTRATES)} or a diffusers SD1.5 folder")
    return SUBSTRATES[name]


def is_substrate(base: str) -> bool:
    """Whether ``--base`` names a toy substrate (else it is a diffusers folder)."""
    return base in SUBSTRATES


def vae_factor_for(base: str, flag: int | None) -> int:
    """The latent down-sampling factor of a run: ``--vae-factor`` when given, else the substrate's
    (SD's VAE: 8)."""
    if flag is not None:
        return flag
    return substrate(base).vae_factor if is_substrate(base) else SD_VAE_FACTOR
