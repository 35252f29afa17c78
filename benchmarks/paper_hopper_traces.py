"""Test MSE against training wall-clock for the paper-hopper cells run with ``--trace-test``.

Reads every ``RUNS/<cell>/test_trace.csv``, prints when each cell first reached the paper's
value (and the original implementation's 0.0034, for interpolation at p = 0.3), and writes
``benchmarks/results/paper_hopper_traces.csv`` and ``paper_hopper_traces.png``.

    python benchmarks/paper_hopper_traces.py [--runs runs/paper_hopper]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from worldmodel.paper import PAPER_LATENT_ODE  # noqa: E402

ORIGINAL_BEST = {("interp", 0.3): 0.0034}  # the original code's best on this machine (issue #4)


def read_traces(runs: Path) -> dict[tuple[str, str, float], list[dict[str, float]]]:
    """``{(model, mode, p): rows}`` from ``runs/<model>-<mode>-<p>-<profile>/test_trace.csv``."""
    out = {}
    for path in sorted(runs.glob("*/test_trace.csv")):
        *model, mode, p, _profile = path.parent.name.split("-")
        with path.open(newline="") as f:
            rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
        out["-".join(model), mode, float(p)] = rows
    return out


def first_below(rows: list[dict[str, float]], value: float) -> dict[str, float] | None:
    return next((r for r in rows if r["test_mse"] <= value), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs/paper_hopper"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    traces = read_traces(args.runs)
    if not traces:
        raise SystemExit(f"no test_trace.csv under {args.runs} (run cells with --trace-test)")
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "paper_hopper_traces.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "mode", "observed", "epoch", "seconds", "test_mse"])
        for (model, mode, p), rows in traces.items():
            w.writerows(
                [model, mode, p, int(r["epoch"]), r["seconds"], r["test_mse"]] for r in rows
            )
    modes = sorted({m for _, m, _ in traces})
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.2), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for (model, m, p), rows in traces.items():
            if m != mode:
                continue
            line = ax.plot(
                [r["seconds"] for r in rows],
                [r["test_mse"] * 100 for r in rows],
                marker=".",
                label=f"{model} p={p:g}",
            )[0]
            paper = PAPER_LATENT_ODE.get((mode, p)) if model == "latent-ode" else None
            if paper is not None:
                ax.axhline(paper * 100, ls="--", lw=1, color=line.get_color())
            for target, name in (
                (paper, "paper"),
                (ORIGINAL_BEST.get((mode, p)), "original's best"),
            ):
                hit = first_below(rows, target) if target else None
                when = (
                    f"{hit['seconds']:.0f} s (epoch {int(hit['epoch'])})" if hit else "not reached"
                )
                if target:
                    print(
                        f"{model} {mode} p={p:g}: {name} {target * 100:.3f}e-2 -> {when}; "
                        f"last {rows[-1]['test_mse'] * 100:.3f}e-2 at {rows[-1]['seconds']:.0f} s"
                    )
        ax.set(
            title=f"{mode} (dashed: the paper's value)",
            xlabel="training wall-clock (s, CPU)",
            ylabel="test MSE x 1e-2",
            yscale="log",
        )
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(args.out / "paper_hopper_traces.png", dpi=110)
    print(f"wrote {args.out / 'paper_hopper_traces.csv'} and paper_hopper_traces.png")


if __name__ == "__main__":
    main()
