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
import math
import operator
import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.data import (
    FORMAT_VERSION,
    Dataset,
    DatasetError,
    Episode,
    check_fields,
    check_file_start,
    episode_at,
    episodes_from_arrays,
    reading,
)
from worldmodel.io import atomic_write_json

INDEX = "index.json"
INDEX_FORMAT = "worldmodel-shards"
SHARD_GLOB = "shard-*.npz"
_LARGE = ("t", "obs", "qpos", "qvel", "actions", "rewards")  # mapped, not read at load
_SMALL = ("metadata", "episode_lengths", "terminated", "truncated", "seeds")
_WIDTHS = ("obs", "actions", "qpos", "qvel")


def shard_name(k: int) -> str:
    """File name of shard ``k``."""
    return f"shard-{k:06d}.npz"


@dataclass(frozen=True)
class _Member:
    """A large array of a shard: its ``.npy`` header, and where its bytes are in the file."""

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int | None  # of the array's first byte in the shard file; None when compressed
    crc: int  # zip CRC-32 of the member: its .npy header and data
    header: int = 0  # bytes of .npy header before ``offset``

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # Python ints: no wraparound


def _local_data_start(fh: Any, info: zipfile.ZipInfo) -> int:
    """Byte offset of a zip member's data: after its local header (30 bytes, name, extra)."""
    fh.seek(info.header_offset)
    head = fh.read(30)
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header of member {info.filename!r}")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return info.header_offset + 30 + name_len + extra_len


def _read_member_header(zf: zipfile.ZipFile, fh: Any, name: str, size: int) -> _Member:
    info = zf.getinfo(name + ".npy")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"field {name!r}: unsupported .npy version {version}")
        header_len = f.tell()
    if dtype.hasobject:
        raise ValueError(f"field {name!r} holds Python objects (pickles are never loaded)")
    member = _Member(tuple(int(s) for s in shape), dtype, None, info.CRC)
    if info.compress_type == zipfile.ZIP_STORED and (not fortran or len(shape) < 2):
        offset = _local_data_start(fh, info) + header_len
        if header_len + member.nbytes != info.file_size or offset + member.nbytes > size:
            raise EOFError(f"field {name!r}: its .npy header does not match its size in the zip")
        member = _Member(member.shape, dtype, offset, info.CRC, header_len)
    return member


class Shard:
    """One shard file: structure read and checked on construction, arrays opened on demand.

    Attributes:
        path: the file.
        index, first, total: shard number ``k``, its first global episode, and the
            ``dataset_episodes`` its writer aimed at.
        lengths: ``(n,)`` int64 observations per episode; ``starts`` ``(n + 1,)`` offsets.
        metadata: the dataset metadata (without the ``shard`` entry).
        widths: ``obs``/``actions``/``qpos``/``qvel`` widths.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._read()
        except DatasetError as err:
            raise DatasetError(f"{self.path}: {err}") from None
        self.checked = False  # values verified (first open)

    def _read(self) -> None:
        check_file_start(self.path)
        size = self.path.stat().st_size
        with reading(), open(self.path, "rb") as fh, zipfile.ZipFile(fh) as zf:
            present = sorted(n.removesuffix(".npy") for n in zf.namelist())
            missing = [k for k in (*_SMALL, *_LARGE) if k not in present]
            if missing:
                raise DatasetError(f"missing field {missing[0]!r} (fields present: {present})")
            small = {}
            for name in _SMALL:
                with zf.open(name + ".npy") as f:
                    small[name] = np.lib.format.read_array(f, allow_pickle=False)
            self.members = {name: _read_member_header(zf, fh, name, size) for name in _LARGE}
        meta, lengths = check_fields({**small, **self.members})
        info = meta.pop("shard", None)
        keys = ("index", "first_episode", "episodes", "dataset_episodes")
        if not isinstance(info, dict) or not all(isinstance(info.get(k), int) for k in keys):
            raise DatasetError(
                "metadata has no 'shard' entry with integer "
                + ", ".join(repr(k) for k in keys)
                + ": not a shard (a dataset directory holds only shard-*.npz written by worldmodel)"
            )
        if info["episodes"] != len(lengths):
            raise DatasetError(
                f"metadata says the shard holds {info['episodes']} episodes, "
                f"field 'episode_lengths' has {len(lengths)}"
            )
        if self.path.name != shard_name(info["index"]):
            raise DatasetError(
                f"its metadata says it is shard {info['index']} (episodes {info['first_episode']}"
                f"-{info['first_episode'] + len(lengths) - 1}), which belongs in "
                f"{shard_name(info['index'])}: renamed or copied by hand?"
            )
        self.index, self.first, self.total = (
            info["index"],
            info["first_episode"],
            info["dataset_episodes"],
        )
        self.metadata = meta
        self.lengths = lengths.astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])
        self.flags = {k: small[k] for k in ("terminated", "truncated", "seeds")}
        self.widths = {k: self.members[k].shape[1] for k in _WIDTHS}

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def steps(self) -> int:
        return int(self.lengths.sum()) - len(self)

    @property
    def mappable(self) -> bool:
        """Stored uncompressed: its arrays are memory-mapped, not read."""
        return all(m.offset is not None for m in self.members.values())

    def open(self) -> dict[str, np.ndarray]:
        """The large arrays: read-only ``np.memmap`` views, or loaded when compressed. The
        first time, also checks the values (CRCs, finite numbers, increasing times)."""
        with reading():
            if self.mappable:
                whole = np.memmap(self.path, dtype=np.uint8, mode="r")
                if not self.checked:  # np.load checks the CRCs of a compressed shard
                    for k, m in self.members.items():
                        if zlib.crc32(whole[m.offset - m.header : m.offset + m.nbytes]) != m.crc:
                            raise DatasetError(f"{self.path}: field {k!r} fails its zip CRC check")
                arrays = {
                    k: whole[m.offset : m.offset + m.nbytes].view(m.dtype).reshape(m.shape)
                    for k, m in self.members.items()
                }
            else:
                with np.load(self.path, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in _LARGE}
        if not self.checked:
            try:
                Dataset(self.episodes(arrays), {**self.metadata})
            except DatasetError as err:
                raise DatasetError(f"{self.path}: {err}") from None
            self.checked = True
        return arrays

    def episodes(self, arrays: dict[str, np.ndarray]) -> list[Episode]:
        return episodes_from_arrays({**arrays, **self.flags}, self.lengths)

    def episode(self, j: int, arrays: dict[str, np.ndarray]) -> Episode:
        """Episode ``j`` of this shard as views of ``arrays``."""
        return episode_at({**arrays, **self.flags}, self.starts, j)


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
    return {k: int(np.asarray(getattr(episodes[0], k)).shape[1]) for k in _WIDTHS}


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
