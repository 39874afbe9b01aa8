"""Public pose-guided generators read from their published files (AnimateAnyone's stage-1 networks)."""
