"""The pose encoder strides to the VAE's latent factor: ×4 for the toy32 substrate, ×8 (SD1.5) unchanged."""

import pytest
import torch
from atelier.models.truepose.config import TruePoseConfig, TruePoseConfigError
from atelier.models.truepose.pose_encoder import LatentFactorError, PoseEncoder, SkeletonImageError
from atelier.models.truepose.spec import TRUEPOSE
from atelier.models.weight_format import BaseModel
from atelier.train.substrate import substrate, vae_factor_for
from atelier.train.truepose.steps import truepose_config_for

# The SD1.5 pose encoder's tensors (model_channels 320, default widths), as shipped weight files hold them.
SD15_SHAPES = {
    "convs.0.weight": (16, 3, 3, 3), "convs.0.bias": (16,),
    "convs.1.weight": (32, 16, 3, 3), "convs.1.bias": (32,),
    "convs.2.weight": (96, 32, 3, 3), "convs.2.bias": (96,),
    "conv_out.weight": (320, 96, 3, 3), "conv_out.bias": (320,),
}


def _strides(encoder: PoseEncoder) -> list[int]:
    return [conv.stride[0] for conv in (*encoder.convs, encoder.conv_out)]


def test_sd15_encoder_keeps_its_keys_shapes_and_strides():
    encoder = PoseEncoder(320)
    assert {key: tuple(value.shape) for key, value in encoder.state_dict().items()} == SD15_SHAPES
    assert _strides(encoder) == [1, 2, 2, 2]
    assert encoder(torch.zeros(1, 3, 256, 176)).shape == (1, 320, 32, 22)


def test_x4_encoder_maps_a_toy32_skeleton_onto_its_latent_grid():
    toy32 = substrate("toy32")
    encoder = PoseEncoder(8, (4, 4, 4), latent_factor=vae_factor_for("toy32", None))
    with torch.no_grad():
        encoder.conv_out.weight.normal_(generator=torch.Generator().manual_seed(0))
    features = encoder(torch.rand(2, 3, toy32.size, toy32.size, generator=torch.Generator().manual_seed(1)))
    assert features.shape == (2, 8, toy32.latent_side, toy32.latent_side) == (2, 8, 32, 32)
    assert _strides(encoder) == [1, 1, 2, 2]
    # same tensors as the x8 encoder: only the stride of the second convolution differs
    sd = PoseEncoder(8, (4, 4, 4))
    sd.load_state_dict(encoder.state_dict())
    assert sd(torch.zeros(1, 3, 128, 128)).shape == (1, 8, 16, 16)
    with pytest.raises(SkeletonImageError, match="multiples of 4"):
        encoder(torch.rand(1, 3, 128, 126))
    with pytest.raises(LatentFactorError, match="latent factor"):
        PoseEncoder(8, (4, 4, 4), latent_factor=3)


def test_config_carries_the_factor_and_old_files_read_as_x8():
    base = BaseModel(model_channels=8)
    old = TruePoseConfig(pose_encoder_widths=(4, 4, 4)).to_dict()
    del old["latent_factor"]  # a file written before the field existed
    assert TruePoseConfig.from_dict(old).latent_factor == 8
    toy = TruePoseConfig(pose_encoder_widths=(4, 4, 4), latent_factor=4)
    assert TruePoseConfig.from_dict(toy.to_dict()) == toy
    assert _strides(TRUEPOSE.build(toy.to_dict(), base)["pose_encoder"]) == [1, 1, 2, 2]
    assert _strides(TRUEPOSE.build(old, base)["pose_encoder"]) == [1, 2, 2, 2]
    with pytest.raises(TruePoseConfigError, match="latent_factor"):
        TruePoseConfig(latent_factor=16)
    assert truepose_config_for("full", 6, vae_factor_for("toy32", None)).latent_factor == 4
    assert truepose_config_for("full", 6, vae_factor_for("tiny", None)).latent_factor == 8
