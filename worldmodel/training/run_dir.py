"""The run directory's ``config.json``: the settings a run trains with (on resume, its saved ones),
what is recorded beside them, and loading a trained model back from a run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from worldmodel.checkpoint import CheckpointError, load_model_weights, read_checkpoint
from worldmodel.config import TrainConfig, auto_field_dropout
from worldmodel.data import Dataset, check_metadata, field_chunks, library_versions
from worldmodel.models import WorldModel, make_model
from worldmodel.training.device import resolve_device

RUN_FORMAT = 1


def read_run_config(path: Path) -> dict[str, Any]:
    """A run's ``config.json``; a missing or malformed file is named."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such run config") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


# settings a resumed run takes from the new call: the budget and how it runs, not what it learns
RESUME_TAKES = ("epochs", "progress", "tensorboard", "device", "loader_workers", "step_log")


def _flat(config: TrainConfig) -> dict[str, Any]:
    """``config`` as JSON has it, ``net`` fields as ``net.NAME``."""
    d = json.loads(json.dumps(config.to_dict()))
    return {
        **{k: v for k, v in d.items() if k != "net"},
        **{f"net.{k}": v for k, v in d["net"].items()},
    }


def resume_conflicts(config: TrainConfig, saved: TrainConfig) -> list[str]:
    """Settings of ``config`` a resume would silently drop: those set away from their default
    to a value other than the saved run's (outside :data:`RESUME_TAKES`), as ``--flag: new
    (saved: old)``."""
    new, old, default = _flat(config), _flat(saved), _flat(TrainConfig())
    return [
        f"--{k.replace('_', '-')} {new[k]!r} (saved: {old.get(k)!r})"
        for k in new
        if k not in RESUME_TAKES and new[k] != default.get(k) and new[k] != old.get(k)
    ]


