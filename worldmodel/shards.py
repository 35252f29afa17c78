"""Sharded datasets: a directory of dataset files read lazily, so that training memory is bounded.

Layout (issue #18)::

    DIR/shard-000000.npz   episodes [0, S)      each a dataset file of format version 1
    DIR/shard-000001.npz   episodes [S, 2S)     (see :mod:`worldmodel.data`), validated as one
    ...
    DIR/index.json         a summary of the shards: a cache, rebuilt from them, never trusted

Every shard's metadata carries ``shard = {"index": k, "first_episode": a, "episodes": n,
"dataset_episodes": N}``: the block ``[a, a + n)`` of global episode indices it holds and the
dataset size its writer aimed at. The shard files alone therefore define the dataset; writers
(collection ranks on several machines) never share a file, and whoever loads rebuilds
``index.json`` when it disagrees with them. Loading refuses a gap, an overlap, a shard whose
name is not its number, or fewer episodes than some shard's ``dataset_episodes`` (a collection
not finished yet), naming the file.

Loading reads every shard's structure (its zip directory, the ``.npy`` headers and the small
per-episode arrays) and checks it as :func:`worldmodel.data.load_dataset` does; the large arrays
(``t``, ``obs``, ``qpos``, ``qvel``, ``actions``, ``rewards``) stay on disk. A shard written
uncompressed (``np.savez``, ZIP_STORED: the default here) is memory-mapped member by member at its
offset in the zip (``np.load`` ignores ``mmap_mode`` for ``.npz``), so episodes are read-only
``np.memmap`` views and the kernel pages them in and out; a compressed shard is decompressed
whole. At most :data:`OPEN_SHARDS` ``.max_open`` shards are open at once (least recently used is
dropped), which bounds the memory for compressed shards and the mapped pages for stored ones.
The values of a shard (finite numbers, strictly increasing times, its zip CRCs) are checked the
first time it is opened, with the same checks and messages as a single file.
"""

from __future__ import annotations

import json
import operator
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.data import FORMAT_VERSION, Dataset, DatasetError, Episode, check_metadata
from worldmodel.io import atomic_write_json
from worldmodel.shard_file import WIDTHS, Shard, shard_name

__all__ = [
    "OPEN_SHARDS",
    "LazyEpisodes",
    "Shard",
    "ShardCache",
    "ShardedDataset",
    "load_shards",
    "merge_lazy",
    "refresh_index",
    "shard_name",
    "write_shard",
    "write_shards",
]

INDEX = "index.json"
INDEX_FORMAT = "worldmodel-shards"
SHARD_GLOB = "shard-*.npz"


class ShardCache:
    """The open arrays of the ``max_open`` most recently used shards (process-wide).

    Dropping a shard drops this cache's reference; its mapping closes once no episode view of it
    is left. Bounds resident memory at about ``max_open`` shards (plus whatever views a caller
    still holds).
    """

    def __init__(self, max_open: int = 16) -> None:
        self.max_open = max_open
        self._open: OrderedDict[Shard, dict[str, np.ndarray]] = OrderedDict()

    def arrays(self, shard: Shard) -> dict[str, np.ndarray]:
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._open[shard]
        arrays = self._open[shard] = shard.open()
        while len(self._open) > max(1, self.max_open):
            self._open.popitem(last=False)
        return arrays

    def is_open(self, shard: Shard) -> bool:
        return shard in self._open

    def clear(self) -> None:
        self._open.clear()


OPEN_SHARDS = ShardCache()
"""The process-wide cache of open shards; set ``OPEN_SHARDS.max_open`` to trade memory for
re-opening (re-mapping a stored shard is cheap, re-reading a compressed one is not)."""


def _widths_of(episodes: Sequence[Episode]) -> dict[str, int]:
    return {k: int(np.asarray(getattr(episodes[0], k)).shape[1]) for k in WIDTHS}


