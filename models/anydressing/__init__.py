"""AnyDressing (../shared/papers/anydressing.txt), host-free parts.

- ``config.py``: DressingConfig, the settings a weight file is built from (slots, LoRA rank, sites).
- ``garment_lora.py``: GarmentsNet's Garment-Specific Feature Extractor, a LoRA on q/k/v of every
  self-attention per garment slot (eq. 3–5), applied in activation space.
- ``garment_bank.py``: the garments' banked features concatenated along tokens (F_all of §4.2.1)
  with the token span of each garment.
- ``dressing_attention.py``: Dressing-Attention (eq. 6) over N garments with per-garment weights and
  target-region masks, and the per-garment attention maps A_k of IGL (eq. 7–8).
- ``dressing_run.py``: the per-sampling-run state (a ReferenceRun whose read is Dressing-Attention).
- ``losses.py``: the IGL localisation loss (eq. 9) and Garment-Enhanced Texture Learning (eq. 10–13).
- ``diffusers_garments.py``: the GarmentsNet pass on a diffusers UNet (training and tests).
- ``spec.py``: the "anydressing" weight-file layout.
"""
