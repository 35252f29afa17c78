"""Collection throughput: recording stack vs the bare env, measured in the same run.

    python benchmarks/collection.py [--steps 20000] [--episodes 2000]

Prints steps/s of
  * the bare ``gym.make("Hopper-v5")`` loop with a random policy (the baseline),
  * the same loop through ``IrregularTiming("fixed") + TrajectoryRecorder`` (same physics per
    step, so the ratio is the wrappers' overhead; target < 15 %),
  * ``IrregularTiming("uniform:1-7")`` + recorder, per step and per physics substep,
and the scaling of ``worldmodel collect`` from 1 to 2 worker processes. Appends a row per
figure to ``benchmarks/results/collection.csv``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from _results import append_rows

from envs import IrregularTiming, TrajectoryRecorder
from worldmodel.collect import CollectConfig, collect

RESULTS = Path(__file__).parent / "results" / "collection.csv"


def loop(env: gym.Env, steps: int, seed: int = 0) -> tuple[float, int]:
    """Run ``steps`` random-policy steps (resetting on episode end); return (seconds, substeps)."""
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    actions = rng.uniform(low, high, size=(steps, *env.action_space.shape)).astype(np.float32)
    substeps = 0
    env.reset(seed=seed)
    start = time.perf_counter()
    for i in range(steps):
        _, _, term, trunc, info = env.step(actions[i])
        substeps += info.get("substeps", 4)
        if term or trunc:
            env.reset()
    return time.perf_counter() - start, substeps


def best_of(make, steps: int, repeats: int) -> tuple[float, float]:
    """Best (steps/s, substeps/s) over ``repeats`` runs of a fresh env."""
    best = (0.0, 0.0)
    for r in range(repeats):
        env = make()
        secs, sub = loop(env, steps, seed=r)
        env.close()
        best = max(best, (steps / secs, sub / secs))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=2000)
    args = ap.parse_args()

    rows = []
    bare, _ = best_of(lambda: gym.make("Hopper-v5"), args.steps, args.repeats)
    rec, _ = best_of(
        lambda: TrajectoryRecorder(IrregularTiming(gym.make("Hopper-v5"), "fixed"), keep=False),
        args.steps,
        args.repeats,
    )
    irr, irr_sub = best_of(
        lambda: TrajectoryRecorder(
            IrregularTiming(gym.make("Hopper-v5"), "uniform:1-7"), keep=False
        ),
        args.steps,
        args.repeats,
    )
    overhead = bare / rec - 1.0
    print(f"bare Hopper-v5               {bare:10.0f} steps/s   (baseline)")
    print(
        f"timing fixed + recorder      {rec:10.0f} steps/s   "
        f"overhead {100 * overhead:5.1f} %  (target < 15 %)"
    )
    print(
        f"timing uniform:1-7 + recorder{irr:10.0f} steps/s   {irr_sub:10.0f} substeps/s "
        f"(bare: {4 * bare:.0f} substeps/s)"
    )
    rows += [
        ("bare_steps_per_s", bare),
        ("recorded_steps_per_s", rec),
        ("recording_overhead", overhead),
        ("uniform1-7_substeps_per_s", irr_sub),
    ]

    times = {}
    for workers in (1, 2):
        cfg = CollectConfig(episodes=args.episodes, workers=workers, seed=0, progress=False)
        start = time.perf_counter()
        data = collect(cfg)
        times[workers] = time.perf_counter() - start
        print(
            f"collect {args.episodes} episodes, {workers} worker(s): {times[workers]:6.2f} s "
            f"({data.num_steps / times[workers]:8.0f} steps/s incl. start-up)"
        )
    speedup = times[1] / times[2]
    print(f"worker scaling 1 -> 2: {speedup:.2f}x")
    rows += [
        ("collect_1_worker_s", times[1]),
        ("collect_2_workers_s", times[2]),
        ("worker_speedup_1_to_2", speedup),
    ]

    append_rows(RESULTS, ["metric", "value"], [(name, f"{value:.6g}") for name, value in rows])


if __name__ == "__main__":
    main()
