"""One shard of a dataset directory (see :mod:`worldmodel.shards`), read in two steps.

Constructing a :class:`Shard` reads and checks its structure only: the zip directory, the
``.npy`` headers of the large arrays, and the small per-episode arrays, with the checks and
messages of :func:`worldmodel.data.load_dataset`. :meth:`Shard.open` then gives the large
arrays: read-only ``np.memmap`` views when the shard is stored uncompressed (``np.savez``,
ZIP_STORED; ``np.load`` ignores ``mmap_mode`` for ``.npz``, so each member is mapped at its
offset in the zip), else decompressed; the first time, it checks their values (zip CRCs, finite
numbers, strictly increasing times).
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.data import (
    Dataset,
    DatasetError,
    Episode,
    check_fields,
    check_file_start,
    episode_at,
    episodes_from_arrays,
    reading,
)

_LARGE = ("t", "obs", "qpos", "qvel", "actions", "rewards")  # mapped, not read at load
_SMALL = ("metadata", "episode_lengths", "terminated", "truncated", "seeds")
WIDTHS = ("obs", "actions", "qpos", "qvel")


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
        self.widths = {k: self.members[k].shape[1] for k in WIDTHS}

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
