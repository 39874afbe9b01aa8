"""A toy fashion world with ground truth for every system: people drawn from COCO-18 poses in
garments with known colours, patterns and parts, LIP/ATR parsing maps, agnostic masks, in-shop
garment pictures, knowledge-graph captions and triples, and outfits with a compatibility rule.

Pose pairs' targets may be drawn in views that hide body parts (``views``,
``ToyWorldConfig.hidden_part_fraction``). Entry point: ``ToyWorld(ToyWorldConfig(...))``; a contact sheet of samples is written by
``python -m atelier.train.toyworld.contact_sheet --out sheet.png``.
"""

from .captions import Triple, garment_caption, outfit_caption
from .config import ToyWorldConfig, ToyWorldConfigError
from .garments import GarmentPart, GarmentSpec
from .outfits import compatibility_violations, is_compatible
from .world import GarmentImage, OutfitSample, PersonSample, PosePair, SampleIndexError, ToyWorld

__all__ = [
    "GarmentImage", "GarmentPart", "GarmentSpec", "OutfitSample", "PersonSample", "PosePair",
    "SampleIndexError", "ToyWorld", "ToyWorldConfig", "ToyWorldConfigError", "Triple",
    "compatibility_violations", "garment_caption", "is_compatible", "outfit_caption",
]
