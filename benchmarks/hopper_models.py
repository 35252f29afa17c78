"""Every model on one irregular Hopper-v5 dataset: training curves and held-out error.

    python benchmarks/hopper_models.py [--episodes 400] [--epochs 10] [--steps 40]
        [--out runs/hopper_models]

Runs the same commands a user would (``worldmodel collect`` then ``worldmodel train`` for each
model, in subprocesses), then scores every model's best checkpoint on the held-out test
episodes (interpolation and extrapolation at several observed fractions, masks fixed by seed)
next to a "hold the last context observation" baseline. Writes the table to
``benchmarks/results/hopper_models.csv`` and the validation curves to ``<out>/curves.png`` and
``benchmarks/results/hopper_models_curves.png``.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("latent-ode", "ode-rnn", "gru-dt", "rnn-vae", "mlp-ensemble")
RESULTS = Path(__file__).parent / "results" / "hopper_models.csv"


def sh(*args: str) -> float:
    print("$ worldmodel " + " ".join(args), flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "worldmodel.cli", *args], check=True)
    return time.perf_counter() - start


def constant_baseline(test, norm, observed, mode, window):
    """MSE of holding each window's last context observation (normalised units)."""
    import numpy as np
    import torch

    from worldmodel.batching import make_batch, tile_windows
    from worldmodel.models.base import masked_mse

    rng = np.random.default_rng([0, int(observed * 1000), len(mode)])
    b = make_batch(
        test.episodes,
        tile_windows(test.episodes, window),
        norm,
        mode=mode,
        observed=observed,
        rng=rng,
    )
    last = b.obs[torch.arange(b.size), b.last_context()]
    return float(masked_mse(last.unsqueeze(1).expand_as(b.obs), b.obs, b.target))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=40, help="steps per epoch")
    ap.add_argument("--window", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("runs/hopper_models"))
    args = ap.parse_args()

    data = args.out / "hopper_random.npz"
    if not data.exists():
        sh(
            "collect",
            "--env",
            "Hopper-v5",
            "--episodes",
            str(args.episodes),
            "--policy",
            "random",
            "--timing",
            "uniform:1-7",
            "--seed",
            "0",
            "--workers",
            "2",
            "--out",
            str(data),
            "--no-progress",
        )
    wall = {}
    for name in MODELS:
        run = args.out / name
        if not (run / "model.safetensors").exists():
            wall[name] = sh(
                "train",
                str(data),
                "--model",
                name,
                "--out",
                str(run),
                "--epochs",
                str(args.epochs),
                "--steps-per-epoch",
                str(args.steps),
                "--window",
                str(args.window),
                "--batch-size",
                "32",  # the batch its committed figures were made with
                "--no-progress",
            )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from worldmodel import load, load_dataset
    from worldmodel.evaluate import heldout_error, heldout_split
    from worldmodel.metrics import MetricsLogger

    dataset = load_dataset(data)
    rows = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name in MODELS:
        model = load(args.out / name)
        test = heldout_split(model, dataset)
        for r in heldout_error(model, test, observed=(0.3, 0.5, 1.0), window=args.window):
            rows.append({"model": name, **r, "train_s": wall.get(name, float("nan"))})
        hist = MetricsLogger(args.out / name, tensorboard=False).rows()
        ep = [int(h["epoch"]) for h in hist]
        axes[0].plot(ep, [float(h["val/interp_mse"]) for h in hist], label=name)
        axes[1].plot(ep, [float(h["val/extrap_mse"]) for h in hist], label=name)
    norm = load(args.out / MODELS[0]).normalizer
    test = heldout_split(load(args.out / MODELS[0]), dataset)
    for mode in ("interp", "extrap"):
        for p in (0.3, 0.5, 1.0):
            rows.append(
                {
                    "model": "hold-last-observation",
                    "mode": mode,
                    "observed": p,
                    "mse": constant_baseline(test, norm, p, mode, args.window),
                    "nll": float("nan"),
                    "points": 0,
                    "train_s": 0.0,
                }
            )
    for ax, title in zip(axes, ("validation interpolation MSE", "validation extrapolation MSE")):
        ax.set(title=title, xlabel="epoch", yscale="log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "curves.png", dpi=100)
    fig.savefig(RESULTS.parent / "hopper_models_curves.png", dpi=80)

    print(
        f"\nheld-out test MSE (normalised units), {len(test)} test episodes, "
        f"windows of {args.window}"
    )
    print(
        f"  {'model':<22} {'mode':<7} "
        + " ".join(f"p={p:<8}" for p in (0.3, 0.5, 1.0))
        + " train s"
    )
    for name in (*MODELS, "hold-last-observation"):
        for mode in ("interp", "extrap"):
            vals = [r["mse"] for r in rows if r["model"] == name and r["mode"] == mode]
            t = next(r["train_s"] for r in rows if r["model"] == name)
            print(f"  {name:<22} {mode:<7} " + " ".join(f"{v:<10.4f}" for v in vals) + f" {t:7.0f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {RESULTS} and {args.out / 'curves.png'}")


if __name__ == "__main__":
    main()
