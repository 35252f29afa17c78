"""Human-readable summary of a dataset (``worldmodel dataset info``)."""

from __future__ import annotations

import numpy as np

from worldmodel.data import Dataset


def _bar(frac: float, width: int = 30) -> str:
    return "#" * max(1, int(round(frac * width))) if frac > 0 else ""


def dt_histogram(dts: np.ndarray, max_distinct: int = 16) -> list[tuple[str, int]]:
    """``(label, count)`` rows: one per distinct dt when there are few, else 10 bins."""
    values, counts = np.unique(np.round(dts, 9), return_counts=True)
    if len(values) <= max_distinct:
        return [(f"{v:.4f}", int(c)) for v, c in zip(values, counts)]
    counts, edges = np.histogram(dts, bins=10)
    return [(f"{a:.4f}-{b:.4f}", int(c)) for a, b, c in zip(edges[:-1], edges[1:], counts)]


def _stats_table(name: str, x: np.ndarray) -> list[str]:
    lines = [
        f"{name} ({x.shape[1]} dims)",
        f"  {'dim':>4} {'mean':>10} {'std':>10} {'min':>10} {'max':>10}",
    ]
    for d in range(x.shape[1]):
        col = x[:, d]
        lines.append(
            f"  {d:>4} {col.mean():>10.4g} {col.std():>10.4g} {col.min():>10.4g} {col.max():>10.4g}"
        )
    return lines


def describe(dataset: Dataset, title: str = "", full: bool = True) -> str:
    """Episodes, steps, timing, and (``full``) returns, the dt histogram and per-dimension
    statistics, as text."""
    meta = dataset.metadata
    lengths = np.array([len(ep) - 1 for ep in dataset])
    dts = np.concatenate([ep.dt for ep in dataset])
    returns = np.array([ep.rewards.sum() for ep in dataset])
    wrappers = ", ".join(
        f"{w['name']}(" + ", ".join(f"{k}={v}" for k, v in w.items() if k != "name") + ")"
        for w in meta.get("wrappers", [])
    )
    policy = meta.get("policy", {})
    lines = [
        title or "dataset",
        f"  env           {dataset.env_id}  kwargs={meta.get('env_kwargs', {})}",
        f"  wrappers      {wrappers or '-'}",
        f"  policy        {policy.get('name', '?')}"
        + (f" ({policy['path']}, noise {policy.get('noise_std', 0)})" if "path" in policy else ""),
        f"  seed          {meta.get('seed', '?')}   format v{meta.get('format_version')}",
        f"  episodes      {len(dataset)}  (terminated {sum(ep.terminated for ep in dataset)}, "
        f"truncated {sum(ep.truncated for ep in dataset)})",
        f"  steps         {dataset.num_steps} transitions, "
        f"{sum(len(ep) for ep in dataset)} observations, "
        f"{sum(ep.duration for ep in dataset):.3f} s simulated",
        f"  episode len   min {lengths.min()} / mean {lengths.mean():.1f} "
        f"/ max {lengths.max()} steps",
    ]
    if not full:
        return "\n".join(lines)
    lines += [
        f"  return        mean {returns.mean():.3f}  std {returns.std():.3f}",
        f"  dt [s]        mean {dts.mean():.5f}  min {dts.min():.5f}  max {dts.max():.5f}",
    ]
    rows = dt_histogram(dts)
    width = max(len(label) for label, _ in rows)
    for label, count in rows:
        frac = count / len(dts)
        lines.append(f"    {label:>{width}} {count:>7} {100 * frac:5.1f}% {_bar(frac)}")
    lines += _stats_table("observations", dataset.concat("obs"))
    lines += _stats_table("actions", dataset.concat("actions"))
    return "\n".join(lines)
