"""World models on their own job: open-loop error against the real simulator vs horizon.

    python benchmarks/world_models.py --env Hopper-v5 [--regime irregular] [--seeds 0,1,2]
        [--models latent-ode,mlp-ensemble,mlp-delta] [--episodes 400] [--out runs/world_models]
        [--data random|medium|expert|mix] [--policy-episodes 100] [--seed-average]

For one env and one timing regime: collect random-policy episodes (``worldmodel collect``'s
code, seed 0), train every model on them at the same budget (``--epochs`` x ``--steps``
batches of ``--batch`` windows) for each training seed, then roll every model out open loop
from held-out recorded states (the test split) under random actions, next to the real
simulator, for ``--horizon`` steps, at the training timing and at control intervals never
seen in training (``irregular`` trains on 3-5 physics substeps per action and tests on 3-5,
1-2 and 7-9). Errors are in the models' normalised units (mean over starts and dimensions);
the floor is the simulator itself from 1e-6 away, the ceiling holds the last observation.
Also scored: the reward and termination the env's task computes from the predicted
observations, against those of the real ones (what an agent in imagination sees), and the
same errors over only the starts whose real episode still runs at each horizon (the step that
ends it counts; rows in ``world_models_alive.csv`` with the share of starts still running,
``alive{h}``): the simulator is rolled on past a fall that ends the real episode, into states
an agent never imagines, since an imagined episode ends there too.

``--data`` picks whose states the models learn and start from: ``random`` (the default), the
``medium`` or ``expert`` SAC policy of ``benchmarks/policies/ENV/`` (made once by
``benchmarks/policies.py``; episodes with 10 % action noise, up to the env's 1,000-step limit),
or ``mix`` (``--policy-episodes`` of each of the three). Its rows carry the regime
``irregular-mix`` etc. The test actions stay random: from the states a controller visits, can
the model follow any action an agent or planner might try? On policy data one more test,
``policy actions``, replays what the data's policies did next (the recorded actions at the
recorded intervals, from starts with ``--horizon`` recorded steps after them, so only episodes
of at least ``--context`` + ``--horizon`` observations take part): the model along the trajectories
it will be asked to imagine in control.

``--seed-average`` also scores each model's seeds averaged (rows ``MODEL-avgN``: an ensemble
of N independently trained runs, the mean of their predictions).

Resumable: a finished run (``model.safetensors`` with all its epochs) is reused, an
interrupted one resumed. Writes ``benchmarks/results/world_models.csv`` (one row per env,
regime, test timing, model and seed; appended), ``world_models_alive.csv`` (the same rows
scored while the real episode runs), a ``_summary.csv`` of each (mean and std over seeds)
and ``world_models_<env>_<regime>.png``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
from _results import append_rows

RESULTS = Path(__file__).parent / "results"
HORIZONS = (1, 2, 5, 10, 20, 30, 40, 50)
# regime -> (training timing, {test name: test timing})
REGIMES: dict[str, tuple[str, dict[str, str]]] = {
    "fixed": ("fixed", {"fixed": "fixed"}),
    "irregular": (
        "uniform:3-5",
        {
            "3-5 (trained)": "uniform:3-5",
            "1-2 (unseen)": "uniform:1-2",
            "7-9 (unseen)": "uniform:7-9",
        },
    ),
}
FLOOR, CEILING = "simulator (floor)", "hold last obs (ceiling)"
# the per-seed rows (each with a _summary.csv over seeds): all starts; only those still running
RESULT_FILES = ("world_models", "world_models_alive")
POLICY_TEST = "policy actions"  # policy data only: the recorded actions and dts from each start


POLICIES = Path(__file__).parent / "policies"  # made by benchmarks/policies.py
DATA = ("random", "medium", "expert", "mix")
POLICY_NOISE = 0.1  # Gaussian action noise of policy episodes (fraction of the half-range)


def dataset_path(out: Path, env: str, regime: str, episodes: int, policy: str = "random") -> Path:
    """The benchmark's data file for one policy (collected on first use, seed 0): ``random``
    episodes, or those of ``benchmarks/policies/ENV/{medium,expert}.zip`` with
    ``POLICY_NOISE`` action noise."""
    from worldmodel.collect import CollectConfig, collect

    path = out / env / regime / f"{policy}_{episodes}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        timing = REGIMES[regime][0]
        source = {"policy": "random"}
        if policy != "random":
            zip_path = POLICIES / env / f"{policy}.zip"
            if not zip_path.exists():
                raise FileNotFoundError(
                    f"{zip_path}: no {policy} policy; make it with "
                    f"python benchmarks/policies.py --env {env}"
                )
            source = {"policy": str(zip_path), "action_noise": POLICY_NOISE}
        print(f"collecting {episodes} {policy} {env} episodes, timing {timing}", flush=True)
        collect(
            CollectConfig(
                env=env,
                episodes=episodes,
                timing=timing,
                seed=0,
                workers=1,
                progress=False,
                **source,
            )
        ).save(path)
    return path


def benchmark_data(args: argparse.Namespace) -> tuple[Path, str]:
    """``(dataset file, regime label)`` for ``--data``: ``random`` (``--episodes``), ``medium``
    or ``expert`` (``--policy-episodes``), or ``mix`` (``--policy-episodes`` of each of the
    three, merged: the held-out starts come from all three alike)."""
    from worldmodel.data import Dataset, load_dataset

    if args.data == "random":
        return dataset_path(args.out, args.env, args.regime, args.episodes), args.regime
    label, n = f"{args.regime}-{args.data}", args.policy_episodes
    if args.data != "mix":
        return dataset_path(args.out, args.env, args.regime, n, args.data), label
    path = args.out / args.env / args.regime / f"mix_{n}.npz"
    if not path.exists():
        parts = [dataset_path(args.out, args.env, args.regime, n, q) for q in DATA[:3]]
        Dataset.merge([load_dataset(p) for p in parts]).save(path)
    return path, label


def train_run(data: Path, run: Path, model: str, seed: int, args: argparse.Namespace) -> None:
    """Train (or resume, or reuse) one run."""
    from worldmodel.config import TrainConfig
    from worldmodel.data import load_dataset
    from worldmodel.train import Trainer

    last = run / "last.safetensors"
    cfg = TrainConfig(
        model=model,
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        seed=seed,
        progress=False,
        tensorboard=False,
        patience=0,
    )
    if args.batch is not None:
        cfg.batch_size = args.batch
    for on_net, key, value in args.overrides:
        setattr(cfg.net if on_net else cfg, key, value)
    saved = run / "config.json"
    if saved.exists():  # a run of these names made with other windows is another experiment
        old = json.loads(saved.read_text())["train"]
        for key in ("window", "batch_size"):
            if old[key] != getattr(cfg, key):
                raise SystemExit(
                    f"{run} was trained with {key}={old[key]}, not {getattr(cfg, key)}: "
                    "use another --out or --tag"
                )
    if last.exists():
        from worldmodel.checkpoint import read_checkpoint

        _, meta, _ = read_checkpoint(last)
        if meta["epoch"] >= args.epochs:
            return
    print(f"training {run}", flush=True)
    Trainer(cfg, load_dataset(data), run, resume=last.exists(), dataset_path=data).fit()


def parse_sets(sets: list[str]) -> list[tuple[bool, str, object]]:
    """``--set`` overrides -> (whether on ``TrainConfig.net``, field, value). A missing ``=``
    or a name that is no field stops the run with its name (setattr would add it, unread)."""
    from worldmodel.config import ModelConfig, TrainConfig

    out = []
    for kv in sets:
        key, eq, value = kv.partition("=")
        on_net = key.startswith("net.")
        name = key.removeprefix("net.")
        cls = ModelConfig if on_net else TrainConfig
        if not eq:
            raise SystemExit(f"--set {kv!r}: expected KEY=VALUE")
        if name not in {f.name for f in fields(cls)}:
            raise SystemExit(
                f"--set {kv!r}: KEY is a TrainConfig field, or net. and a ModelConfig field; "
                f"{cls.__name__} has no field {name!r}"
            )
        out.append((on_net, name, parse_value(value)))
    return out


def parse_value(text: str) -> object:
    """A ``--set`` value: true/false/none (any case), a JSON number or list, else the string."""
    special = {"true": True, "false": False, "none": None, "null": None}
    if text.lower() in special:
        return special[text.lower()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _task_steps(env: str, contexts, actions, dts, obs: np.ndarray):
    """The task's ``(reward, terminated)``, each ``(starts, steps)``, of predicted or real
    observations ``obs (starts, steps, obs_dim)`` after the contexts' last ones."""
    from envs.tasks import get_task

    task = get_task(env)
    last = np.stack([c.obs[-1] for c in contexts])[:, None]
    n = obs.shape[1]
    a, d = actions[:, :n], dts[:, :n]
    prev = np.concatenate([last, obs[:, :-1]], 1)
    r, _ = task.reward(prev, a, obs, d)
    return r, task.terminated(prev, a, obs, d)


