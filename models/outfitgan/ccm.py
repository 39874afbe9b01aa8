"""The Collocation Classification Module (CCM) of OutfitGAN (arXiv 2502.06827).

An outfit is read as the fixed sequence upper -> bag -> lower -> shoes (``OUTFIT_ORDER``): a small
CNN embeds each item, a Bi-LSTM runs over the four embeddings, and the last hidden states of both
directions give one compatibility logit. It is pre-trained on compatible vs incompatible outfits,
then frozen and used as the generator's compatibility loss L_ccm.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import conv_norm_act
from .config import OUTFIT_ORDER, OutfitGANConfig
from .errors import OutfitInputError

ITEM_ENCODER_DOWNSAMPLES = 4


class ItemEmbedding(nn.Module):
    """Item image (B, 3, S, S) in [0, 1] -> embedding (B, E): strided convs, global average pool, linear."""

    def __init__(self, channels: int, embedding: int) -> None:
        super().__init__()
        layers = [conv_norm_act(3, channels, 3)]
        for level in range(ITEM_ENCODER_DOWNSAMPLES):
            layers.append(conv_norm_act(channels * 2 ** level, channels * 2 ** (level + 1), 3, stride=2))
        self.layers = nn.Sequential(*layers)
        self.project = nn.Linear(channels * 2 ** ITEM_ENCODER_DOWNSAMPLES, embedding)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        features = self.layers(items * 2.0 - 1.0).mean(dim=(2, 3))  # (B, C)
        return self.project(features)


class CollocationClassifier(nn.Module):
    """CCM: Bi-LSTM over the outfit sequence -> compatibility logit (higher = more compatible).

    Args:
        config: ``ccm_*`` sizes; items are resized to ``ccm_image_size`` before embedding.
    """

    def __init__(self, config: OutfitGANConfig) -> None:
        super().__init__()
        self.image_size = config.ccm_image_size
        self.embed = ItemEmbedding(config.ccm_channels, config.ccm_embedding)
        self.lstm = nn.LSTM(config.ccm_embedding, config.ccm_hidden, batch_first=True, bidirectional=True)
        self.classify = nn.Linear(2 * config.ccm_hidden, 1)

    def forward(self, outfit: torch.Tensor) -> torch.Tensor:
        """Logits (B,) for outfits (B, N, 3, H, W) in [0, 1], items in ``OUTFIT_ORDER``."""
        if outfit.ndim != 5 or outfit.shape[1] != len(OUTFIT_ORDER) or outfit.shape[2] != 3:
            raise OutfitInputError(
                f"outfit must be (B, {len(OUTFIT_ORDER)}, 3, H, W) with items in the order {OUTFIT_ORDER}; "
                f"got {tuple(outfit.shape)}"
            )
        batch, count = outfit.shape[:2]
        items = outfit.flatten(0, 1)  # (B*N, 3, H, W)
        if items.shape[-1] != self.image_size or items.shape[-2] != self.image_size:
            items = F.interpolate(items, size=(self.image_size, self.image_size), mode="bilinear",
                                  align_corners=False, antialias=True)
        sequence = self.embed(items).reshape(batch, count, -1)  # (B, N, E)
        _, (hidden, _) = self.lstm(sequence)  # hidden: (2, B, H) = last forward, last backward state
        return self.classify(torch.cat([hidden[0], hidden[1]], dim=1)).squeeze(1)  # (B,)

    def score(self, outfit: torch.Tensor) -> torch.Tensor:
        """Compatibility probabilities (B,) in [0, 1]."""
        return torch.sigmoid(self.forward(outfit))


def assemble_outfit(items: dict[str, torch.Tensor]) -> torch.Tensor:
    """Stack slot -> (B, 3, H, W) items into the CCM's (B, N, 3, H, W) sequence in ``OUTFIT_ORDER``."""
    missing = [slot for slot in OUTFIT_ORDER if slot not in items]
    if missing:
        raise OutfitInputError(f"the outfit lacks item(s) {missing}; the CCM reads {OUTFIT_ORDER}")
    return torch.stack([items[slot] for slot in OUTFIT_ORDER], dim=1)  # (B, N, 3, H, W)
