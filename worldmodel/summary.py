"""Human-readable summary of a dataset (``worldmodel dataset info``).

Statistics stream over the episodes (:func:`worldmodel.data.field_chunks`), so a sharded
dataset larger than memory is summarised one chunk at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from worldmodel.data import Dataset, Episode, Moments, episode_lengths, field_chunks


def _bar(frac: float, width: int = 30) -> str:
    return "#" * max(1, int(round(frac * width))) if frac > 0 else ""


def dt_histogram(dts: np.ndarray, max_distinct: int = 16) -> list[tuple[str, int]]:
    """``(label, count)`` rows: one per distinct dt when there are few, else 10 bins."""
    values, counts = np.unique(np.round(dts, 9), return_counts=True)
    if len(values) <= max_distinct:
        return [(f"{v:.4f}", int(c)) for v, c in zip(values, counts)]
    counts, edges = np.histogram(dts, bins=10)
    return [(f"{a:.4f}-{b:.4f}", int(c)) for a, b, c in zip(edges[:-1], edges[1:], counts)]


def _dt_summary(
    episodes: Sequence[Episode], max_distinct: int = 16
) -> tuple[list[tuple[str, int]], Moments]:
    """:func:`dt_histogram` of every episode's dt, and their moments, streamed: the distinct
    values are counted while few; else a second pass bins them between the overall extremes."""
    stats, distinct = Moments(), {}
    for dts in field_chunks(episodes, "dt"):
        stats.add(dts[:, None])
        if distinct is not None:
            for v, c in zip(*np.unique(np.round(dts, 9), return_counts=True)):
                distinct[float(v)] = distinct.get(float(v), 0) + int(c)
            distinct = distinct if len(distinct) <= max_distinct else None
    if distinct is not None:
        return [(f"{v:.4f}", c) for v, c in sorted(distinct.items())], stats
    edges = np.linspace(stats.min[0], stats.max[0], 11)  # as np.histogram(all dts, bins=10)
    counts = sum(np.histogram(dts, bins=edges)[0] for dts in field_chunks(episodes, "dt"))
    return [(f"{a:.4f}-{b:.4f}", int(c)) for a, b, c in zip(edges[:-1], edges[1:], counts)], stats


def _stats_table(name: str, episodes: Sequence[Episode]) -> list[str]:
    stats = Moments()
    for chunk in field_chunks(episodes, name):
        stats.add(chunk)
    lines = [
        f"{name if name != 'obs' else 'observations'} ({len(stats.mean)} dims)",
        f"  {'dim':>4} {'mean':>10} {'std':>10} {'min':>10} {'max':>10}",
    ]
    for d, (mean, std, lo, hi) in enumerate(zip(stats.mean, stats.std, stats.min, stats.max)):
        lines.append(f"  {d:>4} {mean:>10.4g} {std:>10.4g} {lo:>10.4g} {hi:>10.4g}")
    return lines


def describe(dataset: Dataset, title: str = "", full: bool = True) -> str:
    """Episodes, steps, timing, and (``full``) returns, the dt histogram and per-dimension
    statistics, as text."""
    meta = dataset.metadata
    lengths = episode_lengths(dataset.episodes) - 1
    terminated = truncated = 0
    duration, returns = 0.0, []
    for ep in dataset:
        terminated, truncated = terminated + ep.terminated, truncated + ep.truncated
        duration += ep.duration
        returns.append(ep.rewards.sum())
    returns = np.array(returns)
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
        f"  episodes      {len(dataset)}  (terminated {terminated}, truncated {truncated})",
        f"  steps         {dataset.num_steps} transitions, "
        f"{int(lengths.sum()) + len(dataset)} observations, {duration:.3f} s simulated",
        f"  episode len   min {lengths.min()} / mean {lengths.mean():.1f} "
        f"/ max {lengths.max()} steps",
    ]
    if not full:
        return "\n".join(lines)
    rows, dts = _dt_summary(dataset.episodes)
    lines += [
        f"  return        mean {returns.mean():.3f}  std {returns.std():.3f}",
        f"  dt [s]        mean {dts.mean[0]:.5f}  min {dts.min[0]:.5f}  max {dts.max[0]:.5f}",
    ]
    width = max(len(label) for label, _ in rows)
    for label, count in rows:
        frac = count / dts.n
        lines.append(f"    {label:>{width}} {count:>7} {100 * frac:5.1f}% {_bar(frac)}")
    lines += _stats_table("obs", dataset.episodes)
    lines += _stats_table("actions", dataset.episodes)
    return "\n".join(lines)
