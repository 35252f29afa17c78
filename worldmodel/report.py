"""``worldmodel evaluate``: hold trained runs against the real simulator and write a report.

``reports/NAME/`` gets ``report.md`` (settings, held-out accuracy, error vs horizon, trajectory
plot, videos, the commands), ``results.json`` (every number in the report), ``horizon.png``,
``trajectories.png`` and ``video_<model>.gif/.mp4``.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path

from envs.factory import EnvSpec
from envs.tasks import check_env_id
from worldmodel.config import EvaluateConfig
from worldmodel.data import Dataset, load_dataset
from worldmodel.evaluate import (
    CEILING,
    FLOOR,
    HorizonResult,
    ModelPredictor,
    compare_to_simulator,
    heldout_error,
    heldout_split,
)
from worldmodel.io import atomic_write_json, atomic_write_text
from worldmodel.train import load

HORIZONS = (1, 2, 5, 10, 20, 30, 50, 100)
SECTIONS = (
    "## Settings",
    "## Held-out accuracy",
    "## Error vs horizon",
    "## Trajectories",
    "## Video",
    "## Commands",
)


def _fmt(mean_std: tuple[float, float]) -> str:
    m, s = mean_std
    return f"{m:.3g} ± {s:.2g}"


def evaluate_runs(
    runs: Sequence[str | Path], out: str | Path, config: EvaluateConfig | None = None
) -> Path:
    """Evaluate ``runs`` (same env) and write the report into ``out``; returns ``report.md``."""
    config = config or EvaluateConfig()
    config.check()
    if not runs:
        raise ValueError("give at least one run directory")
    out = Path(out)
    start_time = time.perf_counter()
    models = [load(r) for r in runs]
    check_env_id(models[0].env_id)  # refuse an env without a task before any work
    names = []
    for r, m in zip(runs, models):
        name = Path(r).name if Path(r).name not in names else str(r)
        names.append(name)
        if m.env_id != models[0].env_id:
            raise ValueError(
                f"{r} is a model of {m.env_id!r}, {runs[0]} of {models[0].env_id!r}: "
                "compare runs of one env"
            )
    data_path = config.dataset or models[0].run_config["dataset"]["path"]
    if data_path is None:
        raise ValueError(f"{runs[0]} does not record its dataset: pass --dataset")
    dataset: Dataset = load_dataset(data_path)
    if dataset.env_id != models[0].env_id:
        raise ValueError(
            f"{data_path} holds {dataset.env_id!r} episodes, the models are of {models[0].env_id!r}"
        )
    test = heldout_split(models[0], dataset)
    norm = models[0].normalizer

    held = {
        n: heldout_error(
            m,
            test,
            observed=config.observed,
            window=m.run_config["train"]["window"],
            seed=config.seed,
        )
        for n, m in zip(names, models)
    }
    result = compare_to_simulator(
        [ModelPredictor(m, n, seed=config.seed) for n, m in zip(names, models)],
        test,
        norm,
        horizon=config.horizon,
        starts=config.starts,
        context=config.context,
        policy=config.policy,
        seed=config.seed,
    )
    from worldmodel.plots import plot_horizon, plot_trajectories

    plot_horizon(result, out / "horizon.png")
    plot_trajectories(result, out / "trajectories.png")
    videos: dict[str, list[Path]] = {}
    if config.video:
        from worldmodel.render import evaluation_frames, write_video

        for n in names:
            videos[n] = write_video(evaluation_frames(result, n), out / f"video_{n}")
    seconds = time.perf_counter() - start_time
    atomic_write_json(
        out / "results.json", _results(names, held, result, config, data_path, runs, seconds)
    )
    path = out / "report.md"
    atomic_write_text(
        path,
        _markdown(
            names,
            runs,
            held,
            result,
            videos,
            config,
            data_path,
            len(test),
            seconds,
            models,
            dataset,
        ),
    )
    return path


def _results(names, held, result: HorizonResult, config, data_path, runs, seconds) -> dict:
    return {
        "runs": [str(r) for r in runs],
        "dataset": str(data_path),
        "seconds": seconds,
        "settings": {**result.settings, "observed": list(config.observed)},
        "heldout": {n: held[n] for n in names},
        "horizon_mse": {
            k: {"mean": v.mean(0).tolist(), "std": v.std(0).tolist()}
            for k, v in result.errors.items()
        },
        # (horizon, obs_dim): squared error of each observation dimension, mean over start states
        "horizon_mse_per_dim": {k: v.mean(0).tolist() for k, v in result.per_dim.items()},
    }


def _markdown(
    names,
    runs,
    held,
    result: HorizonResult,
    videos,
    config,
    data_path,
    n_test,
    seconds,
    models,
    dataset,
) -> str:
    s = result.settings
    L = [f"# Evaluation report: {', '.join(names)} on {s['env_id']}", ""]
    L += [
        "## Settings",
        "",
        f"- runs: {', '.join(f'`{r}`' for r in runs)}",
        f"- dataset: `{data_path}`, {n_test} held-out test episodes (the first run's split)",
        f"- open loop: {s['starts']} recorded start states, "
        f"{s['context']} observations of context, "
        f"{s['horizon']} steps of `{s['policy']}` actions held for dts drawn from "
        f"`{s['timing']}`, seed {s['seed']}",
        "- errors: squared error averaged over observation dimensions, "
        "in the first run's normalised units",
        f"- wall-clock of this evaluation: {seconds:.1f} s",
        "",
    ]
    L += [
        "## Held-out accuracy",
        "",
        "MSE (normalised units) on the held-out test episodes; `interp` shows a fraction p of each "
        "window and scores all of it, `extrap` shows p of the first half and scores the second "
        "half.",
        "",
        "| model | mode | " + " | ".join(f"p={p:g}" for p in config.observed) + " |",
        "|---|---|" + "---|" * len(config.observed),
    ]
    for n in names:
        for mode in ("interp", "extrap"):
            vals = [r["mse"] for r in held[n] if r["mode"] == mode]
            L.append(f"| {n} | {mode} | " + " | ".join(f"{v:.4g}" for v in vals) + " |")
    hs = [h for h in HORIZONS if h <= s["horizon"]]
    L += [
        "",
        "## Error vs horizon",
        "",
        f"Mean ± std over start states; `{FLOOR}` is the simulator against itself from a state "
        f"1e-6 away, `{CEILING}` holds the last observation.",
        "",
        "| predictor | " + " | ".join(f"h={h}" for h in hs) + " |",
        "|---|" + "---|" * len(hs),
    ]
    for row in result.table(hs):
        L.append(f"| {row['name']} | " + " | ".join(_fmt(row[f"h={h}"]) for h in hs) + " |")
    L += [
        "",
        "![error vs horizon](horizon.png)",
        "",
        "## Trajectories",
        "",
        "Start state 0: real (black), predictions, and the observed context points (dots, t < 0).",
        "",
        "![trajectories](trajectories.png)",
        "",
        "## Video",
        "",
    ]
    if videos:
        for n, (gif, mp4) in videos.items():
            L += [
                f"{n}: real | observed points | imagined ([MP4]({mp4.name}))",
                "",
                f"![{n}]({gif.name})",
                "",
            ]
    else:
        L += ["(not rendered: `--no-video`)", ""]
    L += [
        "## Commands",
        "",
        "The commands that made the data, the models and this report:",
        "",
        "```bash",
    ]
    L += _commands(runs, models, dataset, result, config, data_path)
    L += ["```", ""]
    return "\n".join(L) + "\n"


def _collect_command(spec: EnvSpec, meta: dict, episodes: int, policy: str, data_path) -> str:
    """The ``worldmodel collect`` command of a dataset: its env spec (kwargs, wrappers, time
    limit), policy and seed, as recorded in its metadata."""
    q = shlex.quote
    cmd = (
        f"worldmodel collect --env {spec.env_id} --episodes {episodes} --policy {q(policy)} "
        f"--timing {spec.timing} --seed {meta.get('seed', 0)}"
    )
    noise = (meta.get("policy") or {}).get("noise_std")
    if noise:
        cmd += f" --action-noise {noise:g}"
    if spec.max_episode_steps is not None:
        cmd += f" --max-episode-steps {spec.max_episode_steps}"
    if spec.reset_noise:
        cmd += f" --reset-noise {spec.reset_noise:g}"
    if spec.incline_deg:
        cmd += f" --incline-deg {spec.incline_deg:g}"
    flags = {k: v for k, v in spec.env_kwargs.items() if isinstance(v, (bool, int, float))}
    if flags:  # the flag takes numbers: a bool goes as 0 / 1
        cmd += " --env-kwargs " + " ".join(f"{k} {float(v):g}" for k, v in flags.items())
    cmd += f" --out {q(str(data_path))}"
    rest = {k: v for k, v in spec.env_kwargs.items() if k not in flags}
    if rest:
        cmd += f"  # and env_kwargs {rest} (no flag takes them: set them in CollectConfig)"
    return cmd


def _commands(
    runs, models, dataset: Dataset, result: HorizonResult, config, data_path
) -> list[str]:
    q = shlex.quote
    meta = dataset.metadata
    policy = meta.get("policy", {})
    pol = policy.get("path", policy.get("name", "random"))
    out = [_collect_command(EnvSpec.from_metadata(meta), meta, len(dataset), str(pol), data_path)]
    for r, m in zip(runs, models):
        cfg = m.run_config["train"]
        out.append(
            f"worldmodel train {q(str(data_path))} --model {cfg['model']} --out {q(str(r))} "
            f"--epochs {cfg['epochs']} --steps-per-epoch {cfg['steps_per_epoch']} "
            f"--window {cfg['window']} --batch-size {cfg['batch_size']} --seed {cfg['seed']}"
            f"  # every setting: {r}/config.json"
        )
    s = result.settings
    out.append(
        "worldmodel evaluate "
        + " ".join(q(str(r)) for r in runs)
        + f" --dataset {q(str(data_path))} "
        f"--horizon {s['horizon']} --starts {s['starts']} --context {s['context']} "
        f"--policy {s['policy']} "
        f"--seed {s['seed']}" + ("" if config.video else " --no-video") + " --out REPORT_DIR"
    )
    return out
