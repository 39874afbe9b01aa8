"""Configuration of the toy fashion world: image size, seed and how many samples a split holds."""

from dataclasses import dataclass

MIN_SIDE = 32


class ToyWorldConfigError(ValueError):
    """A ToyWorldConfig field is out of range; the message names the field and the value."""


@dataclass(frozen=True)
class ToyWorldConfig:
    """Settings of one toy world.

    Args:
        height: image height in pixels (every image the world makes has this size).
        width: image width in pixels; 256x176 is the usual portrait size, 64x64 and 256x256 square.
        seed: base seed; with the sample index it fixes every random choice, so the same
            (seed, index) always gives identical arrays.
        num_people: how many person samples the world lists (``len(world)``, ``pose_pair`` too).
        num_outfits: how many outfits the world lists.
        compatible_fraction: probability that an outfit is drawn compatible (else incompatible).
        dress_fraction: probability that a person wears a dress instead of upper + lower.
        bag_fraction: probability that a person carries a bag.
        hidden_part_fraction: probability that a pose pair's target is drawn in a view that hides
            body parts (from behind, far arm behind the torso, waist-up or head-cut framing:
            ``views``); 0 draws every target fully framed from the front. Persons and sources never change.
    """

    height: int = 256
    width: int = 256
    seed: int = 0
    num_people: int = 1000
    num_outfits: int = 1000
    compatible_fraction: float = 0.5
    dress_fraction: float = 0.25
    bag_fraction: float = 0.35
    hidden_part_fraction: float = 0.0

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < MIN_SIDE:
                raise ToyWorldConfigError(
                    f"ToyWorldConfig.{name} must be an int of at least {MIN_SIDE} pixels, got {value!r}"
                )
        for name in ("num_people", "num_outfits"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ToyWorldConfigError(f"ToyWorldConfig.{name} must be a non-negative int, got {value!r}")
        for name in ("compatible_fraction", "dress_fraction", "bag_fraction", "hidden_part_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ToyWorldConfigError(f"ToyWorldConfig.{name} must lie in [0, 1], got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ToyWorldConfigError(f"ToyWorldConfig.seed must be a non-negative int, got {self.seed!r}")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of every image."""
        return (self.height, self.width)
