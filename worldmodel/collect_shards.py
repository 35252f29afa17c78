"""Collect a dataset directory of shards, spread over processes and machines.

Episode ``i`` is seeded exactly as :func:`worldmodel.collect.collect` seeds it (the ``i``-th of
``episode_seeds(seed, N)``, a prefix-stable stream), and shard ``k`` holds episodes
``[k*S, min((k+1)*S, N))``. A process of rank ``r`` among ``W`` collects the shards with
``k % W == r`` and writes each one atomically (a temporary file renamed into place), skipping
shards already present. Hence:

* the episodes never depend on ``W`` (nor on ``workers``): 2 ranks write the same files as 1;
* a process that dies loses only the shard it was writing; rerunning (any ``W``) collects just
  the missing shards;
* asking for more episodes in an existing directory continues the same seed stream: the last,
  short shard is rewritten whole (its first episodes come out identical) and new shards follow.

Ranks come from arguments or from the ``RANK``/``WORLD_SIZE`` variables that ``torchrun`` sets
(``SLURM_PROCID``/``SLURM_NTASKS`` under ``srun``), so one launcher serves training and
collection::

    torchrun --nproc_per_node=8 -m worldmodel.cli collect --out data/hopper --shard-size 100 ...
    # several machines sharing a directory (NFS, Lustre, ...), one command per machine:
    torchrun --nnodes=2 --node-rank=R --nproc_per_node=8 --rdzv-endpoint=HOST:29500 \\
        -m worldmodel.cli collect --out /shared/data/hopper --shard-size 100 ...

No process talks to another: the work is split statically and the shared directory is the only
coordination (each shard has one writer; rename is atomic on POSIX file systems and on NFS; the
``index.json`` cache is rewritten by whoever finishes and by every loader). That is why there is
no Ray (or process group) here: a scheduler would buy dynamic load balancing, which matters only
when episode lengths differ a lot between shards, at the price of a cluster runtime to deploy.
Do not run two collections of different ``W`` into one directory at the same time (two writers
could then pick the same shard; the file stays whole, but the work is done twice).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import as_completed
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from worldmodel.collect import (
    CollectConfig,
    collect_chunk,
    episode_seeds,
    metadata,
    worker_pool,
)
from worldmodel.data import FORMAT_VERSION, DatasetError, Episode
from worldmodel.shards import SHARD_GLOB, Shard, refresh_index, shard_name, write_shard

_VARYING = ("library_versions", "shard")  # metadata that may differ between shards of a run


def rank_and_world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)`` from the arguments, else ``RANK``/``WORLD_SIZE`` (torchrun), else
    ``SLURM_PROCID``/``SLURM_NTASKS``, else ``(0, 1)``."""

    def env(*names: str) -> int | None:
        value = next((os.environ[n] for n in names if os.environ.get(n)), None)
        return None if value is None else int(value)

    rank = rank if rank is not None else env("RANK", "SLURM_PROCID")
    world_size = world_size if world_size is not None else env("WORLD_SIZE", "SLURM_NTASKS")
    rank, world_size = rank or 0, world_size or 1
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world size {world_size})")
    return rank, world_size


def shard_blocks(episodes: int, shard_size: int) -> list[tuple[int, int]]:
    """``[(first, stop), ...]``: the episodes of shard ``k``, ``[k*S, min((k+1)*S, N))``."""
    if shard_size < 1:
        raise ValueError(f"shard size must be >= 1, got {shard_size}")
    return [(a, min(a + shard_size, episodes)) for a in range(0, episodes, shard_size)]


def _comparable(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in _VARYING}


def _todo(directory: Path, meta: dict[str, Any], blocks: Sequence[tuple[int, int]]) -> list[int]:
    """Shards still to collect: absent, or shorter than their block (the dataset grew); refuses
    a directory holding shards of another collection (other settings or shard size)."""
    want, have = _comparable(meta), {}
    for path in sorted(directory.glob(SHARD_GLOB)):
        shard = Shard(path)
        old = _comparable(shard.metadata)
        if old != want:
            key = next(k for k in sorted({*old, *want}) if old.get(k) != want.get(k))
            raise DatasetError(
                f"{path}: collected with other settings ({key}: {old.get(key)!r} there, "
                f"{want.get(key)!r} now); collect into another directory"
            )
        have[shard.index] = len(shard)
    return [k for k, (a, b) in enumerate(blocks) if have.get(k, 0) < b - a]


def collect_shards(
    config: CollectConfig,
    directory: str | Path,
    shard_size: int = 100,
    *,
    rank: int | None = None,
    world_size: int | None = None,
) -> list[Path]:
    """Collect this rank's missing shards of ``config.episodes`` episodes into ``directory``
    (``config.workers`` processes, one shard per task); returns the shard files written.

    The directory may already hold shards of the same collection (same settings and shard
    size): those are kept. ``index.json`` is refreshed at the end (best effort)."""
    config.check()
    rank, world_size = rank_and_world(rank, world_size)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, **metadata(config), "shard_size": shard_size}
    blocks = shard_blocks(config.episodes, shard_size)
    mine = [k for k in _todo(directory, meta, blocks) if k % world_size == rank]
    seeds = episode_seeds(config.seed, config.episodes).tolist()
    written: list[Path] = []

    def write(k: int, episodes: list[Episode]) -> None:
        path = directory / shard_name(k)
        write_shard(path, episodes, meta, index=k, first=blocks[k][0], total=config.episodes)
        written.append(path)
        bar.update(len(episodes))

    bar = tqdm(
        total=sum(b - a for a, b in (blocks[k] for k in mine)),
        desc=f"collect {config.env} rank {rank}/{world_size}",
        unit="ep",
        disable=not config.progress,
    )
    with bar:
        if config.workers == 1 or len(mine) <= 1:
            for k in mine:
                write(k, collect_chunk(config, seeds[slice(*blocks[k])]))
        else:
            with worker_pool(config.workers) as pool:
                jobs = {
                    pool.submit(collect_chunk, config, seeds[slice(*blocks[k])]): k for k in mine
                }
                for job in as_completed(jobs):
                    write(jobs[job], job.result())
    try:
        refresh_index(directory)
    except DatasetError:  # another rank's shard unreadable now: the next loader rebuilds it
        pass
    return written