def task_scores(env: str, contexts, actions, dts, pred, real_steps, horizon: int) -> dict:
    """Reward squared error and termination disagreement over the first ``horizon`` steps;
    ``real_steps``: :func:`_task_steps` of the real observations (computed once per test)."""
    rp, tp = _task_steps(env, contexts, actions, dts, pred[:, :horizon])
    rr, tr = (x[:, :horizon] for x in real_steps)
    return {"reward_mse": float(((rp - rr) ** 2).mean()), "term_disagree": float((tp != tr).mean())}


def real_alive(env: str, contexts, actions, dts, real: np.ndarray) -> np.ndarray:
    """``(starts, horizon)`` bool: whether step ``h`` is still part of the real episode, i.e.
    the real env has not terminated at any step before it (the step that terminates counts:
    an agent sees that transition, and none after it)."""
    return still_running(_task_steps(env, contexts, actions, dts, real)[1])


def still_running(term: np.ndarray) -> np.ndarray:
    """:func:`real_alive` from the real steps' terminations ``term (starts, horizon)``."""
    before = np.concatenate([np.zeros_like(term[:, :1]), term[:, :-1]], 1)
    return ~np.logical_or.accumulate(before, axis=1)


def alive_scores(err: np.ndarray, alive: np.ndarray, horizons) -> dict[str, float]:
    """Per horizon ``h``, the mean of ``err (starts, horizon)`` at ``h`` over the starts whose
    real episode still runs there (``h{h}``; NaN when none does) and their share
    (``alive{h}``)."""
    out = {}
    for h in horizons:
        keep = alive[:, h - 1]
        out[f"h{h}"] = float(err[keep, h - 1].mean()) if keep.any() else float("nan")
        out[f"alive{h}"] = float(keep.mean())
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="Hopper-v5")
    ap.add_argument("--regime", default="irregular", choices=sorted(REGIMES))
    ap.add_argument("--models", default="latent-ode,mlp-ensemble,mlp-delta")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--episodes", type=int, default=400, help="random-policy episodes")
    ap.add_argument(
        "--data",
        default="random",
        choices=DATA,
        help="whose episodes: random, a SAC policy's (medium, expert), or the three merged",
    )
    ap.add_argument("--policy-episodes", type=int, default=100, help="episodes per SAC policy")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--steps", type=int, default=100, help="batches per epoch")
    ap.add_argument("--batch", type=int, help="windows per batch (default: worldmodel train's)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        help="override a TrainConfig field (net.X for the model), e.g. net.latent_dim=32",
    )
    ap.add_argument("--tag", default="", help="suffix of the run dirs and model names (ablations)")
    ap.add_argument("--horizon", type=int, default=50)
    ap.add_argument("--starts", type=int, default=128)
    ap.add_argument("--context", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/world_models"))
    ap.add_argument("--results", type=Path, default=RESULTS, help="where the CSVs and plots go")
    ap.add_argument("--no-csv", action="store_true", help="print only")
    ap.add_argument(
        "--seed-average",
        action="store_true",
        help="also score each model's seeds averaged (an ensemble of independent runs)",
    )
    ap.add_argument(
        "--summary-only",
        action="store_true",
        help="rewrite world_models_summary.csv from world_models.csv and stop",
    )
    args = ap.parse_args(argv)
    args.overrides = parse_sets(args.set)  # a bad one stops before any data or training
    if args.summary_only:
        for name in RESULT_FILES:
            if (args.results / f"{name}.csv").exists():
                summarise(args.results / f"{name}.csv", args.results / f"{name}_summary.csv")
        print(markdown(args.results / "world_models_summary.csv"))
        return
    args.results.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)

    from worldmodel.data import load_dataset
    from worldmodel.evaluate import CEILING as CEIL
    from worldmodel.evaluate import FLOOR as FLR
    from worldmodel.evaluate import (
        MeanPredictor,
        ModelPredictor,
        compare_to_simulator,
        heldout_split,
    )
    from worldmodel.metrics import trained_seconds
    from worldmodel.train import load

    models = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    data, regime = benchmark_data(args)
    runs = {}
    for m in models:
        for s in seeds:
            run = args.out / args.env / regime / f"{m}{args.tag}-s{s}"
            train_run(data, run, m, s, args)
            runs[m, s] = run
    dataset = load_dataset(data)
    first = load(next(iter(runs.values())))
    test = heldout_split(first, dataset)
    predictors, info = [], {}
    for (m, s), run in runs.items():
        model = load(run)
        name = f"{m}{args.tag}/s{s}"
        predictors.append(ModelPredictor(model, name))
        cfg = json.loads((run / "config.json").read_text())["train"]
        info[name] = {
            "model": m + args.tag,
            "seed": s,
            "train_s": trained_seconds(run),
            "epochs": cfg["epochs"],
            "steps": cfg["epochs"] * (cfg["steps_per_epoch"] or 0),
            "settings": json.dumps(
                {
                    "net": cfg["net"],
                    "batch_size": cfg["batch_size"],
                    "window": cfg["window"],
                    "mode": cfg["mode"],
                }
            ),
        }
    if args.seed_average and len(seeds) > 1:
        for m in models:
            members = [p for p in predictors if info[p.name]["model"] == m + args.tag]
            name = f"{m}{args.tag}-avg{len(members)}"
            predictors.append(MeanPredictor(members, name))
            info[name] = {
                **info[members[0].name],
                "model": name,
                "seed": "",
                "train_s": sum(info[p.name]["train_s"] for p in members),
            }
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tests = dict(REGIMES[args.regime][1])
    if args.data != "random":  # also along the policy's own actions and intervals
        tests[POLICY_TEST] = "recorded"
    fig, axes = plt.subplots(1, len(tests), figsize=(5.5 * len(tests), 4), squeeze=False)
    rows, alive_rows = [], []
    hs = [h for h in HORIZONS if h <= args.horizon]
    for ax, (test_name, timing) in zip(axes[0], tests.items()):
        res = compare_to_simulator(
            predictors,
            test,
            first.normalizer,
            horizon=args.horizon,
            starts=args.starts,
            context=args.context,
            policy="recorded" if timing == "recorded" else "random",
            timing=None if timing == "recorded" else timing,
            seed=0,
        )
        contexts = [st.context for st in res.starts]
        real_steps = _task_steps(args.env, contexts, res.actions, res.dts, res.real)
        alive = still_running(real_steps[1])
        for name, err in res.errors.items():
            meta = info.get(name) or {
                "model": {FLR: FLOOR, CEIL: CEILING}[name],
                "seed": "",
                "train_s": 0.0,
                "epochs": 0,
                "steps": 0,
                "settings": "",
            }
            scores = task_scores(
                args.env, contexts, res.actions, res.dts, res.predictions[name], real_steps, 10
            )
            rows.append(
                {
                    "env": args.env,
                    "regime": regime,
                    "train_timing": REGIMES[args.regime][0],
                    "test": test_name,
                    "test_timing": timing,
                    "episodes": len(dataset.episodes),
                    "starts": args.starts,
                    **meta,
                    **{f"h{h}": float(err[:, h - 1].mean()) for h in hs},
                    "reward_mse_10": scores["reward_mse"],
                    "term_disagree_10": scores["term_disagree"],
                }
            )
            alive_rows.append(
                {k: rows[-1][k] for k in ("env", "regime", "test", "model", "seed")}
                | alive_scores(err, alive, hs)
            )
        plot_curves(ax, res, info, args, test_name)
    print_table(rows, args, regime)
    print_table(alive_rows, args, regime, ALIVE_TITLE)
    if not args.no_csv:
        fig.tight_layout()
        fig.savefig(args.results / f"world_models_{args.env}_{regime}{args.tag}.png", dpi=80)
        for name, rs in zip(RESULT_FILES, (rows, alive_rows), strict=True):
            append_rows(args.results / f"{name}.csv", list(rs[0]), [r.values() for r in rs])
            summarise(args.results / f"{name}.csv", args.results / f"{name}_summary.csv")


