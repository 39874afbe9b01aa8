"""Runs one CFG step of Moore-AnimateAnyone's stage-1 image pipeline with the public code, in a
subprocess: ``python animate_anyone_public.py INPUTS.pt OUTPUT.pt`` with the public work tree as the
working directory (its ``src`` package importable; it pins diffusers 0.24, which the test may put
on PYTHONPATH through ANIMATE_ANYONE_PYTHONPATH).

The step is ``Pose2ImagePipeline.__call__`` (src/pipelines/pipeline_pose2img.py) for i == 0,
fed the latents the Atelier side used instead of its VAE/CLIP preprocessing: writer/reader
``ReferenceAttentionControl(..., do_classifier_free_guidance=True, batch_size=1, fusion_blocks="full")``,
the reference UNet over ``ref_image_latents.repeat(2)`` at ``torch.zeros_like(t)`` with
``[zeros, clip]`` context, ``reader.update(writer)``, the denoising UNet (UNet3DConditionModel, one
frame) with ``pose_cond_fea`` twice, then ``uncond + guidance · (text − uncond)``. The three
networks are loaded from the published-layout files as ``scripts/pose2vid.py`` loads them. Nothing
here is the public code: it only imports it from the given work tree.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import torch

BLOCKS_3D = {"CrossAttnDownBlock2D": "CrossAttnDownBlock3D", "DownBlock2D": "DownBlock3D",
             "CrossAttnUpBlock2D": "CrossAttnUpBlock3D", "UpBlock2D": "UpBlock3D"}


def build(inputs: dict):
    from src.models.pose_guider import PoseGuider
    from src.models.unet_2d_condition import UNet2DConditionModel
    from src.models.unet_3d import UNet3DConditionModel

    kwargs = dict(inputs["unet_kwargs"])
    reference_unet = UNet2DConditionModel(**kwargs)
    kwargs_3d = {key: value for key, value in kwargs.items() if key != "transformer_layers_per_block"}
    kwargs_3d["down_block_types"] = tuple(BLOCKS_3D[name] for name in kwargs["down_block_types"])
    kwargs_3d["up_block_types"] = tuple(BLOCKS_3D[name] for name in kwargs["up_block_types"])
    denoising_unet = UNet3DConditionModel(**kwargs_3d, use_motion_module=False, unet_use_temporal_attention=False)
    pose_guider = PoseGuider(kwargs["block_out_channels"][0], block_out_channels=tuple(inputs["guider_widths"]))
    reference_unet.load_state_dict(torch.load(inputs["reference_unet"], map_location="cpu"))
    pose_guider.load_state_dict(torch.load(inputs["pose_guider"], map_location="cpu"))
    missing, _ = denoising_unet.load_state_dict(torch.load(inputs["denoising_unet"], map_location="cpu"), strict=False)
    assert not missing, f"the denoising UNet file misses {missing[:3]}"
    return reference_unet.eval(), denoising_unet.eval(), pose_guider.eval()


def public_step(inputs: dict, bank_dtype) -> torch.Tensor:
    from src.models.mutual_self_attention import ReferenceAttentionControl

    reference_unet, denoising_unet, pose_guider = build(inputs)
    guidance = inputs["guidance"]
    clip_image_embeds = inputs["context"][:, 0]  # (1, E): image_embeds
    image_prompt_embeds = clip_image_embeds.unsqueeze(1)
    image_prompt_embeds = torch.cat([torch.zeros_like(image_prompt_embeds), image_prompt_embeds], dim=0)
    writer = ReferenceAttentionControl(reference_unet, do_classifier_free_guidance=True, mode="write", batch_size=1,
                                       fusion_blocks="full")
    reader = ReferenceAttentionControl(denoising_unet, do_classifier_free_guidance=True, mode="read", batch_size=1,
                                       fusion_blocks="full")
    latents = inputs["x_in"].unsqueeze(2)  # (1, 4, 1, h, w)
    t = torch.tensor(inputs["t"])
    with torch.no_grad():
        pose_fea = pose_guider(inputs["pose"].unsqueeze(2))  # (1, C, 1, h, w)
        pose_fea = torch.cat([pose_fea] * 2)
        reference_unet(inputs["ref_latent"].repeat(2, 1, 1, 1), torch.zeros_like(t),
                       encoder_hidden_states=image_prompt_embeds, return_dict=False)
        reader.update(writer, dtype=bank_dtype)
        noise_pred = denoising_unet(torch.cat([latents] * 2), t, encoder_hidden_states=image_prompt_embeds,
                                    pose_cond_fea=pose_fea, return_dict=False)[0]
    uncond, text = noise_pred.chunk(2)
    reader.clear()
    writer.clear()
    return (uncond + guidance * (text - uncond))[:, :, 0]  # (1, 4, h, w)


def public_drawing(inputs: dict) -> np.ndarray:
    """The target skeleton drawn by the public ``src/dwpose/util.py`` ``draw_bodypose`` (loaded on its
    own: the package's __init__ needs the ONNX detector; its module-level matplotlib import, used only
    by ``draw_handpose``, is stubbed), from normalised COCO-18 points as ``DWposeDetector`` passes them."""
    sys.modules.setdefault("matplotlib", types.ModuleType("matplotlib"))
    spec = importlib.util.spec_from_file_location("aa_dwpose_util", "src/dwpose/util.py")
    util = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(util)
    points, visible = np.asarray(inputs["pose_points"], dtype=np.float64), np.asarray(inputs["pose_visible"])
    subset = np.where(visible, np.arange(len(points)), -1).astype(np.float64)[None]  # (1, 18) candidate index or -1
    canvas = np.zeros((inputs["height"], inputs["width"], 3), dtype=np.uint8)
    return util.draw_bodypose(canvas, points, subset)


def main() -> None:
    inputs = torch.load(sys.argv[1], weights_only=False)
    sys.path.insert(0, ".")
    drawing = public_drawing(inputs)
    inputs["pose"] = torch.from_numpy(drawing).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W), do_normalize=False
    outputs = {
        "drawing": torch.from_numpy(drawing),
        "published_fp16_bank": public_step(inputs, torch.float16),  # ReferenceAttentionControl.update's default dtype
        "fp32_bank": public_step(inputs, torch.float32),
    }
    torch.save(outputs, sys.argv[2])


if __name__ == "__main__":
    main()
