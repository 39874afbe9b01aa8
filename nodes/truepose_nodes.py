"""TruePose pose-transfer nodes (issue 9): load TruePose weights, encode a source person, apply to MODEL.

Graph: Load TruePose + Encode Pose Source (MODEL, CLIP, VAE, source photo, its parsing, CLIP vision)
→ Apply TruePose (MODEL, target POSE_KEYPOINT) → KSampler (CFG 3.5, the paper's ω; positive and
negative = the empty prompt) → VAEDecode. SourceNet and the CLIP region embeddings run inside Encode
Pose Source, once per source (ComfyUI caches the node), so new seeds and new poses reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import comfy.model_patcher
import numpy as np
import torch
from comfy_api.latest import io
from torch import nn

from ..models.errors import ReferenceInputError, UnsupportedModelError
from ..models.parsing import LIP
from ..models.pose import BodyPose
from ..models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from ..models.sites import SITES_BY_NAME
from ..models.truepose.config import PAPER_DELTA, PAPER_K, PAPER_SIGMA, TruePoseConfig
from ..models.truepose.parsing_selection import selected_source_mask
from ..models.truepose.spec import SYSTEM_NAME
from ..models.weight_format import BaseModel
from .combo_check import combo_errors
from .model_check import require_base, require_sd15, require_sd15_vae
from .prompt import encode_prompt
from .reference_image import check_reference_image, crop_to_multiple_of_8
from .schedule_inputs import schedule_window_inputs
from .truepose_attachment import TargetPose, TruePoseAttachment
from .truepose_inputs import PARSING_FORMATS, source_labels, target_poses
from .truepose_source import PoseSource, encode_source
from .weights_loader import load_atelier_weights, managed_module, system_file_names

TruePoseType = io.Custom("ATELIER_TRUEPOSE")
PoseSourceType = io.Custom("ATELIER_POSE_SOURCE")
PoseKeypointType = io.Custom("POSE_KEYPOINT")
CATEGORY = "Atelier/truepose"


@dataclass(frozen=True)
class TruePoseWeights:
    """A loaded TruePose weight file: HPFA and CAA projections and the pose encoder, wrapped once in a
    ModelPatcher so ComfyUI loads and offloads them with the UNet."""

    name: str
    config: TruePoseConfig
    base: BaseModel
    modules: nn.ModuleDict
    patcher: comfy.model_patcher.ModelPatcher


class TruePoseLoaderNode(io.ComfyNode):
    """Weight file name -> TruePose weights."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierTruePoseLoader",
            display_name="Atelier Load TruePose",
            category=CATEGORY,
            description="Loads a TruePose pose-transfer weight file (HPFA and CAA projections, pose encoder; trained "
            "with python -m atelier.train.truepose) from models/atelier/. The UNet's own update is a separate LoRA "
            "for Load LoRA (or a UNet for Load Diffusion Model).",
            inputs=[io.Combo.Input("weights", options=system_file_names(SYSTEM_NAME),
                                   tooltip="A TruePose weight file in models/atelier/ (other files are not listed).")],
            outputs=[TruePoseType.Output("truepose", display_name="truepose")],
        )

    @classmethod
    def validate_inputs(cls, weights=None) -> bool | str:
        if weights is not None and weights not in system_file_names(SYSTEM_NAME):
            return f"'weights' is '{weights}', which is not a TruePose weight file in models/atelier/"
        return True

    @classmethod
    def execute(cls, weights: str) -> io.NodeOutput:
        loaded = load_atelier_weights(weights, SYSTEM_NAME)
        modules = nn.ModuleDict(loaded.modules).eval()
        return io.NodeOutput(TruePoseWeights(name=weights, config=TruePoseConfig.from_dict(loaded.config),
                                             base=loaded.base, modules=modules, patcher=managed_module(modules)))