def summarise(path: Path, out: Path) -> None:
    """Mean and std over seeds of every figure, from the latest row of each (env, regime,
    test, model, seed) in ``path``: one row per (env, regime, test, model) in ``out``."""
    with path.open(newline="") as f:
        latest = {
            (r["env"], r["regime"], r["test"], r["model"], r["seed"]): r for r in csv.DictReader(f)
        }
    groups: dict[tuple[str, ...], list[dict]] = {}
    for key, r in latest.items():
        groups.setdefault(key[:4], []).append(r)
    header = list(next(iter(latest.values())))
    keys = [k for k in header if re.fullmatch(r"(h|alive)\d+", k)]
    keys += [k for k in ("reward_mse_10", "term_disagree_10", "train_s") if k in header]
    rows = []
    for (env, regime, test, model), rs in groups.items():
        row = {
            "env": env,
            "regime": regime,
            "test": test,
            "model": model,
            "seeds": " ".join(r["seed"] for r in rs) or "-",
        }
        for k in keys:
            v = np.array([float(r[k]) for r in rs])  # NaN (no start alive) stays NaN
            row[k], row[k + "_std"] = f"{v.mean():.4g}", f"{v.std():.2g}"
        rows.append(row)
    from worldmodel.io import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out, buf.getvalue())
    print(f"wrote {out}")


