"""An untrained HPFA (``HPFAProjections.initialise_from``) reads like the layer's own attention over F'.

The aligned read is the one a plain concatenation of F' gets at a site: Softmax(Q(Wk F')ᵀ/√d)·Wv F',
with the TargetNet layer's own Wq, Wk, Wv (random tiny UNet weights here).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from atelier.models.reference_attention import multihead_attention
from atelier.models.sites import SITE_GROUPS, SITES_BY_NAME
from atelier.models.truepose.hpfa import HPFAProjections, HPFAShapeError, hpfa_read, hpfa_source
from atelier.train.tiny import TINY_MODEL_CHANNELS, tiny_unet
from atelier.train.truepose.steps import attn1_weights

DECODER_SITES = SITE_GROUPS["output"]
SIGMA, DELTA = 0.3, 0.6  # the paper's σ, δ


@pytest.fixture(scope="module")
def site_layers() -> tuple[HPFAProjections, dict[str, torch.nn.Module]]:
    """Untrained HPFA projections from a random tiny UNet, and each decoder site's attn1."""
    torch.set_num_threads(1)
    unet = tiny_unet().eval().requires_grad_(False)
    projections = HPFAProjections.for_sd15(TINY_MODEL_CHANNELS, DECODER_SITES)
    projections.initialise_from(attn1_weights(unet, DECODER_SITES))
    modules = dict(unet.named_modules())
    return projections, {name: modules[SITES_BY_NAME[name].diffusers_attn1] for name in DECODER_SITES}


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_projections_compose_to_the_layers_key_and_value(site_layers):
    """W^{K'_h}W^{V'} = Wk and W^{V'_h}W^{V'} = Wv: the value projection is applied once."""
    projections, layers = site_layers
    for name, attn in layers.items():
        site = SITES_BY_NAME[name]
        states = _randn(2, 10, attn.to_q.in_features, seed=1)  # F' (B, T', C)
        _, _, v_src = projections.project_source(site, states)
        k_h, v_h = projections.project_hidden(site, v_src)
        torch.testing.assert_close(k_h, attn.to_k(states))
        torch.testing.assert_close(v_h, attn.to_v(states))


def test_untrained_hpfa_is_the_aligned_read_when_mixing_keeps_f_prime(site_layers):
    """A source of one repeated token: any softmax mix of F' is F', so H' = F' and eq. 8 is exactly the
    aligned read, whatever the mask, σ and δ."""
    projections, layers = site_layers
    for name, attn in layers.items():
        width = attn.to_q.in_features
        states = _randn(1, 1, width, seed=2).expand(2, 12, width)  # F' (B, T', C), one repeated token
        q = attn.to_q(_randn(2, 20, width, seed=3))  # Q (B, T, C)
        mask = (_randn(2, 12, 1, seed=4) > 0).float()
        source = hpfa_source(projections, SITES_BY_NAME[name], states, mask, heads=attn.heads, sigma=SIGMA, delta=DELTA)
        aligned = multihead_attention(q, attn.to_k(states), attn.to_v(states), attn.heads)
        torch.testing.assert_close(hpfa_read(q, source, attn.heads), aligned)


def test_untrained_hpfa_points_along_the_aligned_read_on_a_random_source(site_layers):
    """Random F' and queries, M all ones: the eq. 7 mixing is the only difference, cosine > 0.85."""
    projections, layers = site_layers
    for name, attn in layers.items():
        width = attn.to_q.in_features
        states = _randn(2, 16, width, seed=5)  # F' (B, T', C)
        q = attn.to_q(_randn(2, 16, width, seed=6))  # Q (B, T, C)
        source = hpfa_source(projections, SITES_BY_NAME[name], states, torch.ones(2, 16, 1), heads=attn.heads,
                             sigma=SIGMA, delta=DELTA)
        aligned = multihead_attention(q, attn.to_k(states), attn.to_v(states), attn.heads)
        cosine = F.cosine_similarity(hpfa_read(q, source, attn.heads).flatten(), aligned.flatten(), dim=0)
        assert cosine > 0.85, f"site {name}: cosine {cosine:.3f} with the aligned read"


def test_initialise_from_names_a_site_whose_widths_differ():
    projections = HPFAProjections({"output_11": (6, 8)})
    weights = (torch.zeros(8, 6), torch.zeros(8, 6), torch.zeros(8, 6))
    with pytest.raises(HPFAShapeError, match="output_11: attn1 maps width 6 to 8"):
        projections.initialise_from({"output_11": weights})
