"""Training AnyDressing (../../shared/papers/anydressing.txt): GarmentsNet's GFE LoRA (or a full
GarmentsNet copy) and Dressing-Attention's W'k, W'v against a frozen DressingNet, with IGL (eq. 9)
and GTL (eq. 10–13), on the toy world or DressCode; plus the toy-world colour evaluation.

- ``cli.py``: ``python -m atelier.train.anydressing`` (options, stages, export).
- ``components.py``: base components (tiny SD1.5-layout UNet + pixel VAE + tiny text encoder, or a
  diffusers SD1.5 folder) and text encoding.
- ``pixel_vae.py``: the fixed "pixel VAE" used with the tiny base.
- ``data.py``: samples (person, garments, categories, garment masks, caption) from the toy world
  or the DressCode layout, and the seeded batch of each step.
- ``steps.py``: one training step of stage 0 (the tiny denoiser) and of the dressing stage.
- ``checkpoints.py``: accelerate checkpoints and exact resume.
- ``evaluate.py``: the img2img colour-fidelity / leakage protocol on held-out toy people.
"""