def summary(rows: list[dict], key: str) -> dict[tuple[str, str], tuple[float, float, int]]:
    """(test, model) -> mean, std over seeds, count."""
    out: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if key in r:
            out.setdefault((r["test"], r["model"]), []).append(r[key])
    return {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in out.items()}


def markdown(path: Path, horizons: tuple[int, ...] = (1, 5, 10, 30, 50)) -> str:
    """The summary as markdown tables (one per env and regime), as the README shows them, at
    those of ``horizons`` the summary has (a run with a shorter ``--horizon`` has fewer)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    horizons = tuple(h for h in horizons if f"h{h}" in rows[0])
    out = []
    for env, regime in dict.fromkeys((r["env"], r["regime"]) for r in rows):
        out.append(f"\n{env}, {regime}:\n")
        out.append(
            "| test dt | model (seeds) | " + " | ".join(f"h={h}" for h in horizons) + " | train s |"
        )
        out.append("|---|---|" + "---|" * (len(horizons) + 1))
        for r in rows:
            if (r["env"], r["regime"]) != (env, regime):
                continue
            n = len(r["seeds"].split()) if r["seeds"] != "-" else 0
            name = f"{r['model']} ({n})" if n else r["model"]
            cells = [r[f"h{h}"] + (f" ({r[f'h{h}_std']})" if n > 1 else "") for h in horizons]
            out.append(
                f"| {r['test']} | {name} | " + " | ".join(cells) + f" | {float(r['train_s']):.0f} |"
            )
    return "\n".join(out)


TITLE = "open-loop MSE (normalised)"
ALIVE_TITLE = "the same MSE over the starts whose real episode still runs at h"
# printed after the horizons when the rows have them: column -> (label, width, format)
EXTRA = {
    "reward_mse_10": ("rew mse<=10", 14, ".4g"),
    "term_disagree_10": ("term<=10", 10, ".3f"),
    "train_s": ("train s", 9, ".0f"),
}


def print_table(rows: list[dict], args: argparse.Namespace, regime: str, title=TITLE) -> None:
    """Mean (std) over seeds per test and model: the horizons' columns, then those of
    ``EXTRA`` the rows have; rows with ``alive{h}`` columns get the share of starts alive."""
    hs = [h for h in HORIZONS if h <= args.horizon]
    stats = {h: summary(rows, f"h{h}") for h in hs}
    extra = {k: summary(rows, k) for k in EXTRA if k in rows[0]}
    print(
        f"\n{args.env}, {regime}: {title}, mean (std) over seeds, "
        f"{args.starts} held-out starts, random actions (policy actions: the recorded ones)"
    )
    for test in dict.fromkeys(r["test"] for r in rows):
        print(f"\n test timing {test}")
        first = next(r for r in rows if r["test"] == test)
        if "alive1" in first:
            shares = "".join(f"{first[f'alive{h}']:>16.0%}" for h in hs)
            print(f"  {'real episodes running':<26}{shares}")
        print(
            f"  {'model':<26}"
            + "".join(f"{'h=' + str(h):>16}" for h in hs)
            + "".join(f"{EXTRA[k][0]:>{EXTRA[k][1]}}" for k in extra)
        )
        for model in dict.fromkeys(r["model"] for r in rows if r["test"] == test):
            cells = []
            for h in hs:
                m, s, n = stats[h][test, model]
                cells.append(f"{m:.3g} ({s:.2g})" if n > 1 else f"{m:.3g}")
            print(
                f"  {model:<26}"
                + "".join(f"{c:>16}" for c in cells)
                + "".join(f"{extra[k][test, model][0]:>{EXTRA[k][1]}{EXTRA[k][2]}}" for k in extra)
            )


def plot_curves(ax, res, info: dict, args: argparse.Namespace, test_name: str) -> None:
    """Error vs horizon of every model (mean over seeds, min-max band) on ``ax``."""
    h = np.arange(1, args.horizon + 1)
    groups: dict[str, list[np.ndarray]] = {}
    for name, err in res.errors.items():
        model = info[name]["model"] if name in info else name
        groups.setdefault(model, []).append(err.mean(0))
    for model, curves in groups.items():
        c = np.stack(curves)
        line = ax.plot(
            h,
            c.mean(0),
            label=f"{model} ({len(curves)})" if len(curves) > 1 else model,
            ls="--" if model in (FLOOR, CEILING) or "(" in model else "-",
        )
        if len(curves) > 1:
            ax.fill_between(h, c.min(0), c.max(0), color=line[0].get_color(), alpha=0.2)
    ax.set(
        title=f"{args.env}, test dt {test_name}",
        xlabel="horizon (steps)",
        yscale="log",
        ylabel="open-loop MSE (normalised)",
    )
    ax.legend(fontsize=7)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"done in {time.perf_counter() - t0:.0f} s")
