"""The seeded toy-world generator: people in garments, pose-transfer pairs and outfits.

Every sample is drawn from its own generator, ``numpy.random.default_rng((seed, stream, index))``,
so a sample depends only on the config's seed and its index (never on what was drawn before), and
``person(i)`` is exactly ``pose_pair(i).source``. A pose pair's target view (``views``) has a stream of
its own, so ``ToyWorldConfig.hidden_part_fraction`` changes no other draw.

Array conventions: images are (H, W, 3) uint8 RGB; parsing maps (H, W) uint8; masks (H, W) bool;
keypoints (18, 3) float32 COCO-18 (x pixel, y pixel, confidence 0 or 1).
"""

from dataclasses import dataclass

import numpy as np

from .body import Identity, Pose, sample_identity, sample_pose
from .captions import Triple, outfit_caption
from .config import ToyWorldConfig
from .garments import GarmentSpec, sample_garment
from .outfits import OutfitDesign, sample_outfit
from .palette import colors_far_from
from .render import render_shop
from .views import FULL_VIEW, render_view, sample_view

PERSON_STREAM = 0
OUTFIT_STREAM = 1
VIEW_STREAM = 2


class SampleIndexError(IndexError):
    """A sample index is outside the range the config lists."""


@dataclass(frozen=True)
class GarmentImage:
    """A garment with its flat in-shop picture.

    Args:
        spec: what the garment is.
        shop_image: (H, W, 3) uint8 on white.
        shop_mask: (H, W) bool garment pixels of ``shop_image``.
    """

    spec: GarmentSpec
    shop_image: np.ndarray
    shop_mask: np.ndarray


@dataclass(frozen=True)
class PersonSample:
    """A dressed person with every ground truth.

    Args:
        index: sample index.
        image: (H, W, 3) uint8.
        parsing: (H, W) uint8 LIP labels (see ``render`` for the conventions).
        parsing_atr: (H, W) uint8 ATR labels.
        masks: (H, W) bool masks: worn garments by slot, "person", "skin", "neck", "face",
            "hair", "agnostic_upper", "agnostic_lower", "agnostic_dress".
        keypoints: (18, 3) float32 COCO-18 (x, y, confidence).
        pose: the pose drawn (name, limb angles, turn).
        identity: skin, hair, proportions.
        garments: worn garments by slot, each with its in-shop picture.
        caption: "a person wearing ...".
        triples: ground-truth (entity, relation, value) triples of the caption.
        view: how the picture is framed and turned: "full", or a view that hides body parts (``views``).
    """

    index: int
    image: np.ndarray
    parsing: np.ndarray
    parsing_atr: np.ndarray
    masks: dict[str, np.ndarray]
    keypoints: np.ndarray
    pose: Pose
    identity: Identity
    garments: dict[str, GarmentImage]
    caption: str
    triples: list[Triple]
    view: str = FULL_VIEW


@dataclass(frozen=True)
class PosePair:
    """The same person in the same garments, in two different poses (the target maybe in a view that
    hides body parts, ``ToyWorldConfig.hidden_part_fraction``)."""

    source: PersonSample
    target: PersonSample


@dataclass(frozen=True)
class OutfitSample:
    """Upper, bag, lower and shoes as in-shop pictures, with the compatibility label.

    Args:
        index: sample index.
        items: garments by slot ("upper", "bag", "lower", "shoes").
        compatible: the outfit rule's verdict (``outfits`` module).
        violations: the rule's reasons when incompatible.
        caption: "a ... shirt, ... jeans, ... sneakers and a ... tote bag".
        triples: ground-truth triples of the caption.
    """

    index: int
    items: dict[str, GarmentImage]
    compatible: bool
    violations: tuple[str, ...]
    caption: str
    triples: list[Triple]


@dataclass(frozen=True)
class PersonDesign:
    """Everything random about a person sample, before rendering."""

    identity: Identity
    garments: dict[str, GarmentSpec]
    poses: tuple[Pose, Pose]
    shifts: tuple[float, float]


