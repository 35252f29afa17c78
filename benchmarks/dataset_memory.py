"""Peak memory of training on a sharded dataset much larger than a small in-memory one.

    python benchmarks/dataset_memory.py [--episodes 5000] [--steps 20] [--workdir DIR]

Writes a SYNTHETIC Hopper-shaped dataset as shards (``--episodes`` episodes of 1000 steps:
11 observation dims, 6 qpos, 6 qvel, 3 float32 actions, held for 1-7 physics steps of 0.002 s;
smooth random walks, not MuJoCo rollouts: memory depends on shapes, not on physics), 100
episodes per shard, uncompressed so that training memory-maps it. Then trains ``mlp-delta`` for
``--steps`` steps with :class:`worldmodel.train.Trainer` (the normal path: split, normaliser fit,
validation batches, sampled training batches) in a fresh process, once on the sharded dataset
and once on a small one-file dataset (40 episodes of the same shape) held in memory, and prints
each process's peak resident set (``ru_maxrss``: it counts the pages of memory-mapped shards
that happen to be resident, which the kernel may drop at any time) and its anonymous resident
memory at the end (``RssAnon``: heap only).

Writes the printed table to ``benchmarks/results/dataset_memory.txt``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from worldmodel.data import Dataset, Episode
from worldmodel.io import atomic_write_text
from worldmodel.shards import shard_name, write_shard

RESULTS = Path(__file__).parent / "results" / "dataset_memory.txt"
STEPS_PER_EPISODE, SHARD_SIZE = 1000, 100
META = {"env_id": "Hopper-v5", "default_dt": 0.008, "synthetic": "benchmarks/dataset_memory.py"}


def synthetic_episode(rng: np.random.Generator, steps: int, seed: int) -> Episode:
    """A Hopper-shaped episode of ``steps`` transitions: smooth random walks."""
    n = steps + 1
    dt = rng.integers(1, 8, size=steps) * 0.002
    walk = np.cumsum(rng.normal(0, 0.05, size=(n, 23)), axis=0)
    return Episode(
        t=np.concatenate([[0.0], np.cumsum(dt)]),
        obs=walk[:, :11],
        qpos=walk[:, 11:17],
        qvel=walk[:, 17:23],
        actions=rng.uniform(-1, 1, size=(steps, 3)).astype(np.float32),
        rewards=rng.normal(size=steps),
        seed=seed,
    )


def write_sharded(directory: Path, episodes: int) -> None:
    """``episodes`` synthetic episodes as shards of ``SHARD_SIZE``, one shard in memory at once."""
    for k, a in enumerate(range(0, episodes, SHARD_SIZE)):
        b = min(a + SHARD_SIZE, episodes)
        rng = np.random.default_rng(k)
        block = [synthetic_episode(rng, STEPS_PER_EPISODE, i) for i in range(a, b)]
        write_shard(directory / shard_name(k), block, META, index=k, first=a, total=episodes)


def _anon_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(path: str, steps: int, out: str) -> None:
    """Train a few steps on ``path``; print peak RSS (MiB), anonymous RSS and seconds as JSON."""
    from worldmodel.data import load_dataset
    from worldmodel.models import ModelConfig
    from worldmodel.train import TrainConfig, Trainer

    start = time.perf_counter()
    dataset = load_dataset(path)
    config = TrainConfig(
        model="mlp-delta",
        net=ModelConfig(ensemble_units=64, ensemble_layers=2),
        epochs=1,
        steps_per_epoch=steps,
        batch_size=32,
        window=50,
        eval_windows=64,
        progress=False,
        tensorboard=False,
    )
    Trainer(config, dataset, out).fit()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        json.dumps(
            {
                "episodes": len(dataset),
                "transitions": dataset.num_steps,
                "peak_rss_mib": peak,
                "anon_rss_end_mib": _anon_mib(),
                "seconds": time.perf_counter() - start,
            }
        )
    )


def measure(path: Path, steps: int, work: Path) -> dict:
    out = work / f"run-{path.name}"
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--steps", str(steps), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps, args.out)
        return
    work = Path(tempfile.mkdtemp(prefix="dataset_memory-", dir=args.workdir))
    try:
        start = time.perf_counter()
        write_sharded(work / "large", args.episodes)
        written = time.perf_counter() - start
        rng = np.random.default_rng(12345)
        small = [synthetic_episode(rng, STEPS_PER_EPISODE, i) for i in range(40)]
        Dataset(small, META).save(work / "small.npz")
        size = sum(p.stat().st_size for p in (work / "large").iterdir()) / 2**20
        rows = [
            ("in memory, one .npz", measure(work / "small.npz", args.steps, work)),
            ("sharded, memory-mapped", measure(work / "large", args.steps, work)),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"dataset_memory: mlp-delta, {args.steps} training steps of 32 windows x 50 through "
        "worldmodel.train.Trainer, each in a fresh process",
        f"synthetic Hopper-shaped data (11 obs, 6 qpos, 6 qvel, 3 actions; random walks, not "
        f"MuJoCo); large: {args.episodes} episodes x {STEPS_PER_EPISODE} steps in "
        f"{-(-args.episodes // SHARD_SIZE)} uncompressed shards, {size:.0f} MiB on disk, "
        f"written in {written:.0f} s",
        f"{'dataset':<24} {'episodes':>9} {'transitions':>12} {'peak RSS MiB':>13} "
        f"{'anon RSS MiB':>13} {'seconds':>8}",
    ]
    for name, r in rows:
        lines.append(
            f"{name:<24} {r['episodes']:>9} {r['transitions']:>12} {r['peak_rss_mib']:>13.0f} "
            f"{r['anon_rss_end_mib']:>13.0f} {r['seconds']:>8.1f}"
        )
    lines.append(
        "peak RSS = ru_maxrss of the training process (includes resident pages of mapped "
        "shards); anon RSS = RssAnon at the end (heap only)"
    )
    text = "\n".join(lines)
    print(text)
    atomic_write_text(RESULTS, text + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
