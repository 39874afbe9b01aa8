"""OutfitGAN (arXiv 2502.06827), pure torch: given one fashion item and reference masks for the
others, generate the rest of a compatible outfit.

- ``config``: ``OutfitGANConfig`` (256x256 default; ``tiny()`` / ``small()`` test and toy sizes),
  ``OUTFIT_ORDER`` upper -> bag -> lower -> shoes;
- ``sam``: the Semantic Alignment Module (cosine correlation, softmax over source positions, warp);
- ``generator``: item generators (encoders + SAM + decoder), N-1 of them or one shared;
- ``ccm``: the Collocation Classification Module (Bi-LSTM compatibility classifier);
- ``discriminator``: multi-scale PatchGAN discriminators, one per target item (training only);
- ``losses`` / ``perceptual``: LSGAN, L1, VGG perceptual (user-supplied weights), CCM;
- ``silhouettes``: default target masks per category;
- ``spec``: the weight-file layout (``OUTFITGAN``).
"""

from .ccm import CollocationClassifier, assemble_outfit
from .config import OUTFIT_ORDER, OutfitGANConfig
from .discriminator import DiscriminatorConfig, OutfitDiscriminators
from .errors import OutfitGANConfigError, OutfitInputError, PerceptualWeightsError
from .generator import ItemGenerator, OutfitGenerator
from .losses import LossWeights
from .sam import SemanticAlignment
from .silhouettes import default_silhouette

__all__ = [
    "OUTFIT_ORDER", "CollocationClassifier", "DiscriminatorConfig", "ItemGenerator", "LossWeights",
    "OutfitDiscriminators", "OutfitGANConfig", "OutfitGANConfigError", "OutfitGenerator", "OutfitInputError",
    "PerceptualWeightsError", "SemanticAlignment", "assemble_outfit", "default_silhouette",
]
