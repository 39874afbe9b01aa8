"""OutfitGAN nodes (issue 5): filled in by the OutfitGAN work; the list below is what the extension registers."""

NODES: tuple = ()