class ToyWorld:
    """Seeded generator of the toy fashion world.

    Args:
        config: resolution, seed and counts.

    Example::

        world = ToyWorld(ToyWorldConfig(height=256, width=176, seed=0))
        sample = world.person(3)       # PersonSample
        pair = world.pose_pair(3)      # PosePair; pair.source equals world.person(3)
        outfit = world.outfit(5)       # OutfitSample
    """

    def __init__(self, config: ToyWorldConfig | None = None) -> None:
        self.config = config if config is not None else ToyWorldConfig()

    def __len__(self) -> int:
        return self.config.num_people

    def _rng(self, stream: int, index: int, count: int) -> np.random.Generator:
        if not 0 <= index < count:
            raise SampleIndexError(f"sample index {index} is outside 0..{count - 1} (ToyWorldConfig counts)")
        return np.random.default_rng((self.config.seed, stream, index))

    def design_person(self, index: int) -> PersonDesign:
        """Draw identity, garments, two different poses and placements of person ``index``."""
        rng = self._rng(PERSON_STREAM, index, self.config.num_people)
        identity = sample_identity(rng)
        allowed = colors_far_from(identity.skin_rgb)
        garments: dict[str, GarmentSpec] = {}
        if rng.random() < self.config.dress_fraction:
            garments["dress"] = sample_garment(rng, "dress", allowed)
        else:
            garments["upper"] = sample_garment(rng, "upper", allowed)
            garments["lower"] = sample_garment(rng, "lower", allowed)
        garments["shoes"] = sample_garment(rng, "shoes", allowed)
        if rng.random() < self.config.bag_fraction:
            garments["bag"] = sample_garment(rng, "bag", allowed)
        first = sample_pose(rng)
        second = sample_pose(rng, exclude=first.name)
        shifts = (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.6, 0.6)))
        return PersonDesign(identity, garments, (first, second), shifts)

    def _shop(self, garments: dict[str, GarmentSpec]) -> dict[str, GarmentImage]:
        images = {}
        for slot, spec in garments.items():
            image, mask = render_shop(spec, self.config.size)
            images[slot] = GarmentImage(spec, image, mask)
        return images

    def _render(self, index: int, design: PersonDesign, which: int, shop: dict[str, GarmentImage],
                view: str = FULL_VIEW) -> PersonSample:
        render, keypoints, pose = render_view(design.identity, design.poses[which], design.garments, self.config.size,
                                              design.shifts[which], view)
        caption, triples = outfit_caption(design.garments)
        return PersonSample(
            index=index, image=render.image, parsing=render.parsing, parsing_atr=render.parsing_atr,
            masks=render.masks, keypoints=keypoints, pose=pose, identity=design.identity,
            garments=shop, caption=caption, triples=triples, view=view,
        )

    def render_design(self, index: int, design: PersonDesign) -> PersonSample:
        """Person ``index`` drawn from ``design`` (e.g. ``design_person(index)`` with one garment
        changed) in the design's first pose: every other draw, and so the body, pose and placement,
        stays that of the person."""
        return self._render(index, design, 0, self._shop(design.garments))

    def target_view(self, index: int) -> str:
        """The view of pose pair ``index``'s target: "full", or with probability
        ``hidden_part_fraction`` a view that hides body parts."""
        return sample_view(self._rng(VIEW_STREAM, index, self.config.num_people), self.config.hidden_part_fraction)

    def person(self, index: int) -> PersonSample:
        """Person ``index`` in its first pose."""
        return self.render_design(index, self.design_person(index))

    def second_pose(self, index: int) -> PersonSample:
        """Person ``index`` in its second pose, full view (the target of ``pose_pair`` before any
        hidden-part view)."""
        design = self.design_person(index)
        return self._render(index, design, 1, self._shop(design.garments))

    def pose_pair(self, index: int) -> PosePair:
        """Person ``index`` in its first pose (source) and in a second, different pose (target), the target
        in ``target_view(index)``."""
        design = self.design_person(index)
        shop = self._shop(design.garments)
        target = self._render(index, design, 1, shop, self.target_view(index))
        return PosePair(self._render(index, design, 0, shop), target)

    def design_outfit(self, index: int) -> OutfitDesign:
        """Draw outfit ``index`` and its compatibility label."""
        rng = self._rng(OUTFIT_STREAM, index, self.config.num_outfits)
        compatible = bool(rng.random() < self.config.compatible_fraction)
        return sample_outfit(rng, compatible)

    def outfit(self, index: int) -> OutfitSample:
        """Outfit ``index`` with in-shop pictures of its four items."""
        design = self.design_outfit(index)
        caption, triples = outfit_caption(design.items, lead="")
        return OutfitSample(
            index=index, items=self._shop(design.items), compatible=design.compatible,
            violations=design.violations, caption=caption, triples=triples,
        )
