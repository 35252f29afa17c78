"""Figures of an evaluation (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from worldmodel.evaluate import CEILING, FLOOR, HorizonResult  # noqa: E402


def plot_horizon(result: HorizonResult, path: str | Path) -> Path:
    """Mean squared error (normalised units) vs horizon step for every predictor, with the
    25-75 % band over start states; log scale."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, err in result.errors.items():
        h = np.arange(1, err.shape[1] + 1)
        style = {FLOOR: {"ls": "--", "color": "grey"}, CEILING: {"ls": ":", "color": "black"}}.get(
            name, {}
        )
        mean = np.maximum(err.mean(0), 1e-12)
        ax.plot(h, mean, label=name, **style)
        if name not in (FLOOR, CEILING):
            lo, hi = np.percentile(err, [25, 75], axis=0)
            ax.fill_between(h, np.maximum(lo, 1e-12), np.maximum(hi, 1e-12), alpha=0.15)
    ax.set(
        xlabel="horizon (steps after the last observation)",
        ylabel="MSE (normalised units)",
        yscale="log",
        title=f"open-loop error vs horizon, {result.settings.get('env_id', '')}",
    )
    ax.legend(fontsize=8)
    return _save(fig, path, dpi=100)


def plot_trajectories(
    result: HorizonResult, path: str | Path, start: int = 0, names: list[str] | None = None
) -> Path:
    """One panel per observation dimension: the real trajectory, each model's prediction, and
    the observed context points (marked) before time 0."""
    s = result.starts[start]
    t = np.cumsum(result.dts[start])
    names = names or [n for n in result.predictions if n not in (FLOOR, CEILING)]
    dims = result.real.shape[-1]
    cols = 4
    rows = int(np.ceil(dims / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), squeeze=False)
    for d in range(dims):
        ax = axes[d // cols][d % cols]
        ax.plot(
            np.r_[0.0, t],
            np.r_[s.context.obs[-1, d], result.real[start, :, d]],
            "k-",
            lw=1.5,
            label="real",
        )
        for n in names:
            ax.plot(
                np.r_[0.0, t],
                np.r_[s.context.obs[-1, d], result.predictions[n][start, :, d]],
                lw=1,
                label=n,
            )
        ax.plot(s.context.t, s.context.obs[:, d], "ko", ms=3, label="observed")
        ax.axvline(0.0, color="grey", lw=0.5)
        ax.set_title(f"obs[{d}]", fontsize=8)
        ax.tick_params(labelsize=7)
    for d in range(dims, rows * cols):
        axes[d // cols][d % cols].axis("off")
    axes[0][0].legend(fontsize=6)
    fig.supxlabel("time since the last observation [s]", fontsize=9)
    return _save(fig, path, dpi=90)


def _save(fig: plt.Figure, path: str | Path, dpi: int) -> Path:
    """Lay out, write (making the directory) and close ``fig``; returns the path."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
