"""AnimateAnyone's stage-1 still-image networks (Moore-AnimateAnyone, published in patrolli/AnimateAnyone)
as graph blocks on core types.

Graph: Atelier Load AnimateAnyone (three files) → denoising MODEL, reference MODEL, pose guider.
Load CLIP Vision (sd-image-variations' image_encoder) → CLIP Vision Encode (crop "none") →
Atelier Encode AnimateAnyone Source (reference MODEL, VAE, source photo) → SOURCE + positive/negative
(the CLIP image embedding and its zero counterpart as the cross-attention context) → Atelier Apply
AnimateAnyone (denoising MODEL, SOURCE, pose guider, target POSE_KEYPOINT) → KSampler (CFG 3.5) →
VAE Decode. These are siblings of the TruePose nodes rather than options on them: TruePose reads its
SourceNet through the sampled MODEL itself with a text context and a required parsing map, while this
family brings its own reference UNet (the SourceNet here), reads with plain concatenation and
conditions the denoiser on CLIP image embeddings. TruePose's HPFA and CAA are optional inputs on top
(off by default): a source parsing (and a CLIP vision model for CAA's region crops) on Encode
AnimateAnyone Source, TruePose weights and their strengths on Apply AnimateAnyone
(animate_anyone_truepose.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import comfy.model_management
import comfy.model_patcher
import comfy.model_sampling
import folder_paths
import torch
from comfy_api.latest import io

from ..models.errors import ReferenceInputError, UnsupportedModelError
from ..models.garment_networks.files import PICKLE_SUFFIXES
from ..models.log import logger
from ..models.pose_networks.animate_anyone import (
    convert_to_safetensors,
    read_denoising_unet,
    read_pose_guider,
    read_reference_unet,
)
from ..models.pose_networks.drawing import PoseDrawings
from ..models.pose_networks.pose_guider import PoseGuider
from ..models.reference_bank import ReferenceBank
from ..models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from ..models.sites import SITE_GROUPS
from ..models.truepose.config import PAPER_DELTA, PAPER_K, PAPER_SIGMA
from .animate_anyone_attachment import AnimateAnyoneAttachment
from .animate_anyone_truepose import truepose_on_top
from .combo_check import combo_errors
from .folders import FOLDER_NAME
from .garment_unet import load_garment_unet
from .model_check import require_sd15, require_sd15_vae
from .reference_image import check_reference_image, crop_to_multiple_of_8
from .reference_source import write_bank
from .schedule_inputs import schedule_window_inputs
from .truepose_inputs import PARSING_FORMATS, source_labels, target_poses
from .truepose_nodes import TruePoseType
from .truepose_source import region_embeddings
from .weights_loader import foreign_file_names, managed_module

PoseGuiderType = io.Custom("ATELIER_POSE_GUIDER")
AnimateAnyoneSourceType = io.Custom("ATELIER_ANIMATE_ANYONE_SOURCE")
PoseKeypointType = io.Custom("POSE_KEYPOINT")
CATEGORY = "Atelier/animate anyone"
PUBLIC_CFG = 3.5  # Pose2ImagePipeline's guidance in the public validation and pose2vid scripts


class VPredictionZeroSNR(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.V_PREDICTION):
    """The schedule AnimateAnyone trained with (``enable_zero_snr``: v-prediction, zero terminal SNR)."""


@dataclass(frozen=True)
class LoadedPoseGuider:
    """A loaded PoseGuider and its ModelPatcher (ComfyUI loads it with the denoising UNet)."""

    name: str
    module: PoseGuider
    patcher: comfy.model_patcher.ModelPatcher


@dataclass(frozen=True)
class AnimateAnyoneSource:
    """What Encode AnimateAnyone Source hands to Apply AnimateAnyone.

    Attributes:
        bank: the reference UNet's attn1 inputs at all 16 sites, (B_s, T, C) each, on the intermediate device;
            TruePose's F' when HPFA/CAA run on top.
        context: (B_s, 1, E) the CLIP image embedding context the reference pass read.
        latent_hw: (h, w) of the source latent the bank was written from (the bank's token grids).
        labels: (B_s, H, W) LIP label maps of the sources (the optional ``source_parsing``), or None.
        region_masks: (B_s, R, H, W) CAA's parsing-region masks, or None without a parsing.
        clip_embeds: (B_s, R, E) CLIP embeddings of the region crops (``caa_clip_vision``), or None.
    """

    bank: ReferenceBank
    context: torch.Tensor
    latent_hw: tuple[int, int] | None = None
    labels: torch.Tensor | None = None
    region_masks: torch.Tensor | None = None
    clip_embeds: torch.Tensor | None = None


def animate_anyone_file_names() -> list[str]:
    """Files in models/atelier/ that are not Atelier weight files (recognised from their keys when loaded)."""
    return foreign_file_names((".safetensors", *PICKLE_SUFFIXES))


def resolve(name: str, save_safetensors: bool) -> str:
    """The full path of ``name``; a pickled file is also written once as '<name>.safetensors' beside it."""
    path = folder_paths.get_full_path_or_raise(FOLDER_NAME, name)
    if save_safetensors and path.endswith(PICKLE_SUFFIXES):
        target = os.path.splitext(path)[0] + ".safetensors"
        if not os.path.exists(target):
            convert_to_safetensors(path, target)
            logger.info("wrote %s; pick it in Load AnimateAnyone from now on", target)
    return path


def animate_anyone_model(diffusers_state: dict[str, torch.Tensor], name: str):
    """A MODEL of an AnimateAnyone UNet, sampled as trained (v-prediction, zero terminal SNR)."""
    patcher = load_garment_unet(diffusers_state, name)
    patcher.add_object_patch("model_sampling", VPredictionZeroSNR(patcher.model.model_config, zsnr=True))
    return patcher


class AnimateAnyoneLoaderNode(io.ComfyNode):
    """The three stage-1 files -> denoising MODEL, reference MODEL, pose guider."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        names = animate_anyone_file_names()
        return io.Schema(
            node_id="AtelierAnimateAnyoneLoader",
            display_name="Atelier Load AnimateAnyone",
            category=CATEGORY,
            description=(
                "Loads Moore-AnimateAnyone's still-image (stage 1) networks as published in patrolli/AnimateAnyone "
                "(Apache-2.0): denoising_unet.pth, reference_unet.pth and pose_guider.pth, from models/atelier/. "
                "The two UNets become MODELs (v-prediction with zero terminal SNR, as trained); each file is "
                "recognised from its keys."
            ),
            inputs=[
                io.Combo.Input("denoising_unet", options=names, tooltip="denoising_unet.pth (or its .safetensors)."),
                io.Combo.Input("reference_unet", options=names, tooltip="reference_unet.pth (or its .safetensors)."),
                io.Combo.Input("pose_guider", options=names, tooltip="pose_guider.pth (or its .safetensors)."),
                io.Boolean.Input("save_safetensors", default=True,
                                 tooltip="For a pickled .pth: write '<name>.safetensors' beside it once, so later "
                                 "loads are fast and pickle-free (pick the new files next time)."),
            ],
            outputs=[
                io.Model.Output("model", display_name="model"),
                io.Model.Output("reference_model", display_name="reference_model"),
                PoseGuiderType.Output("pose_guider_out", display_name="pose_guider"),
            ],
        )

    @classmethod
    def validate_inputs(cls, denoising_unet=None, reference_unet=None, pose_guider=None) -> bool | str:
        names = animate_anyone_file_names()
        for input_name, value in (("denoising_unet", denoising_unet), ("reference_unet", reference_unet),
                                  ("pose_guider", pose_guider)):
            if value is not None and value not in names:
                return f"'{input_name}' is '{value}', which is not a file in models/atelier/"
        return True

    @classmethod
    def execute(cls, denoising_unet: str, reference_unet: str, pose_guider: str, save_safetensors: bool) -> io.NodeOutput:
        model = animate_anyone_model(read_denoising_unet(resolve(denoising_unet, save_safetensors)), denoising_unet)
        reference = animate_anyone_model(read_reference_unet(resolve(reference_unet, save_safetensors)), reference_unet)
        guider = read_pose_guider(resolve(pose_guider, save_safetensors))
        width = int(model.model.model_config.unet_config["model_channels"])
        if guider.config.embedding_channels != width:
            raise UnsupportedModelError(
                f"'pose_guider' ({pose_guider}) gives {guider.config.embedding_channels}-wide features but "
                f"'denoising_unet' ({denoising_unet}) is {width} wide; pick the files of one AnimateAnyone release"
            )
        return io.NodeOutput(model, reference, LoadedPoseGuider(name=pose_guider, module=guider, patcher=managed_module(guider)))


def clip_image_context(clip_vision_output, model, input_name: str = "clip_vision_output") -> torch.Tensor:
    """(B, 1, E) cross-attention context: the projected CLIP image embedding, as the public pipeline's
    ``image_encoder(...).image_embeds.unsqueeze(1)``."""
    embeds = getattr(clip_vision_output, "image_embeds", None)
    if embeds is None:
        raise ReferenceInputError(f"'{input_name}' has no image_embeds; connect CLIP Vision Encode")
    expected = int(model.model.model_config.unet_config["context_dim"])
    if embeds.shape[-1] != expected:
        raise UnsupportedModelError(
            f"'{input_name}' gives {embeds.shape[-1]}-wide image embeddings but the reference MODEL reads "
            f"{expected}; load sd-image-variations' image_encoder (CLIP ViT-L/14) in Load CLIP Vision"
        )
    return embeds.float().unsqueeze(1)  # (B, 1, E)


class EncodeAnimateAnyoneSourceNode(io.ComfyNode):
    """Source photo -> the reference UNet's bank, and the CLIP image context as positive/negative."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierEncodeAnimateAnyoneSource",
            display_name="Atelier Encode AnimateAnyone Source",
            category=CATEGORY,
            description=(
                "Runs AnimateAnyone's reference UNet once over the source photo (timestep 0, context = the photo's "
                "CLIP image embedding) and keeps what every self-attention sees, for Apply AnimateAnyone. Also "
                "returns the conditioning the denoiser reads: positive = the CLIP image embedding, negative = zeros."
            ),
            inputs=[
                io.Model.Input("reference_model", tooltip="reference_model of Atelier Load AnimateAnyone."),
                io.Vae.Input("vae", tooltip="The SD1.5 VAE (AnimateAnyone uses sd-vae-ft-mse)."),
                io.ClipVisionOutput.Input("clip_vision_output",
                                          tooltip="CLIP Vision Encode of the source photo with crop 'none' (the public "
                                          "pipeline squashes the photo to 224×224), from sd-image-variations' "
                                          "image_encoder."),
                io.Image.Input("source_image", tooltip="The person to re-pose. Give it at the size you generate (the "
                               "public pipeline resizes it to the output size); sides are center-cropped to a multiple of 8."),
                io.Image.Input("source_parsing", optional=True,
                               tooltip="Only for TruePose's HPFA/CAA on top (Apply AnimateAnyone's hpfa_strength / "
                               "caa_strength): human parsing of source_image as a LIP or ATR palette image (exact "
                               "colours) or a grey label-id image; one for all sources or one each. Without it HPFA "
                               "runs without parsing guidance and CAA cannot run."),
                io.Combo.Input("parsing_format", options=list(PARSING_FORMATS), default="lip_palette", optional=True,
                               tooltip="How source_parsing encodes classes: LIP/ATR palette colours, or grey ids "
                               "(value×255 = id)."),
                io.ClipVision.Input("caa_clip_vision", optional=True,
                                    tooltip="Only for CAA on top (needs source_parsing): the CLIP vision model the "
                                    "TruePose weights' CAA was trained with; it embeds the crop of each parsing region. "
                                    "Not the image encoder of clip_vision_output unless CAA was trained with it."),
            ],
            outputs=[
                AnimateAnyoneSourceType.Output("source", display_name="source"),
                io.Conditioning.Output("positive", display_name="positive"),
                io.Conditioning.Output("negative", display_name="negative"),
            ],
        )

    @classmethod
    def validate_inputs(cls, parsing_format=None) -> bool | str:
        return combo_errors(parsing_format=(parsing_format, tuple(PARSING_FORMATS))) or True

    @classmethod
    def execute(cls, reference_model, vae, clip_vision_output, source_image: torch.Tensor,
                source_parsing: torch.Tensor | None = None, parsing_format: str = "lip_palette",
                caa_clip_vision=None) -> io.NodeOutput:
        require_sd15(reference_model, "reference_model")
        require_sd15_vae(vae)
        check_reference_image(source_image, "source_image")
        if caa_clip_vision is not None and source_parsing is None:
            raise ReferenceInputError(
                "'caa_clip_vision' embeds the parsing regions of the source; connect 'source_parsing' too, or "
                "disconnect 'caa_clip_vision'"
            )
        context = clip_image_context(clip_vision_output, reference_model)
        pixels = crop_to_multiple_of_8(source_image)[..., :3]
        if context.shape[0] not in (1, pixels.shape[0]):
            raise ReferenceInputError(
                f"'clip_vision_output' holds {context.shape[0]} embeddings but 'source_image' {pixels.shape[0]} images; "
                "encode the same images"
            )
        latent = vae.encode(pixels).float()  # (B_s, 4, H/8, W/8): the posterior mean, as latent_dist.mean
        comfy.model_management.load_models_gpu([reference_model])
        device = reference_model.load_device
        base_model = reference_model.model
        rows = latent.shape[0]
        bank = write_bank(  # the reference UNet at timestep 0 (``torch.zeros_like(t)``), its attn1 inputs banked
            base_model, base_model.process_latent_in(latent.to(device)), torch.zeros(rows, device=device),
            context.to(device).expand(rows, -1, -1), ReferenceBank(), SITE_GROUPS["all"],
        )
        offload = comfy.model_management.intermediate_device()
        positive = [[context.to(offload), {}]]
        negative = [[torch.zeros_like(context).to(offload), {}]]  # uncond_image_prompt_embeds = zeros_like
        labels = region_masks = clip_embeds = None
        if source_parsing is not None:
            labels = source_labels(source_parsing, parsing_format, source_image)  # (B_s, H8, W8)
            region_masks, clip_embeds = region_embeddings(caa_clip_vision, pixels.cpu().float(), labels)
        source = AnimateAnyoneSource(bank=bank.to(offload), context=context.to(offload),
                                     latent_hw=tuple(latent.shape[-2:]), labels=labels, region_masks=region_masks,
                                     clip_embeds=clip_embeds)
        return io.NodeOutput(source, positive, negative)


class ApplyAnimateAnyoneNode(io.ComfyNode):
    """Denoising MODEL + SOURCE + target POSE_KEYPOINT -> a MODEL that draws the source person in the pose."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierApplyAnimateAnyone",
            display_name="Atelier Apply AnimateAnyone",
            category=CATEGORY,
            description=(
                "Pose transfer with AnimateAnyone's stage-1 networks: every self-attention of the denoising UNet also "
                "attends to the source's reference features (conditional half only, as published), and the pose "
                "guider's features of the target skeleton are added after conv_in. Sample with KSampler at CFG 3.5 "
                "with the positive/negative of Encode AnimateAnyone Source; a latent batch of 1 or one per pose frame. "
                "Optional, off by default: TruePose's HPFA/CAA on top of the concat read (connect 'truepose' and raise "
                "hpfa_strength / caa_strength; a source_parsing on Encode AnimateAnyone Source guides HPFA and is "
                "needed for CAA)."
            ),
            inputs=[
                io.Model.Input("model", tooltip="model (the denoising UNet) of Atelier Load AnimateAnyone."),
                AnimateAnyoneSourceType.Input("source", tooltip="From Atelier Encode AnimateAnyone Source."),
                PoseGuiderType.Input("pose_guider", tooltip="pose_guider of Atelier Load AnimateAnyone."),
                PoseKeypointType.Input("target_pose", tooltip="Target pose(s) as POSE_KEYPOINT (DWPose/OpenPose "
                                       "preprocessors, Atelier Load Pose Keypoints); bodies are drawn as DWPose draws "
                                       "them. Several frames = a pose sequence (one latent per frame)."),
                io.Int.Input("person", default=0, min=0, max=64, tooltip="Which person of each frame is the target pose."),
                io.Float.Input("reference_strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Weight of the source's tokens in every self-attention (1 as published, 0 = off)."),
                io.Float.Input("pose_strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Factor on the pose guider's features (1 as published, 0 = no pose)."),
                *schedule_window_inputs("the source is"),
                io.Image.Input("skeleton", optional=True,
                               tooltip="A ready pose image instead of drawing target_pose (e.g. a DWPose preprocessor's "
                               "image with hands and face); one for all or one per frame, resized to the sampled size."),
                TruePoseType.Input("truepose", optional=True,
                                   tooltip="Optional, for TruePose's HPFA/CAA on top of the concat read: Atelier Load "
                                   "TruePose's weights for an SD1.5-width UNet (their pose encoder is not used; the pose "
                                   "guider is). No TruePose weights are trained on AnimateAnyone's UNet: expect an "
                                   "experiment, not a tuned result. Used only when hpfa_strength or caa_strength is above 0."),
                io.Float.Input("hpfa_strength", default=0.0, min=0.0, max=2.0, step=0.05, optional=True,
                               tooltip="s_hpfa: weight of HPFA's fused source features (TruePose eq. 8), added to the "
                               "concat read at the weights' HPFA sites; 0 = off (the default, as published)."),
                io.Float.Input("caa_strength", default=0.0, min=0.0, max=2.0, step=0.05, optional=True,
                               tooltip="s_caa: weight of CAA's CLIP-region term (TruePose eq. 9); 0 = off (the default). "
                               "Needs source_parsing and caa_clip_vision on Encode AnimateAnyone Source."),
                io.Float.Input("sigma", default=PAPER_SIGMA, min=0.0, max=2.0, step=0.05, optional=True,
                               tooltip="σ of TruePose eq. 6: HPFA's weight outside the selected parsing regions (0.3 in "
                               "the paper); used with a source_parsing."),
                io.Float.Input("delta", default=PAPER_DELTA, min=0.0, max=2.0, step=0.05, optional=True,
                               tooltip="δ of TruePose eq. 6: HPFA's weight inside the selected parsing regions (0.6 in "
                               "the paper); used with a source_parsing."),
                io.Int.Input("k", default=PAPER_K, min=1, max=8, optional=True,
                             tooltip="K: how many least-attended parsing regions CAA reads (2 in the paper)."),
            ],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model, source: AnimateAnyoneSource, pose_guider: LoadedPoseGuider, target_pose, person: int,
                reference_strength: float, pose_strength: float, start_percent: float, end_percent: float,
                skeleton: torch.Tensor | None = None, truepose=None, hpfa_strength: float = 0.0,
                caa_strength: float = 0.0, sigma: float = PAPER_SIGMA, delta: float = PAPER_DELTA,
                k: int = PAPER_K) -> io.NodeOutput:
        require_sd15(model)
        poses = target_poses(target_pose, person) if skeleton is None else []
        if skeleton is not None and skeleton.ndim != 4:
            raise ReferenceInputError(f"'skeleton' must be an IMAGE batch; got shape {tuple(skeleton.shape)}")
        width = int(model.model.model_config.unet_config["model_channels"])
        if pose_guider.module.config.embedding_channels != width:
            raise UnsupportedModelError(
                f"'pose_guider' ({pose_guider.name}) gives {pose_guider.module.config.embedding_channels}-wide features "
                f"but 'model' is {width} wide; connect the denoising MODEL of the same Load AnimateAnyone"
            )
        config = ReferenceConfig(
            mode=ReadMode.CONCAT, strength=reference_strength, site_weights={name: 1.0 for name in SITE_GROUPS["all"]},
            start_percent=start_percent, end_percent=end_percent, uncond=UncondPolicy.NONE,
        )
        on_top = truepose_on_top(model, truepose, source, target_pose, person, hpfa_strength, caa_strength, sigma,
                                 delta, k, start_percent, end_percent)
        attachment = AnimateAnyoneAttachment(
            config, source.bank if on_top is None else on_top.bank, pose_guider.module,
            PoseDrawings(tuple(poses), skeleton), pose_strength, guider_patcher=pose_guider.patcher, truepose=on_top,
        )
        patched = model.clone()
        attachment.install(patched)
        return io.NodeOutput(patched)


NODES: tuple[type[io.ComfyNode], ...] = (AnimateAnyoneLoaderNode, EncodeAnimateAnyoneSourceNode, ApplyAnimateAnyoneNode)