class LazyEpisodes(Sequence[Episode]):
    """Episodes read on access from shards (and in-memory episode lists, after a merge).

    ``where`` ``(M, 2)`` int64 gives each episode's source and index in it; ``lengths`` ``(M,)``
    their observation counts, known without opening anything. Indexing returns an
    :class:`~worldmodel.data.Episode` of read-only views; a slice or :meth:`subset` returns
    another lazy sequence.
    """

    def __init__(
        self,
        sources: Sequence[Shard | Sequence[Episode]],
        where: np.ndarray,
        cache: ShardCache = OPEN_SHARDS,
    ) -> None:
        self.sources, self.cache = list(sources), cache
        self.where = np.asarray(where, dtype=np.int64).reshape(-1, 2)
        per_source = [
            s.lengths if isinstance(s, Shard) else np.array([len(e) for e in s], dtype=np.int64)
            for s in self.sources
        ]
        offsets = np.cumsum([0, *(len(x) for x in per_source)])
        flat = np.concatenate([np.zeros(0, np.int64), *per_source])
        self.lengths = (
            flat[offsets[self.where[:, 0]] + self.where[:, 1]] if len(self.where) else flat[:0]
        )

    def __getstate__(self) -> dict[str, Any]:  # open arrays never travel to another process
        return {**self.__dict__, "cache": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, cache=OPEN_SHARDS)

    @classmethod
    def of_shards(cls, shards: Sequence[Shard]) -> LazyEpisodes:
        where = [(i, j) for i, s in enumerate(shards) for j in range(len(s))]
        return cls(shards, np.array(where, dtype=np.int64).reshape(-1, 2))

    @classmethod
    def concat(cls, parts: Sequence[Sequence[Episode]]) -> LazyEpisodes:
        """The episodes of ``parts`` (lazy sequences or lists) one after the other."""
        sources: list[Shard | Sequence[Episode]] = []
        wheres = []
        for part in parts:
            if isinstance(part, LazyEpisodes):
                wheres.append(part.where + [len(sources), 0])
                sources.extend(part.sources)
            else:
                wheres.append(np.stack([np.full(len(part), len(sources)), np.arange(len(part))], 1))
                sources.append(list(part))
        return cls(sources, np.concatenate(wheres).reshape(-1, 2))

    @property
    def widths(self) -> dict[str, int]:
        first = self.sources[int(self.where[0, 0])]
        return dict(first.widths) if isinstance(first, Shard) else _widths_of(first)

    def __len__(self) -> int:
        return len(self.where)

    def __getitem__(self, i: int | slice) -> Any:  # Episode, or LazyEpisodes for a slice
        if isinstance(i, slice):
            return self.subset(range(len(self))[i])
        i = operator.index(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"episode {i} out of range ({len(self)} episodes)")
        s, j = (int(x) for x in self.where[i])
        source = self.sources[s]
        if isinstance(source, Shard):
            return source.episode(j, self.cache.arrays(source))
        return source[j]

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))

    def subset(self, indices: Sequence[int]) -> LazyEpisodes:
        return LazyEpisodes(
            self.sources, self.where[np.asarray(indices, dtype=np.int64)], self.cache
        )

    def shards(self) -> list[Shard]:
        """The shards this sequence reads from."""
        return [s for s in self.sources if isinstance(s, Shard)]


class ShardedDataset(Dataset):
    """A :class:`~worldmodel.data.Dataset` whose ``episodes`` is a :class:`LazyEpisodes`.

    Same API; sizes, splits and subsets never open a shard. Values are checked shard by shard
    on first access (:meth:`check_all` checks every shard now). ``concat`` and ``save`` to one
    file materialise everything: use :func:`write_shards` for large data.
    """

    episodes: LazyEpisodes  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not isinstance(self.episodes, LazyEpisodes):
            self.episodes = LazyEpisodes.concat([self.episodes])
        self.metadata = {"format_version": FORMAT_VERSION, **self.metadata}
        if not self.metadata.get("env_id"):
            raise DatasetError("dataset metadata has no 'env_id'")
        if not len(self.episodes):
            raise DatasetError("dataset has no episodes")
        check_metadata(self.metadata, self.obs_dim, self.act_dim)

    @property
    def obs_dim(self) -> int:
        return self.episodes.widths["obs"]

    @property
    def act_dim(self) -> int:
        return self.episodes.widths["actions"]

    @property
    def num_steps(self) -> int:
        return int(self.episodes.lengths.sum()) - len(self)

    def subset(self, indices: Sequence[int]) -> ShardedDataset:
        return ShardedDataset(self.episodes.subset(indices), dict(self.metadata))

    def check_all(self) -> None:
        """Check the values of every shard now (streaming: one shard at a time)."""
        for shard in self.episodes.shards():
            if not shard.checked:
                shard.open()


def merge_lazy(datasets: Sequence[Dataset], metadata: dict[str, Any]) -> ShardedDataset:
    """:meth:`Dataset.merge` when a dataset is sharded: nothing is read (widths must agree)."""
    widths = [
        d.episodes.widths if isinstance(d.episodes, LazyEpisodes) else _widths_of(d.episodes)
        for d in datasets
    ]
    for i, w in enumerate(widths[1:], start=1):
        for k, v in w.items():
            if v != widths[0][k]:
                raise DatasetError(
                    f"cannot merge dataset {i}: field {k!r} has width {v}, dataset 0 has "
                    f"{widths[0][k]}"
                )
    return ShardedDataset(LazyEpisodes.concat([d.episodes for d in datasets]), metadata)


