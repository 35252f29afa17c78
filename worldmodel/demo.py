"""``worldmodel demo``: the whole chain at small scale on the CPU.

Collect irregular Hopper-v5 data, train ``latent-ode`` and ``mlp-ensemble``, hold both against
the real simulator, and write the report with plots and videos. Re-running with the same
``--out`` resumes: finished steps are kept.
"""

from __future__ import annotations

import time
from pathlib import Path

from worldmodel.collect import CollectConfig, collect_to_file
from worldmodel.config import DEMO_MODELS, DemoConfig, EvaluateConfig, TrainConfig
from worldmodel.data import load_dataset
from worldmodel.report import evaluate_runs


def run_demo(cfg: DemoConfig) -> Path:
    """Run the chain; returns the report's path."""
    from worldmodel.train import Trainer

    start = time.perf_counter()
    data = cfg.out / "data" / f"{cfg.env.lower()}.npz"
    if not data.exists():
        print(f"[1/3] collecting {cfg.episodes} {cfg.env} episodes, timing {cfg.timing} -> {data}")
        collect_to_file(
            CollectConfig(
                env=cfg.env,
                episodes=cfg.episodes,
                timing=cfg.timing,
                seed=cfg.seed,
                workers=cfg.workers,
                progress=cfg.progress,
            ),
            data,
        )
    dataset = load_dataset(data)
    runs = []
    for i, model in enumerate(DEMO_MODELS):
        run = cfg.out / "runs" / model
        runs.append(run)
        print(f"[2/3] training {model} ({i + 1}/{len(DEMO_MODELS)}) -> {run}")
        tc = TrainConfig(
            model=model,
            epochs=cfg.epochs,
            steps_per_epoch=cfg.steps_per_epoch,
            window=cfg.window,
            seed=cfg.seed,
            progress=cfg.progress,
        )
        Trainer(
            tc, dataset, run, resume=(run / "last.safetensors").exists(), dataset_path=data
        ).fit()
    print(f"[3/3] evaluating against the {cfg.env} simulator")
    report = evaluate_runs(
        runs,
        cfg.out / "report",
        EvaluateConfig(horizon=cfg.horizon, starts=cfg.starts, video=cfg.video, seed=cfg.seed),
    )
    import json

    res = json.loads((cfg.out / "report" / "results.json").read_text())
    hs = [h for h in (1, 5, 10, 20, 30, 50) if h <= cfg.horizon]
    print("open-loop MSE vs horizon (normalised units, mean over start states):")
    print(f"  {'predictor':<24}" + "".join(f"{'h=' + str(h):>10}" for h in hs))
    for name, v in res["horizon_mse"].items():
        print(f"  {name:<24}" + "".join(f"{v['mean'][h - 1]:>10.3g}" for h in hs))
    print(f"demo finished in {time.perf_counter() - start:.0f} s; report: {report}")
    return report
