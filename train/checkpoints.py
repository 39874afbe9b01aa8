"""Training checkpoints shared by every trainer: the trained parameters and the optimisation state
only; the frozen base is referenced, never copied.

Layout: ``<checkpoint_dir>/step-<global step, 7 digits>/`` holding

- ``trained.safetensors``: every parameter an optimizer updates (``<model>.<parameter name>``) and
  the buffers of the modules that own them (e.g. normalisation statistics);
- ``optimizers.pt``: each optimizer's and LR scheduler's ``state_dict`` and the EMA shadow weights;
- ``rng-<process>.pt``: Python, NumPy, torch (and CUDA) generator states of each process;
- ``base.json``: what the run stands on: the base files (path, size, a hash of their first and last
  MiB) and a fingerprint of the frozen parameters (count and sum of |w|), checked on resume;
- ``progress.json`` ({"step": global step done}), written last: its presence marks a complete
  checkpoint.

Only the newest ``keep`` checkpoints are kept. A trainer that draws its batches and noise from
(seed, step) resumes exactly. (OutfitGAN's global step counts CCM pre-training steps first, then GAN
steps.) Under DeepSpeed or FSDP the parameters are sharded over processes, so the checkpoint is
accelerate's ``save_state`` (every shard) plus the schedulers' and extras' states in
``optimizers.pt``, ``progress.json`` and ``base.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import DistributedType
from safetensors.torch import load_file, save_file

from ..models.errors import AtelierError

logger = logging.getLogger("atelier.train")

PROGRESS_FILE = "progress.json"
TRAINED_FILE = "trained.safetensors"
OPTIMIZERS_FILE = "optimizers.pt"
BASE_FILE = "base.json"
PREFIX = "step-"
SAMPLED_BYTES = 1 << 20
SHARDED = (DistributedType.DEEPSPEED, DistributedType.FSDP)


class CheckpointStepError(AtelierError, ValueError):
    """The newest checkpoint is past the run's last step, so resuming would train nothing and export
    the old weights; the message names ``--steps``."""


class CheckpointBaseError(AtelierError, RuntimeError):
    """A checkpoint was made on another frozen base than the one this run loaded; the message names
    the file or flag that differs."""


@dataclass
class TrainingState:
    """Everything a checkpoint saves and restores besides the step.

    Args:
        models: trained modules by name (prepared or not; saved unwrapped).
        optimizers: their optimizers by name; a parameter is saved iff one of them updates it.
        schedulers: LR schedulers by name (anything with ``state_dict`` / ``load_state_dict``).
        extras: other state by name (e.g. the EMA), same protocol.
        base_files: the base the run stands on, by flag (``--base`` -> path); files or folders that
            exist are fingerprinted, other values (``tiny``) recorded as they are.
    """

    models: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, object] = field(default_factory=dict)
    extras: dict[str, object] = field(default_factory=dict)
    base_files: dict[str, str | None] = field(default_factory=dict)


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    return sorted(path for path in root.glob(f"{PREFIX}*") if (path / PROGRESS_FILE).is_file())


def _unwrapped(module: torch.nn.Module) -> torch.nn.Module:
    while hasattr(module, "module") and isinstance(module.module, torch.nn.Module):
        module = module.module
    return module


def _optimized_ids(state: TrainingState) -> set[int]:
    return {id(p) for optimizer in state.optimizers.values() for group in optimizer.param_groups for p in group["params"]}


def trained_tensors(state: TrainingState) -> dict[str, torch.Tensor]:
    """The parameters the optimizers update and the persistent buffers of the modules owning them,
    keyed ``<model>.<name>`` (nothing of a module no optimizer touches)."""
    optimized = _optimized_ids(state)
    tensors: dict[str, torch.Tensor] = {}
    for model_name, model in state.models.items():
        for module_name, module in _unwrapped(model).named_modules():
            own = [(name, p) for name, p in module.named_parameters(recurse=False) if id(p) in optimized]
            if not own:
                continue
            prefix = f"{model_name}.{module_name}." if module_name else f"{model_name}."
            for name, parameter in own:
                tensors[prefix + name] = parameter.detach()
            skipped = getattr(module, "_non_persistent_buffers_set", set())
            for name, buffer in module.named_buffers(recurse=False):
                if buffer is not None and name not in skipped:
                    tensors[prefix + name] = buffer.detach()
    return tensors


def frozen_fingerprint(state: TrainingState) -> dict[str, float]:
    """Count and Σ|w| (float64) of every parameter of ``state.models`` no optimizer updates."""
    optimized = _optimized_ids(state)
    count, total = 0, 0.0
    for model in state.models.values():
        for parameter in _unwrapped(model).parameters():
            if id(parameter) not in optimized:
                count += parameter.numel()
                total += float(parameter.detach().double().abs().sum())
    return {"count": count, "abs_sum": total}


def file_fingerprint(path: Path) -> dict[str, object]:
    """Size and SHA-256 of the first and last MiB of each weight file under ``path`` (robust to copies
    between nodes, unlike mtimes; cheap on multi-GB files)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in
                                                 (".safetensors", ".bin", ".pt", ".ckpt", ".json"))
    prints = {}
    for file in files:
        size = file.stat().st_size
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            digest.update(handle.read(SAMPLED_BYTES))
            if size > SAMPLED_BYTES:
                handle.seek(max(size - SAMPLED_BYTES, SAMPLED_BYTES))
                digest.update(handle.read())
        prints[str(file.relative_to(path)) if file != path else file.name] = {"size": size, "sampled_sha256": digest.hexdigest()}
    return prints


