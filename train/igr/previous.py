"""Start a stage from an earlier run's exported files (``--resume-from``: the fine stage starts from
the coarse stage): ``igr.safetensors`` for GarmNet and the IP-Adapter, and the denoiser update,
``igr_denoiser_lora.safetensors`` (kohya keys, mapped back onto the peft LoRA) or
``igr_denoiser_unet.safetensors``. The files a user would load are the hand-over, so a fine stage
can also start from a coarse run made elsewhere."""

from __future__ import annotations

from pathlib import Path

from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file

from ...models.errors import AtelierError
from ...models.igr.config import IGRConfig
from ...models.weights import load_weight_file
from ..text2graph.lora_export import DOWN_SUFFIX, UP_SUFFIX, read_metadata
from .steps import DenoiserUpdate, IGRTrainables

WEIGHT_FILE = "igr.safetensors"
DENOISER_LORA_FILE = "igr_denoiser_lora.safetensors"
DENOISER_UNET_FILE = "igr_denoiser_unet.safetensors"
IP_ADAPTER_FILE = "igr_ip_adapter.safetensors"  # the IP path alone, in the standard SD1.5 IP-Adapter key layout


class PreviousRunError(AtelierError, FileNotFoundError):
    """--resume-from names a folder without the expected files, or files of other settings."""


def kohya_name(peft_key: str) -> str:
    """The kohya key that ``save_kohya_lora`` writes for a peft LoRA key."""
    for suffix, name in ((DOWN_SUFFIX, "lora_down"), (UP_SUFFIX, "lora_up")):
        if peft_key.endswith(suffix):
            module = peft_key[: -len(suffix)]
            return "lora_unet_" + module.removeprefix("unet.").replace(".", "_") + f".{name}.weight"
    raise PreviousRunError(f"peft key {peft_key!r} is not a LoRA A/B weight")


def _require(path: Path) -> Path:
    if not path.is_file():
        raise PreviousRunError(f"--resume-from: {str(path)!r} does not exist (export of a coarse run with the same --denoiser)")
    return path


def load_previous(trainables: IGRTrainables, folder: Path, config: IGRConfig, update: DenoiserUpdate) -> None:
    """Copy the earlier run's weights into ``trainables``; errors name the flag whose setting differs."""
    loaded = load_weight_file(str(_require(folder / WEIGHT_FILE)), expected_system="igr", needed_by="--resume-from")
    previous = IGRConfig.from_dict(loaded.config)
    if previous != config:
        raise PreviousRunError(
            f"--resume-from {str(folder)!r} was trained with {previous.to_dict()}, this run asks for {config.to_dict()}; "
            f"use the same --paths, --garmnet-rank/alpha, --ip-tokens and --image-encoder"
        )
    trainables.garmnet.load_state_dict(loaded.modules["garmnet"].state_dict())
    trainables.ip_adapter.load_state_dict(loaded.modules["ip_adapter"].state_dict())
    if update.mode == "full":
        trainables.unet.load_state_dict(load_file(str(_require(folder / DENOISER_UNET_FILE))))
        return
    path = _require(folder / DENOISER_LORA_FILE)
    rank = read_metadata(path).get("ss_network_dim")
    if rank is not None and int(rank) != update.rank:
        raise PreviousRunError(f"--resume-from {str(path)!r} has denoiser LoRA rank {rank}; pass --denoiser-rank {rank}")
    kohya = load_file(str(path))
    own = get_peft_model_state_dict(trainables.unet)
    missing = [kohya_name(key) for key in own if kohya_name(key) not in kohya]
    if missing:
        raise PreviousRunError(f"--resume-from {str(path)!r} lacks LoRA layers {missing[:3]} (other LoRA targets?)")
    set_peft_model_state_dict(trainables.unet, {key: kohya[kohya_name(key)] for key in own})
