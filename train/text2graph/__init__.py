"""Text2Graph training (issue 6): a LoRA fine-tune of SD1.5 on (image, triple-prompt) pairs from the
toy world or H&M, exported in the kohya key format ComfyUI's core LoraLoader loads.

Entry point: ``python -m atelier.train.text2graph --data toyworld --steps 200 --output lora.safetensors``.
"""

from .config import Text2GraphTrainConfig, TrainConfigError
from .lora_export import kohya_unet_lora, save_kohya_lora
from .trainer import TrainResult, train

__all__ = ["Text2GraphTrainConfig", "TrainConfigError", "TrainResult", "kohya_unet_lora", "save_kohya_lora", "train"]