def settle_config(
    config: TrainConfig, dataset: Dataset, run_dir: Path, *, resume: bool
) -> TrainConfig:
    """The checked config a run in ``run_dir`` trains with: on ``resume`` the run's saved one with
    ``config``'s :data:`RESUME_TAKES` (its dataset's env must match; another setting of
    ``config`` away from its default and from the saved one is refused by name), else
    ``config`` (``run_dir`` must not hold a run). ``net.max_step="data"`` or ``"env-dt"``
    becomes seconds (:func:`resolve_max_step`), ``net.field_dropout=None`` the env's
    (:func:`~worldmodel.config.auto_field_dropout`)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise NotADirectoryError(f"{run_dir} is a file, not a run directory; choose another --out")
    config_path = run_dir / "config.json"
    if resume:
        if not (run_dir / "last.safetensors").exists():
            raise FileNotFoundError(f"{run_dir}: nothing to resume (no last.safetensors)")
        saved = read_run_config(config_path)
        if saved.get("env_id") != dataset.env_id:
            raise ValueError(
                f"{run_dir} was trained on {saved.get('env_id')!r}, "
                f"the dataset is {dataset.env_id!r}"
            )
        kept = TrainConfig.from_dict(saved["train"])
        given = config
        if config.net.max_step == "env-dt":  # saved as the seconds it resolved to ("data",
            # the default, never conflicts)
            step = resolve_max_step(config.net.max_step, dataset)
            given = replace(config, net=replace(config.net, max_step=step))
        conflicts = resume_conflicts(given, kept)
        if conflicts:
            raise ValueError(
                f"{run_dir}: a resumed run trains with its saved settings, but this call sets "
                + ", ".join(conflicts)
                + "; start a new run (another --out) to change them"
            )
        config = replace(kept, **{k: getattr(config, k) for k in RESUME_TAKES})
    elif config_path.exists():
        raise FileExistsError(
            f"{run_dir} already holds a run; resume it or choose another directory"
        )
    config.check()
    if config.net.field_dropout is None:
        dropout = auto_field_dropout(config.model, dataset.env_id)
        config = replace(config, net=replace(config.net, field_dropout=dropout))
    if config.net.max_step in ("data", "env-dt"):
        step = resolve_max_step(config.net.max_step, dataset)
        config = replace(config, net=replace(config.net, max_step=step))
    return config


def resumed_run_config(run_dir: Path, config: TrainConfig) -> dict[str, Any]:
    """``run_dir``'s ``config.json`` with the settings ``config`` resumes it with (the saved
    ones and the call's :data:`RESUME_TAKES`: a longer ``epochs``, say), so that the file
    states the budget the run was trained to."""
    return read_run_config(run_dir / "config.json") | {"train": config.to_dict()}


def resolve_max_step(setting: str, dataset: Dataset) -> float | None:
    """``net.max_step`` in seconds for ``setting``: ``"data"``, the longest control interval in
    ``dataset`` (streamed, shard by shard); ``"env-dt"``, the env's own control step (None when
    the dataset does not record it)."""
    if setting == "env-dt":
        step = dataset.metadata.get("default_dt")
        return None if step is None else float(step)
    # episodes are validated: times strictly increasing, at least one interval each
    return max(float(dt.max()) for dt in field_chunks(dataset.episodes, "dt"))


def run_config(
    config: TrainConfig, dataset: Dataset, dataset_path: str | Path | None
) -> dict[str, Any]:
    """``config.json`` of a new run: the settings, the env and its spaces, the dataset."""
    meta = dataset.metadata
    return {
        "format_version": RUN_FORMAT,
        "model": config.model,
        "env_id": dataset.env_id,
        "obs_dim": dataset.obs_dim,
        "act_dim": dataset.act_dim,
        "action_low": meta.get("action_low"),
        "action_high": meta.get("action_high"),
        "default_dt": meta.get("default_dt"),
        "train": config.to_dict(),
        "dataset": {
            "path": None if dataset_path is None else str(dataset_path),
            "episodes": len(dataset),
            "metadata": {k: v for k, v in meta.items() if k != "merged_from"},
        },
        "library_versions": library_versions(),
    }


def load(
    run_dir: str | Path,
    *,
    which: Literal["best", "last"] = "best",
    env_id: str | None = None,
    obs_dim: int | None = None,
    device: str = "cpu",
) -> WorldModel:
    """Load a trained model from a run directory, ready to use (eval mode).

    ``env_id`` / ``obs_dim``, when given, must match the run's (a clear error otherwise).
    The model gains ``env_id`` and ``run_config`` attributes. Never unpickles anything.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a run directory (`worldmodel train --out`)")
    path = run_dir / "config.json"
    cfg = read_run_config(path)
    if not isinstance(cfg, dict) or cfg.get("format_version") != RUN_FORMAT:
        version = cfg.get("format_version") if isinstance(cfg, dict) else None
        raise CheckpointError(f"{path}: unknown run format {version!r}")
    missing = [k for k in ("model", "env_id", "obs_dim", "act_dim", "train") if k not in cfg]
    if missing:
        raise CheckpointError(f"{path}: missing {', '.join(missing)}")
    if not isinstance(cfg["train"], dict):
        raise CheckpointError(f"{path}: 'train' must be an object of settings")
    if env_id is not None and env_id != cfg["env_id"]:
        raise CheckpointError(f"{run_dir}: model was trained on {cfg['env_id']!r}, not {env_id!r}")
    if obs_dim is not None and obs_dim != cfg["obs_dim"]:
        raise CheckpointError(
            f"{run_dir}: model observations have {cfg['obs_dim']} dims, not {obs_dim}"
        )
    try:
        train_cfg = TrainConfig.from_dict(cfg["train"])
        train_cfg.net.check()
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: invalid training settings: {err}") from None
    try:  # the env's action bounds and control step, as the dataset's metadata had them
        check_metadata(cfg, int(cfg["obs_dim"]), int(cfg["act_dim"]))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: {err}") from None
    model = make_model(cfg["model"], cfg["obs_dim"], cfg["act_dim"], train_cfg.net)
    path = run_dir / ("model.safetensors" if which == "best" else "last.safetensors")
    tensors, meta, _ = read_checkpoint(path)
    if meta.get("model") != cfg["model"]:
        raise CheckpointError(
            f"{path}: holds a {meta.get('model')!r} model, config.json says {cfg['model']!r}"
        )
    load_model_weights(model, tensors, path)
    model.env_id, model.run_config = cfg["env_id"], cfg
    return model.to(resolve_device(device)).eval()
