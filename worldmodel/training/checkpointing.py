"""What a run's checkpoints hold besides the weights: the trainer state and every RNG state.

``last.safetensors`` carries the optimiser and the numpy, torch (and CUDA) RNG states, so a resumed
run draws exactly what the uninterrupted one would; ``model.safetensors`` the weights alone.
The file format itself is :mod:`worldmodel.checkpoint`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldmodel.checkpoint import load_model_weights, load_optimizer_state, read_checkpoint
from worldmodel.training.state import TrainState


def checkpoint_meta(model_name: str, state: TrainState, rng: np.random.Generator) -> dict[str, Any]:
    """The JSON header of a checkpoint: the model's name, the trainer state, the numpy RNG."""
    return {
        "model": model_name,
        "epoch": state["epoch"],
        "step": state["step"],
        "state": state,
        "numpy_rng": rng.bit_generator.state,
    }


def torch_rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """torch's CPU RNG state, and the device's when it is a GPU (latent samples are drawn there)."""
    extra = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        extra["cuda_rng"] = torch.cuda.get_rng_state(device)
    return extra


def seed_rank_stream(seed: int, rank: int) -> None:
    """Give process ``rank`` (> 0) of a distributed run its own torch stream, from ``seed``
    (the latent models' samples for its windows; rank 0 keeps the one-process stream)."""
    torch.manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))


def rank_rng_extras(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Checkpoint extras of every process's :func:`torch_rng_state` (in rank order): rank 0's
    under their own names (those of a one-process run), rank ``r``'s with ``_rank{r}`` added."""
    extras = dict(states[0])
    for rank, state in enumerate(states[1:], start=1):
        extras.update({f"{k}_rank{rank}": v for k, v in state.items()})
    return extras


def restore_last(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    device: torch.device,
    rank: int = 0,
    ema: torch.optim.swa_utils.AveragedModel | None = None,
) -> TrainState:
    """Load weights, optimiser and RNG states (numpy's into ``rng``, torch's globally: process
    ``rank``'s, or when the run had fewer processes a stream seeded from the step and the rank)
    and the weight average into ``ema`` (saved by :func:`ema_extras`; the setting is not
    resumable, so a run has one exactly when it was saved with one) from ``path`` (a
    ``last.safetensors``); returns the saved trainer state."""
    tensors, meta, header = read_checkpoint(path)
    load_model_weights(model, tensors, path)
    if ema is not None:
        key = "extra/" + EMA_PREFIX
        ema.load_state_dict({k[len(key) :]: v for k, v in tensors.items() if k.startswith(key)})
    load_optimizer_state(optimizer, tensors, header)
    state: TrainState = meta["state"]
    rng.bit_generator.state = meta["numpy_rng"]
    tail = f"_rank{rank}" if rank else ""
    if rank and f"extra/torch_rng{tail}" not in tensors:
        seed_rank_stream(state["step"], rank)
    else:
        torch.set_rng_state(tensors[f"extra/torch_rng{tail}"])
    if device.type == "cuda" and f"extra/cuda_rng{tail}" in tensors:
        torch.cuda.set_rng_state(tensors[f"extra/cuda_rng{tail}"], device)
    return state


EMA_PREFIX = "ema."


def ema_extras(ema: torch.optim.swa_utils.AveragedModel | None) -> dict[str, torch.Tensor]:
    """Checkpoint extras holding the weight average (its weights and count), if any."""
    if ema is None:
        return {}
    return {EMA_PREFIX + k: v for k, v in ema.state_dict().items()}


def last_good(run_dir: Path, best_epoch: int) -> str:
    """Where a failed run's best weights are, for its error message."""
    best = run_dir / "model.safetensors"
    if best.exists():
        return f"the last good checkpoint is {best} (epoch {best_epoch})"
    return "no checkpoint was saved"
