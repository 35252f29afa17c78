"""Checkpoints in safetensors: tensors plus JSON metadata, never pickle.

* ``model.safetensors``: the model's ``state_dict`` (normalisation buffers included).
* ``last.safetensors``: the same plus the optimizer's tensors (``optim/...``) and the trainer's
  JSON state (epoch, step, best score, RNG states, optimizer hyper-parameters) in the header,
  in ONE file written atomically, so that weights and trainer state can never disagree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save

from worldmodel.io import atomic_write


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def _check_finite(tensors: dict[str, torch.Tensor], path: Path) -> None:
    for k, v in tensors.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{path}: refusing to save non-finite values in {k!r}")


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    extra: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write weights (+ optimizer tensors, + ``extra`` tensors under ``extra/``) and JSON
    ``meta`` to one safetensors file atomically. Non-finite weights are refused."""
    path = Path(path)
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _check_finite(tensors, path)
    for k, v in (extra or {}).items():
        tensors[f"extra/{k}"] = v.detach().cpu().contiguous()
    header = {"worldmodel": json.dumps(meta, allow_nan=False)}
    if optimizer is not None:
        state = optimizer.state_dict()
        for pid, pstate in state["state"].items():
            for key, value in pstate.items():
                if not torch.is_tensor(value):
                    value = torch.tensor(value)
                tensors[f"optim/{pid}/{key}"] = value.detach().cpu().contiguous()
        header["optimizer"] = json.dumps(state["param_groups"])
    data = save(tensors, metadata=header)
    return atomic_write(path, lambda f: f.write(data))


def read_checkpoint(
    path: str | os.PathLike,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, str]]:
    """``(tensors, meta, raw header)`` of a safetensors checkpoint; a file that is not one
    (a pickle, a truncated file) raises :class:`CheckpointError` without being executed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: not a valid safetensors checkpoint ({err})") from None
    if "worldmodel" not in header:
        raise CheckpointError(f"{path}: safetensors file without worldmodel metadata")
    return tensors, json.loads(header["worldmodel"]), header


def load_model_weights(
    model: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path
) -> None:
    state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    for key in ("obs_low", "obs_high"):  # runs saved before observation bounds existed
        if key not in state and key in model.state_dict():
            state[key] = model.state_dict()[key]
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(
            f"{path}: weights do not fit the model: {' '.join(first[:3])}"
        ) from None


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], header: dict[str, str]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, pid, key = k.split("/", 2)
            state.setdefault(int(pid), {})[key] = v
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(header["optimizer"])})
