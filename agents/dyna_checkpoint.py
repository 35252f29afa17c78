"""Resumable Dyna runs: the agent, both replay buffers, the real episodes and the loop's state.

Layout under ``out/checkpoint/``: one ``step_NNNNNNN/`` directory per checkpoint holding

* ``agent.zip``: stable-baselines3's own save (weights and optimizers as ``.pth`` entries; read
  back with ``set_parameters``/``load_from_zip_file``, i.e. ``torch.load(weights_only=True)``,
  never unpickling the zip's cloudpickled ``data``);
* ``buffer.npz``: the filled part of the real replay buffer and the imagined ring;
* ``episodes.npz``: the finished real episodes (a :class:`worldmodel.data.Dataset`), which the
  model refits train on;
* ``state.json``: settings, step counters, learning curve, refit count, RNG state, the last
  model refit's directory, wall-clock so far;

and ``latest.json`` naming the newest complete directory, written atomically after it, so an
interrupted save leaves the previous checkpoint in force. A resumed run starts a new real
episode (the one in progress is lost from the refit data, its transitions are kept in the
buffer) and is not bit-identical to an uninterrupted one (SB3's global RNG streams restart).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file

from agents._sb3 import REPLAY_BUFFER_ARRAYS, counters, set_counters
from agents.replay import IMAGINED_ARRAYS
from worldmodel.config import DynaConfig
from worldmodel.data import Dataset
from worldmodel.io import atomic_write, atomic_write_json

# settings that may change on resume (a longer budget, a different evaluation cadence)
RESUMABLE_CHANGES = {"steps", "out", "eval_every", "eval_episodes", "keep_agents"}
_REAL = REPLAY_BUFFER_ARRAYS


def config_dict(cfg: DynaConfig) -> dict[str, Any]:
    """``cfg`` as JSON has it (paths as strings, tuples as lists), so that a saved config
    compares equal to the one it was made from."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


# settings added after runs were made whose older code did what another value does now (not
# the new default): a saved config without one counts at this value
LEGACY_VALUES = {
    "branch_starts": "episodes",
    "refit_bounds": "first",
    # the refits and branches of the runs of 2026-11-26, before these were settings
    "refit_batch": 32,
    "refit_lr": 1e-3,
    "refit_mode": "both",
    "rollout_length_max": None,
}
# settings that change nothing in a model-free run (use_model False)
MODEL_ONLY = {
    "model",
    "refit_epochs",
    "refit_batch",
    "refit_lr",
    "refit_mode",
    "refit_window_starts",
    "rollout_length",
    "rollout_length_max",
    "branch_starts",
    "refit_bounds",
}


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A saved or current :func:`config_dict` as runs compare: a setting it lacks (added since)
    at :data:`LEGACY_VALUES`'s value, else at ``DynaConfig``'s default; the model-only
    settings dropped when it runs without a model."""
    out = {**config_dict(DynaConfig()), **LEGACY_VALUES, **config}
    if not out["use_model"]:
        out = {k: v for k, v in out.items() if k not in MODEL_ONLY}
    return out


def save_dyna_checkpoint(
    out: Path, agent: OffPolicyAlgorithm, state: dict[str, Any], episodes: Dataset
) -> Path:
    """Write a checkpoint of ``agent`` at ``agent.num_timesteps`` real steps; returns its dir."""
    root = out / "checkpoint"
    step_dir = root / f"step_{agent.num_timesteps:07d}"
    if step_dir.exists():
        shutil.rmtree(step_dir)
    step_dir.mkdir(parents=True)
    agent.save(step_dir / "agent.zip")
    buf = agent.replay_buffer
    n = buf.buffer_size if buf.full else buf.pos
    arrays = {k: getattr(buf, k)[:n] for k in _REAL}
    arrays |= {"pos": np.array(buf.pos), "full": np.array(buf.full)}
    if hasattr(buf, "im_obs"):
        arrays |= {k: getattr(buf, k)[: buf.im_size] for k in IMAGINED_ARRAYS}
        arrays |= {"im_pos": np.array(buf.im_pos), "im_size": np.array(buf.im_size)}
        arrays |= {"im_capacity": np.array(buf.imagined_capacity)}  # it may have grown
    atomic_write(step_dir / "buffer.npz", lambda f: np.savez(f, **arrays))
    if episodes.episodes:
        episodes.save(step_dir / "episodes.npz")
    meta = {
        **state,
        "num_timesteps": agent.num_timesteps,
        **counters(agent),
    }
    atomic_write_json(step_dir / "state.json", meta)
    atomic_write_json(root / "latest.json", {"dir": step_dir.name})
    for old in root.glob("step_*"):
        if old != step_dir and old.is_dir():
            shutil.rmtree(old)
    return step_dir


def latest_checkpoint(out: Path) -> Path | None:
    pointer = out / "checkpoint" / "latest.json"
    if not pointer.exists():
        return None
    step_dir = out / "checkpoint" / json.loads(pointer.read_text())["dir"]
    if not (step_dir / "state.json").exists():
        raise ValueError(f"{pointer}: names {step_dir.name}, which is incomplete or missing")
    return step_dir


def load_dyna_checkpoint(
    step_dir: Path, agent: OffPolicyAlgorithm, cfg: DynaConfig
) -> tuple[dict[str, Any], list]:
    """Restore ``agent`` (weights, optimizers, entropy coefficient, counters, buffers) from
    ``step_dir``; returns the saved loop state and the real episodes. Raises ``ValueError``
    when the checkpoint was made with other settings."""
    state = json.loads((step_dir / "state.json").read_text())
    # a setting added since the checkpoint was made counts at what the code that made it did
    saved, now = comparable(state["config"]), comparable(config_dict(cfg))
    differ = sorted(
        k
        for k in saved.keys() | now.keys()
        if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k)
    )
    if differ:
        raise ValueError(
            f"{step_dir}: checkpoint made with other settings ("
            + ", ".join(f"{k}: {saved.get(k)!r} there, {now.get(k)!r} now" for k in differ)
            + "); use another --out or the same settings"
        )
    path = step_dir / "agent.zip"
    agent.set_parameters(str(path), exact_match=True, device="cpu")
    _, _, variables = load_from_zip_file(str(path), device="cpu", load_data=False)
    if "log_ent_coef" in variables:  # ent_coef="auto"
        with torch.no_grad():
            agent.log_ent_coef.copy_(variables["log_ent_coef"])
    agent.num_timesteps = state["num_timesteps"]
    set_counters(agent, state["n_updates"], state["episode_num"])
    buf = agent.replay_buffer
    with np.load(step_dir / "buffer.npz", allow_pickle=False) as z:
        for k in _REAL:
            getattr(buf, k)[: len(z[k])] = z[k]
        buf.pos, buf.full = int(z["pos"]), bool(z["full"])
        if "im_obs" in z:
            if "im_capacity" in z:  # absent before the ring could grow: the configured one
                buf.grow_imagined(int(z["im_capacity"]))
            for k in IMAGINED_ARRAYS:
                getattr(buf, k)[: len(z[k])] = z[k]
            buf.im_pos, buf.im_size = int(z["im_pos"]), int(z["im_size"])
    episodes_file = step_dir / "episodes.npz"
    episodes = Dataset.load(episodes_file).episodes if episodes_file.exists() else []
    return state, episodes
