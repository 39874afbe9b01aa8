"""Training IGR garment restoration ("try-off", ../../shared/papers/igr-garment-restoration.txt §3.2):
GarmNet, the IP-Adapter and the denoiser update with condition drop, coarse-to-fine, on the toy
world, VITON-HD or DressCode; plus the toy-world restoration evaluation.

- ``cli.py``: ``python -m atelier.train.igr`` (options, stages, export).
- ``data.py``: pairs (person, garment mask m, flat garment, category, high-quality flag) and the
  seeded batch of each step.
- ``quality.py``: the stage-2 filter (filter list file, or the toy world's truncation/occlusion rule).
- ``components.py``: the frozen CLIP image encoder (tiny or a local folder); the denoiser, VAE and
  text encoder come from ``train.anydressing.components``.
- ``steps.py``: what is trained and one training step (condition drop included).
- ``previous.py``: start the fine stage from the coarse stage's exported files.
- ``evaluate.py``: restore held-out toy garments and score SSIM, PSNR, colour and pattern fidelity.
"""
