"""IGR garment restoration ("try-off", ../shared/papers/igr-garment-restoration.txt §3.2), host-free parts.

- ``config.py``: IGRConfig (GarmNet LoRA size, IP-Adapter widths, sites) and the category prompts.
- ``garmnet.py``: GarmNet, the high-level extractor: the denoiser's own UNet + an attn1 LoRA + a
  zero-initialised 5th input channel ``mask_in``, so conv5(concat(z, m)) = conv_in(z) + mask_in(m).
- ``ip_adapter.py``: the low-level extractor (eq. 3), an IP-Adapter in the standard SD1.5 key layout.
- ``garment_crop.py``: p_g = Resize(Crop(p·m)) and CLIP pixel normalisation.
- ``igr_run.py``: the per-sampling-run state: CONCAT read of GarmNet's bank (eq. 4) + the IP term.
- ``diffusers_igr.py``: GarmNet's pass and the GarmFus denoiser on a diffusers UNet (training, tests).
- ``spec.py``: the "igr" weight-file layout.
"""
