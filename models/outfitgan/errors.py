"""Typed exceptions of OutfitGAN; each message names the input or field to fix."""

from ..errors import AtelierError


class OutfitGANConfigError(AtelierError, ValueError):
    """An OutfitGANConfig field is out of range or inconsistent with another."""


class OutfitInputError(AtelierError, ValueError):
    """A source item, target mask or outfit batch has the wrong shape, size or category."""


class PerceptualWeightsError(AtelierError, FileNotFoundError):
    """The perceptual-loss backbone file is missing or does not hold VGG-16 ``features.*`` weights."""
