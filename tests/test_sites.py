"""The SD1.5 site table: 16 sites, keys, names, token grids."""

import pytest

from atelier.models.errors import ReferenceInputError
from atelier.models.sites import SD15_SITES, SITE_GROUPS, SITES_BY_KEY, site_for_block, sites_named
from atelier.train.tiny import tiny_unet


def test_sixteen_sites_in_call_order_with_unique_keys():
    assert len(SD15_SITES) == 16
    assert [s.order for s in SD15_SITES] == list(range(16))
    assert len(SITES_BY_KEY) == 16
    assert ("middle", 0, 0) in SITES_BY_KEY and ("middle", 1, 0) not in SITES_BY_KEY


@pytest.mark.parametrize(
    "latent, counts",
    [((64, 64), {0: 4096, 1: 1024, 2: 256, 3: 64}), ((32, 32), {0: 1024, 1: 256, 2: 64, 3: 16}),
     ((33, 20), {0: 660, 1: 170, 2: 45, 3: 15})],
)
def test_token_counts_follow_the_latent(latent, counts):
    for site in SD15_SITES:
        assert site.token_count(*latent) == counts[site.level]


def test_groups_partition_the_sites():
    assert set(SITE_GROUPS["input"]) | set(SITE_GROUPS["middle"]) | set(SITE_GROUPS["output"]) == set(SITE_GROUPS["all"])
    assert SITE_GROUPS["middle"] == ("middle_0",)


def test_site_lookup_from_comfy_block_and_unknown_names():
    assert site_for_block(("output", 11), 0).name == "output_11"
    assert site_for_block(("middle", 1), 0) is None
    assert site_for_block(None) is None
    with pytest.raises(ReferenceInputError, match="middle_1"):
        sites_named(["middle_1"])


def test_diffusers_names_exist_on_an_sd15_layout_unet():
    modules = dict(tiny_unet().named_modules())
    attn1 = {name for name in modules if name.endswith("attn1")}
    assert attn1 == {site.diffusers_attn1 for site in SD15_SITES}


def test_channels_per_site():
    assert [s.channels(320) for s in SD15_SITES[:7]] == [320, 320, 640, 640, 1280, 1280, 1280]