class EncodePoseSourceNode(io.ComfyNode):
    """Source person IMAGE + its parsing -> SOURCE (SourceNet's features and CAA's region embeddings)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierEncodePoseSource",
            display_name="Atelier Encode Pose Source",
            category=CATEGORY,
            description=(
                "Encodes the person to re-pose for TruePose: SourceNet (your MODEL at timestep 0) reads the photo once, "
                "and CLIP vision embeds the bounding-box crop of each parsing region (face, hair, upper, lower, ...). "
                "Connect the result to Atelier Apply TruePose; new seeds and new target poses reuse it."
            ),
            inputs=[
                io.Model.Input("model", tooltip="The SD1.5 MODEL you will sample with (same LoRAs): SourceNet shares its weights."),
                io.Clip.Input("clip", tooltip="The checkpoint's CLIP; encodes the empty prompt SourceNet reads."),
                io.Vae.Input("vae", tooltip="The SD1.5 VAE; encodes the source photo."),
                io.Image.Input("source_image", tooltip="Photo(s) of the person to re-pose, at least 64×64 (sides are "
                               "center-cropped to a multiple of 8). The paper uses 352×512 and 176×256."),
                io.Image.Input("source_parsing", tooltip="Human parsing of source_image: a LIP or ATR palette image "
                               "(exact colours, lossless PNG) or a grey label-id image; one for all sources or one each. "
                               "Another resolution of the same image is resized."),
                io.Combo.Input("parsing_format", options=list(PARSING_FORMATS), default="lip_palette",
                               tooltip="How source_parsing encodes classes: LIP/ATR palette colours, or grey ids (value×255 = id)."),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="From Load CLIP Vision: the image encoder TruePose's CAA was trained with. "
                                    "Without it, Apply TruePose needs caa_strength 0."),
            ],
            outputs=[PoseSourceType.Output("source", display_name="source")],
        )

    @classmethod
    def validate_inputs(cls, parsing_format=None) -> bool | str:
        return combo_errors(parsing_format=(parsing_format, tuple(PARSING_FORMATS))) or True

    @classmethod
    def execute(cls, model, clip, vae, source_image: torch.Tensor, source_parsing: torch.Tensor, parsing_format: str,
                clip_vision=None) -> io.NodeOutput:
        require_sd15(model)
        require_sd15_vae(vae)
        check_reference_image(source_image, "source_image")
        pixels = crop_to_multiple_of_8(source_image)[..., :3]
        labels = source_labels(source_parsing, parsing_format, source_image)
        context = encode_prompt(clip, "")[0][0]  # (1, L, C): SourceNet reads the empty prompt, as in training
        return io.NodeOutput(encode_source(model, vae, context, pixels, labels, clip_vision))


def selected_masks(labels: torch.Tensor, poses: list[BodyPose]) -> torch.Tensor:
    """M (B, H, W) per (source, target pose) row: one source for every pose, one pose for every source, or pairs."""
    sources = labels.shape[0]
    if sources == 1:
        pairs = [(0, pose) for pose in poses]
    elif len(poses) == 1:
        pairs = [(row, poses[0]) for row in range(sources)]
    elif len(poses) == sources:
        pairs = list(enumerate(poses))
    else:
        raise ReferenceInputError(
            f"'target_pose' has {len(poses)} frames but 'source' holds {sources} images; give one pose, one source, "
            "or one pose per source"
        )
    masks = [selected_source_mask(labels[row].numpy(), LIP, pose) for row, pose in pairs]
    return torch.from_numpy(np.stack(masks)).float()  # (B, H, W)


def caa_in_use(truepose: TruePoseWeights, source: PoseSource, caa_strength: float) -> bool:
    """Whether the CAA term runs; a CAA strength the inputs cannot serve is an error naming the input."""
    if caa_strength == 0:
        return False
    if not truepose.config.caa_sites:
        raise ReferenceInputError(f"'truepose' ('{truepose.name}') was trained without CAA; set 'caa_strength' to 0")
    if source.clip_embeds is None:
        raise ReferenceInputError(
            "'source' was encoded without 'clip_vision' but 'caa_strength' is above 0; connect Load CLIP Vision to "
            "Atelier Encode Pose Source, or set 'caa_strength' to 0"
        )
    width, expected = source.clip_embeds.shape[-1], truepose.config.clip_embed_dim
    if width != expected:
        raise UnsupportedModelError(
            f"the source's 'clip_vision' gives {width}-wide image embeddings but 'truepose' expects {expected} (the "
            "encoder it was trained with); load that CLIP vision model in Encode Pose Source"
        )
    return True


class ApplyTruePoseNode(io.ComfyNode):
    """MODEL + SOURCE + target POSE_KEYPOINT -> a MODEL that draws the source person in the target pose."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierApplyTruePose",
            display_name="Atelier Apply TruePose",
            category=CATEGORY,
            description=(
                "Pose transfer (TruePose): the sampled person takes the target pose while keeping the source's face and "
                "clothing. HPFA lets every self-attention read SourceNet's features, weighted toward the source parsing "
                "regions the target pose shows; CAA adds the CLIP embeddings of the least-attended regions; the pose "
                "encoder adds the target skeleton. Sample with KSampler at CFG 3.5 (the paper's ω), empty prompts, "
                "latent batch 1 or one per target pose frame."
            ),
            inputs=[
                io.Model.Input("model", tooltip="Your SD1.5 MODEL, the same one Encode Pose Source read (with the TruePose "
                               "UNet LoRA loaded when the weights came with one)."),
                TruePoseType.Input("truepose", tooltip="From Atelier Load TruePose."),
                PoseSourceType.Input("source", tooltip="From Atelier Encode Pose Source."),
                PoseKeypointType.Input("target_pose", tooltip="Target pose(s) as POSE_KEYPOINT (DWPose/OpenPose "
                                       "preprocessors, Atelier Load Pose Keypoints); one pose per frame, at least 4 "
                                       "visible keypoints. Several frames re-pose one source into a pose sequence."),
                io.Int.Input("person", default=0, min=0, max=64, tooltip="Which person of each frame is the target pose."),
                io.Float.Input("hpfa_strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="s_hpfa: weight of HPFA's fused source features (eq. 8); 1 as trained, 0 = off."),
                io.Float.Input("caa_strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="s_caa: weight of CAA's CLIP-region term (eq. 9); 1 as trained, 0 = off (no CLIP "
                               "vision needed)."),
                io.Float.Input("sigma", default=PAPER_SIGMA, min=0.0, max=2.0, step=0.05,
                               tooltip="σ of eq. 6: weight outside the selected parsing regions (the paper's 0.3)."),
                io.Float.Input("delta", default=PAPER_DELTA, min=0.0, max=2.0, step=0.05,
                               tooltip="δ of eq. 6: weight inside the selected parsing regions (the paper's 0.6)."),
                io.Int.Input("k", default=PAPER_K, min=1, max=8,
                             tooltip="K: how many least-attended parsing regions CAA reads (the paper's 2)."),
                *schedule_window_inputs("the source is"),
                io.Image.Input("skeleton", optional=True,
                               tooltip="A ready skeleton image (OpenPose colours) for the pose encoder instead of drawing "
                               "target_pose; one for all or one per frame, resized to the sampled size."),
            ],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model, truepose: TruePoseWeights, source: PoseSource, target_pose, person: int,
                hpfa_strength: float, caa_strength: float, sigma: float, delta: float, k: int,
                start_percent: float, end_percent: float, skeleton: torch.Tensor | None = None) -> io.NodeOutput:
        require_sd15(model)
        require_base(model, truepose.base, "truepose")
        poses = target_poses(target_pose, person)
        if skeleton is not None and (skeleton.ndim != 4 or skeleton.shape[0] not in (1, len(poses))):
            raise ReferenceInputError(
                f"'skeleton' must be an IMAGE batch of 1 or {len(poses)} (one per target_pose frame); got {tuple(skeleton.shape)}"
            )
        settings = replace(truepose.config, sigma=sigma, delta=delta, k=k)
        use_caa = caa_in_use(truepose, source, caa_strength)
        unet = model.model.diffusion_model
        site_heads = {name: unet.get_submodule(SITES_BY_NAME[name].comfy_attn1).heads for name in settings.hpfa_sites}
        config = ReferenceConfig(
            mode=ReadMode.CROSS, strength=hpfa_strength, site_weights={name: 1.0 for name in settings.hpfa_sites},
            start_percent=start_percent, end_percent=end_percent, uncond=UncondPolicy.NONE,
        )
        modules = truepose.modules
        attachment = TruePoseAttachment(
            config, settings, modules["hpfa"], modules["caa"] if use_caa else None, modules["pose_encoder"], source,
            selected_masks(source.labels, poses), TargetPose(tuple(poses), skeleton), caa_strength if use_caa else 0.0,
            site_heads, weights_patcher=truepose.patcher,
        )
        patched = model.clone()
        attachment.install(patched)
        return io.NodeOutput(patched)


NODES: tuple[type[io.ComfyNode], ...] = (TruePoseLoaderNode, EncodePoseSourceNode, ApplyTruePoseNode)
