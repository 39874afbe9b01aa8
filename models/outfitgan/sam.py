"""The Semantic Alignment Module (SAM) of OutfitGAN (arXiv 2502.06827, "Semantic Alignment Module").

The correspondence layer correlates the source item's features F_x with the target reference
mask's features F_y by cosine similarity,

    M_corr(u, v) = F̂_x(u)ᵀ F̂_y(v) / (‖F̂_x(u)‖ ‖F̂_y(v)‖),

where F̂ are the features projected into a shared space and centred per channel; then every target
position v takes a softmax over the source positions u,

    A(u, v) = softmax_u(M_corr(u, v) / τ),

and the non-local warp moves the source features into the target's layout,

    W(v) = Σ_u A(u, v) F_x(u),

so each warped feature is a convex combination of source features (a pattern anywhere on the shirt
can land anywhere on the shoe).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

EPSILON = 1e-6


def correlation_matrix(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """M_corr: cosine similarity of every source position u with every target position v.

    Args:
        source: F̂_x, (B, C, h, w).
        target: F̂_y, (B, C, h', w').

    Returns:
        (B, h*w, h'*w') in [-1, 1]; rows are source positions u, columns target positions v.
    """
    source = source.flatten(2)  # (B, C, U)
    target = target.flatten(2)  # (B, C, V)
    source = source - source.mean(dim=2, keepdim=True)
    target = target - target.mean(dim=2, keepdim=True)
    source = source / source.norm(dim=1, keepdim=True).clamp_min(EPSILON)
    target = target / target.norm(dim=1, keepdim=True).clamp_min(EPSILON)
    return torch.bmm(source.transpose(1, 2), target)  # (B, U, V)


def alignment_attention(correlation: torch.Tensor, temperature: float) -> torch.Tensor:
    """A = softmax over source positions u of M_corr / τ, laid out (B, V, U): one row per target
    position v, and every row sums to 1."""
    return torch.softmax(correlation.transpose(1, 2) / temperature, dim=-1)  # (B, V, U)


def warp_features(source_values: torch.Tensor, attention: torch.Tensor, target_hw: tuple[int, int]) -> torch.Tensor:
    """W(v) = Σ_u A(u, v) F_x(u): the non-local warp of (B, C, h, w) source features to (B, C, h', w')."""
    batch, channels = source_values.shape[:2]
    values = source_values.flatten(2)  # (B, C, U)
    warped = torch.bmm(values, attention.transpose(1, 2))  # (B, C, V)
    return warped.reshape(batch, channels, *target_hw)  # (B, C, h', w')


class SemanticAlignment(nn.Module):
    """SAM: correlation of source and mask features, softmax over source positions, non-local warp.

    Args:
        channels: channels of F_x and F_y.
        temperature: τ of the softmax.
    """

    def __init__(self, channels: int, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature
        self.project_source = nn.Conv2d(channels, channels, 1)
        self.project_target = nn.Conv2d(channels, channels, 1)

    def attention(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """A, (B, h'*w', h*w) (row v sums to 1 over source positions u), from F_x (B, C, h, w) and F_y (B, C, h', w')."""
        correlation = correlation_matrix(self.project_source(source), self.project_target(target))
        return alignment_attention(correlation, self.temperature)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp F_x into F_y's layout; returns (W (B, C, h', w'), A (B, h'*w', h*w))."""
        attention = self.attention(source, target)
        return warp_features(source, attention, tuple(target.shape[-2:])), attention


def concatenate_without_alignment(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The "w/o SAM" ablation: source features resized to the mask grid, no warp."""
    if source.shape[-2:] != target.shape[-2:]:
        source = F.interpolate(source, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return source
