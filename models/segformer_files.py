"""Loading a SegFormer clothes parser from a local transformers folder, offline, with typed errors.

A parser folder is what the Hugging Face repositories hold (e.g. mattmdjaga/segformer_b2_clothes,
sayeed99/segformer_b3_clothes): ``config.json`` (``model_type`` "segformer", the
``SegformerForSemanticSegmentation`` architecture, ``id2label``), the weights as
``model.safetensors`` (or a sharded ``model.safetensors.index.json``) or ``pytorch_model.bin``, and
optionally ``preprocessor_config.json``. Checks run cheapest first (files, config, labels) before
any weight is read. transformers loads the weights (``local_files_only=True``), so it also maps the
published key names onto the installed version's module names. A ``pytorch_model.bin`` is first
opened with ``torch.load(weights_only=True)`` here, on the meta device: a pickle holding anything
but tensors is refused before transformers touches it, whatever its version does.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError

from .errors import AtelierError, UnsupportedModelError, WeightFileError
from .parser_labels import ParserLabels, match_label_set
from .segformer_parser import Preprocessing, SegformerParser

logger = logging.getLogger("atelier.models.segformer_files")

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILE = "pytorch_model.bin"
MODEL_TYPE = "segformer"
ARCHITECTURE = "SegformerForSemanticSegmentation"
MIN_TORCH_FOR_PICKLE = "2.6"  # torch.load(weights_only=True) is unsafe below (CVE-2025-32434)


class ParserFolderError(AtelierError, FileNotFoundError):
    """The parser folder, or a file it needs, is not there."""


class NotSegformerError(UnsupportedModelError):
    """The folder holds a model that is not a SegFormer semantic-segmentation model."""


def read_json(path: Path) -> dict:
    """A JSON object file; unreadable or non-object content raises :class:`WeightFileError` naming the file."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightFileError(f"{path} cannot be read as JSON ({error}); download the file again") from error
    if not isinstance(content, dict):
        raise WeightFileError(f"{path} holds a JSON {type(content).__name__}, not an object; download the file again")
    return content


def read_parser_config(folder: Path) -> dict:
    """``config.json`` of a SegFormer semantic-segmentation folder.

    Raises:
        ParserFolderError: the folder or its config.json is missing.
        NotSegformerError: the config is another model type or architecture.
    """
    if not folder.is_dir():
        raise ParserFolderError(f"parser folder {folder} does not exist")
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ParserFolderError(
            f"parser folder {folder} has no {CONFIG_FILE}; it must be a transformers model folder "
            f"(config.json + model.safetensors), e.g. a download of mattmdjaga/segformer_b2_clothes"
        )
    config = read_json(path)
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    if model_type != MODEL_TYPE or (architectures and ARCHITECTURE not in architectures):
        raise NotSegformerError(
            f"parser folder {folder} holds a {model_type!r} model ({', '.join(architectures) or 'no architecture'}), "
            f"not a {ARCHITECTURE}; use a SegFormer clothes parser such as mattmdjaga/segformer_b2_clothes"
        )
    return config


def config_labels(config: dict, folder: Path) -> ParserLabels:
    """The label set of a parser config's ``id2label`` (ATR 18 or LIP 20)."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise WeightFileError(f"{folder / CONFIG_FILE} has no id2label; the parser's classes cannot be known")
    return match_label_set(id2label, source=f"parser folder {folder}")


def check_pickle_weights(path: Path) -> None:
    """Refuse a ``pytorch_model.bin`` unless ``torch.load(weights_only=True)`` reads it as a dict of tensors.

    Reads on the meta device (no tensor data is loaded). Raises :class:`WeightFileError`.
    """
    if torch.__version__ < MIN_TORCH_FOR_PICKLE:  # TorchVersion compares as a version
        raise WeightFileError(
            f"{path} is a pickle, and torch {torch.__version__} cannot read pickles safely (torch.load with "
            f"weights_only=True needs torch >= {MIN_TORCH_FOR_PICKLE}); download model.safetensors instead"
        )
    try:
        state = torch.load(path, map_location="meta", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as error:
        raise WeightFileError(
            f"{path} is not a plain tensor file that torch.load(weights_only=True) accepts ({type(error).__name__}: "
            f"{_first_line(error)}); it was not loaded. Download model.safetensors instead"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise WeightFileError(f"{path} holds a {type(state).__name__}, not a state dict of tensors; download model.safetensors")


def _first_line(error: BaseException) -> str:
    """The first line of an exception's message, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    return text.splitlines()[0] if text else ""


def weight_file(folder: Path) -> Path:
    """The folder's weight file: safetensors when present, else a checked ``pytorch_model.bin``."""
    for name in SAFETENSORS_FILES:
        if (folder / name).is_file():
            return folder / name
    pickle_path = folder / PICKLE_FILE
    if pickle_path.is_file():
        check_pickle_weights(pickle_path)
        return pickle_path
    present = sorted(path.name for path in folder.iterdir())
    raise ParserFolderError(
        f"parser folder {folder} has no weights ({' or '.join(SAFETENSORS_FILES + (PICKLE_FILE,))}); it holds "
        f"{present}. Download the model's model.safetensors into it"
    )


def load_segformer_parser(folder: str | Path, name: str | None = None) -> SegformerParser:
    """Load the parser in ``folder`` offline (``local_files_only=True``), in eval mode on the CPU.

    Raises:
        ParserFolderError, NotSegformerError, ParserLabelsError, WeightFileError: see the checks above;
            missing or mis-shaped weights (a truncated or other model's file) are a WeightFileError.
    """
    from transformers import SegformerForSemanticSegmentation

    folder = Path(folder)
    config = read_parser_config(folder)
    labels = config_labels(config, folder)
    weights = weight_file(folder)
    try:
        model, info = SegformerForSemanticSegmentation.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=weights.name != PICKLE_FILE, output_loading_info=True,
        )
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as error:
        raise WeightFileError(
            f"{weights} could not be loaded as the {ARCHITECTURE} its config.json describes ({type(error).__name__}: "
            f"{_first_line(error)}); the file is truncated or of another model size; download it again"
        ) from error
    missing = sorted(key for key in info.get("missing_keys", ()) if not key.endswith("num_batches_tracked"))
    mismatched = list(info.get("mismatched_keys", ()))
    if missing or mismatched:
        raise WeightFileError(
            f"{weights} does not fit its config.json: {len(missing)} weights missing (e.g. {missing[:3]}), "
            f"{len(mismatched)} of another shape (e.g. {mismatched[:3]}); the file is truncated or of another model"
        )
    preprocessor = folder / PREPROCESSOR_FILE
    preprocessing = Preprocessing.from_processor_config(read_json(preprocessor) if preprocessor.is_file() else {})
    logger.info("loaded parser %s (%s, %d classes) from %s", name or folder.name, labels.label_set.name, len(labels.to_set), weights)
    return SegformerParser(model, labels, preprocessing, name or folder.name).eval()
