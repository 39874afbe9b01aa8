"""Typed exceptions. Each message says what was found, what was expected and which input to fix."""


class AtelierError(Exception):
    """Base class of every error the pack raises on purpose."""


class UnsupportedModelError(AtelierError, TypeError):
    """The MODEL (or VAE) connected is not the architecture a node needs."""


class ReferenceInputError(AtelierError, ValueError):
    """A reference image, mask or batch does not fit the sampled latent."""


class PatchConflictError(AtelierError, RuntimeError):
    """Another node already patched the same attention site in a way that cannot be combined."""


class WeightFileError(AtelierError, ValueError):
    """A weight file is of another system, another base model, or is missing keys / has wrong shapes."""
