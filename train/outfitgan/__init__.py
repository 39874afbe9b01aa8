"""OutfitGAN training: CCM pre-training, then GAN training, then the Atelier weight file.

Entry point ``python -m atelier.train.outfitgan`` (``cli``); data in ``data`` (toy world by
default, Polyvore Outfits, Fashion-MNIST); steps in ``steps``; checkpoints in ``checkpoints``;
the toy-world evidence run in ``evaluate`` (``python -m atelier.train.outfitgan.evaluate``), its judge
CCM in ``judge`` (``python -m atelier.train.outfitgan.judge``), and what the toy world's colour rule
makes learnable in ``learnability`` (``python -m atelier.train.outfitgan.learnability``).
"""