# -- the directory ---------------------------------------------------------------------------
def read_shards(directory: str | Path) -> list[Shard]:
    """Every shard file in ``directory`` (structure checked), in order of their first episode."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"{directory}: no such dataset directory")
    return sorted((Shard(p) for p in sorted(directory.glob(SHARD_GLOB))), key=lambda s: s.first)


def check_blocks(directory: Path, shards: Sequence[Shard]) -> None:
    """The shards' blocks tile ``[0, N)``: no gap, no overlap, none short of a writer's ``N``."""
    if not shards:
        raise DatasetError(f"{directory}: no shard files ({SHARD_GLOB})")
    end, prev = 0, None
    for s in shards:
        if s.first > end:
            raise DatasetError(
                f"{directory}: episodes {end}-{s.first - 1} are missing (no shard holds them, "
                f"{s.path.name} starts at {s.first}): rerun the collection to complete it"
            )
        if s.first < end:
            raise DatasetError(
                f"{s.path}: holds episodes from {s.first}, but {prev.path.name} holds "
                f"episodes up to {end - 1}: overlapping shards"
            )
        end, prev = s.first + len(s), s
    want = max(s.total for s in shards)
    if want > end:
        raise DatasetError(
            f"{directory}: episodes {end}-{want - 1} are missing (a shard's writer aimed at "
            f"{want} episodes): rerun the collection to complete it"
        )
    first = shards[0]
    for s in shards[1:]:
        if s.metadata.get("env_id") != first.metadata.get("env_id"):
            raise DatasetError(
                f"{s.path}: env {s.metadata.get('env_id')!r}, but {first.path.name} has "
                f"{first.metadata.get('env_id')!r}"
            )
        for k, v in s.widths.items():
            if v != first.widths[k]:
                raise DatasetError(
                    f"{s.path}: field {k!r} has width {v}, but {first.path.name} has "
                    f"{first.widths[k]}"
                )


def index_of(shards: Sequence[Shard]) -> dict[str, Any]:
    """The ``index.json`` summary of ``shards``."""
    return {
        "format": INDEX_FORMAT,
        "format_version": FORMAT_VERSION,
        "env_id": shards[0].metadata.get("env_id") if shards else None,
        "episodes": sum(len(s) for s in shards),
        "steps": sum(s.steps for s in shards),
        "shards": [
            {
                "file": s.path.name,
                "first_episode": s.first,
                "episodes": len(s),
                "steps": s.steps,
                "stored": s.mappable,
            }
            for s in shards
        ],
    }


def refresh_index(directory: str | Path, shards: Sequence[Shard] | None = None) -> dict[str, Any]:
    """Rewrite ``directory/index.json`` (atomically) when it differs from the shards present.

    Best effort: the index is a cache, so a read-only directory or a concurrent writer (whose
    rename wins) is not an error.
    """
    directory = Path(directory)
    index = index_of(read_shards(directory) if shards is None else shards)
    path = directory / INDEX
    try:
        if json.loads(path.read_text()) == index:
            return index
    except (OSError, ValueError):
        pass
    try:
        atomic_write_json(path, index)
    except OSError:
        pass
    return index


def load_shards(directory: str | Path) -> ShardedDataset:
    """Load a dataset directory lazily (see the module docstring); refreshes ``index.json``."""
    directory = Path(directory)
    shards = read_shards(directory)
    check_blocks(directory, shards)
    refresh_index(directory, shards)
    return ShardedDataset(LazyEpisodes.of_shards(shards), dict(shards[0].metadata))


def write_shard(
    path: str | Path,
    episodes: Sequence[Episode],
    metadata: dict[str, Any],
    *,
    index: int,
    first: int,
    total: int,
    compress: bool = False,
) -> Path:
    """Write one shard atomically: ``episodes`` are global episodes ``[first, first + n)``."""
    shard = {"index": index, "first_episode": first, "episodes": len(episodes)}
    meta = {k: v for k, v in metadata.items() if k != "shard"}
    meta["shard"] = {**shard, "dataset_episodes": total}
    return Dataset(list(episodes), meta).save(path, compress=compress)


def write_shards(
    dataset: Dataset, directory: str | Path, shard_size: int = 100, *, compress: bool = False
) -> ShardedDataset:
    """Write ``dataset`` as a new dataset directory of shards of ``shard_size`` episodes,
    one shard in memory at a time; returns it loaded."""
    directory = Path(directory)
    if shard_size < 1:
        raise ValueError(f"shard size must be >= 1, got {shard_size}")
    if directory.is_dir() and any(directory.glob(SHARD_GLOB)):
        raise DatasetError(f"{directory}: already holds a dataset (shard files)")
    n = len(dataset)
    for k, a in enumerate(range(0, n, shard_size)):
        b = min(a + shard_size, n)
        block = [dataset.episodes[i] for i in range(a, b)]
        write_shard(
            directory / shard_name(k),
            block,
            dataset.metadata,
            index=k,
            first=a,
            total=n,
            compress=compress,
        )
    return load_shards(directory)
