"""Public garment reference networks (IMAGDressing, MagicClothing/OMS, StableGarment): their published
weight layouts mapped onto Atelier's reference-attention mechanism. Pure torch, no ComfyUI import."""