def base_record(state: TrainingState) -> dict[str, object]:
    """What ``base.json`` holds: each base flag's value (and file fingerprints) and the frozen fingerprint."""
    files = {}
    for flag, value in state.base_files.items():
        entry: dict[str, object] = {"value": value}
        if value is not None and Path(value).exists():
            entry["path"] = str(Path(value).resolve())
            entry["files"] = file_fingerprint(Path(value))
        files[flag] = entry
    return {"base": files, "frozen": frozen_fingerprint(state)}


def _rng_states() -> dict[str, object]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, object]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _state_dicts(objects: dict[str, object]) -> dict[str, object]:
    return {name: value.state_dict() for name, value in objects.items()}


def save_checkpoint(accelerator, root: Path, step: int, keep: int, state: TrainingState) -> Path:
    """Save the state after global step ``step``; drop all but the newest ``keep`` checkpoints."""
    path = root / f"{PREFIX}{step:07d}"
    path.mkdir(parents=True, exist_ok=True)
    record = base_record(state)
    if accelerator.distributed_type in SHARDED:
        accelerator.save_state(str(path))
        if accelerator.is_main_process:
            torch.save({"schedulers": _state_dicts(state.schedulers), "extras": _state_dicts(state.extras)},
                       path / OPTIMIZERS_FILE)
    else:
        if accelerator.is_main_process:
            tensors = {key: value.cpu().contiguous() for key, value in trained_tensors(state).items()}
            save_file(tensors, str(path / TRAINED_FILE), metadata={"step": str(step)})
            torch.save({"optimizers": _state_dicts(state.optimizers), "schedulers": _state_dicts(state.schedulers),
                        "extras": _state_dicts(state.extras)}, path / OPTIMIZERS_FILE)
        torch.save(_rng_states(), path / f"rng-{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (path / BASE_FILE).write_text(json.dumps(record, indent=1))
        (path / PROGRESS_FILE).write_text(json.dumps({"step": step}))
        for old in checkpoint_dirs(root)[:-keep]:
            shutil.rmtree(old)
        logger.info("checkpoint %s", path)
    accelerator.wait_for_everyone()
    return path


def check_base(saved: dict[str, object], current: dict[str, object], where: Path) -> None:
    """Raise CheckpointBaseError when the frozen parameters or a base file differ from the checkpoint's."""
    for flag, entry in saved.get("base", {}).items():
        now = current["base"].get(flag, {})
        if entry.get("files") != now.get("files") or (not entry.get("files") and entry.get("value") != now.get("value")):
            raise CheckpointBaseError(f"{flag} is {now.get('value')!r} but the checkpoint {where} was trained on "
                                      f"{entry.get('value')!r} (another file or changed contents); pass the same {flag} "
                                      "or start without --resume")
    was, now = saved["frozen"], current["frozen"]
    if was["count"] != now["count"] or abs(was["abs_sum"] - now["abs_sum"]) > 1e-6 * max(abs(was["abs_sum"]), 1.0):
        raise CheckpointBaseError(f"the frozen weights differ from those of the checkpoint {where} "
                                  f"({now['count']} values, sum |w| {now['abs_sum']:.6g}; checkpoint: {was['count']}, "
                                  f"{was['abs_sum']:.6g}); pass the base flags of the run that made it")


def _load_state_dicts(saved: dict[str, dict[str, object]], state: TrainingState, path: Path,
                      groups: tuple[str, ...]) -> None:
    """Restore each named optimizer / scheduler / extra of ``state`` from ``saved``; one the checkpoint
    lacks (e.g. an EMA asked for only now) is an error naming it."""
    for group in groups:
        for name, value in getattr(state, group).items():
            if name not in saved[group]:
                flag = " (--ema-decay)" if name == "ema" else ""
                raise CheckpointBaseError(f"the checkpoint {path} has no '{name}' state{flag}: resume with the "
                                          "flags that made it, or start without --resume")
            value.load_state_dict(saved[group][name])


def load_checkpoint(accelerator, path: Path, state: TrainingState) -> int:
    """Restore ``state`` from the checkpoint ``path``; returns its global step."""
    check_base(json.loads((path / BASE_FILE).read_text()), base_record(state), path)
    if accelerator.distributed_type in SHARDED:
        accelerator.load_state(str(path))
        _load_state_dicts(torch.load(path / OPTIMIZERS_FILE, map_location="cpu", weights_only=False), state, path,
                          ("schedulers", "extras"))
    else:
        saved = load_file(str(path / TRAINED_FILE))
        current = trained_tensors(state)
        if saved.keys() != current.keys():
            missing, extra = sorted(current.keys() - saved.keys()), sorted(saved.keys() - current.keys())
            raise CheckpointBaseError(f"the checkpoint {path} trains other parameters than this run (missing "
                                      f"{missing[:3]}, unexpected {extra[:3]}); resume with the flags that made it")
        with torch.no_grad():
            for key, tensor in current.items():
                tensor.copy_(saved[key])
        _load_state_dicts(torch.load(path / OPTIMIZERS_FILE, map_location="cpu", weights_only=False), state, path,
                          ("optimizers", "schedulers", "extras"))
        rng = path / f"rng-{accelerator.process_index}.pt"
        if rng.is_file():
            _set_rng_states(torch.load(rng, weights_only=False))
    return int(json.loads((path / PROGRESS_FILE).read_text())["step"])


def resume_latest(accelerator, root: Path, state: TrainingState, total: int) -> int:
    """Load the newest checkpoint under ``root``; returns the global step it reached (0 without one).
    A checkpoint past ``total``, the run's last global step, is refused."""
    found = checkpoint_dirs(root)
    if not found:
        logger.info("no checkpoint under %s; starting from step 0", root)
        return 0
    done = int(json.loads((found[-1] / PROGRESS_FILE).read_text())["step"])
    if done > total:
        raise CheckpointStepError(f"--resume found a checkpoint at step {done} in {root}, beyond the run's {total} "
                                  "steps; pass --steps to reach it or more, or another --out")
    step = load_checkpoint(accelerator, found[-1], state)
    logger.info("resumed from %s (step %d)", found[-1], step)
    return step
