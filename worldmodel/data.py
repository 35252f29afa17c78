"""Trajectory datasets: ragged episodes of irregularly timed rollouts, in one ``.npz`` file
or in a directory of such files read lazily (shards, see :mod:`worldmodel.shards`).

Convention (shared by every part of the project, see docs/design.md, "Time and actions"):
``t`` is seconds since the episode's start, strictly increasing; action ``a_i`` is held on
``[t_i, t_{i+1})``; an episode with ``T`` observations has ``T - 1`` actions and rewards;
``qpos``/``qvel`` are MuJoCo's full physics state at every ``t``.

File layout (format version 1), all arrays plain (loaded with ``allow_pickle=False``):

==================  ====================  ==============================================
field               shape                 meaning
==================  ====================  ==============================================
``metadata``        ()  str               JSON: format_version, env_id, env_kwargs, ...
``episode_lengths`` (N,) int64            observations per episode, each >= 2
``t``               (sum T,) float64      seconds since each episode's reset
``obs``             (sum T, obs_dim)      observations
``qpos``/``qvel``   (sum T, nq) / (nv)    physics state (nq = nv = 0 outside MuJoCo)
``actions``         (sum T - N, act_dim)  float32, held on [t_i, t_{i+1})
``rewards``         (sum T - N,) float64  reward of each step
``terminated``      (N,) bool             episode ended by the env's termination
``truncated``       (N,) bool             episode ended by a time limit
``seeds``           (N,) int64            ``reset(seed=...)`` of each episode (-1: none)
==================  ====================  ==============================================
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import struct
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.io import atomic_write

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
_EPISODE_FIELDS = ("t", "obs", "qpos", "qvel")
_STEP_FIELDS = ("actions", "rewards")
_REAL = "iuf"  # dtype kinds of integer and floating arrays (not bool, complex, time or text)
_FILE_FIELDS = (
    "metadata",
    "episode_lengths",
    *_EPISODE_FIELDS,
    *_STEP_FIELDS,
    "terminated",
    "truncated",
    "seeds",
)


class DatasetError(ValueError):
    """A dataset file or episode is malformed; the message names the file and the problem."""


@dataclass
class Episode:
    """One recorded episode of ``T`` observations.

    Attributes:
        t: ``(T,)`` float64, seconds since reset, strictly increasing.
        obs: ``(T, obs_dim)`` float64 observations.
        actions: ``(T-1, act_dim)`` float32; ``actions[i]`` is held on ``[t[i], t[i+1])``.
        rewards: ``(T-1,)`` float64 reward of each step.
        qpos: ``(T, nq)`` MuJoCo positions at each ``t`` (``nq = 0`` outside MuJoCo).
        qvel: ``(T, nv)`` MuJoCo velocities at each ``t``.
        terminated: the env terminated the episode on its last step.
        truncated: a time limit cut the episode on its last step.
        seed: the ``reset(seed=...)`` that started it, ``-1`` if none.
    """

    t: np.ndarray
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    qpos: np.ndarray
    qvel: np.ndarray
    terminated: bool = False
    truncated: bool = False
    seed: int = -1

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def dt(self) -> np.ndarray:
        """``(T-1,)`` seconds each action was held."""
        return np.diff(self.t)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last observation."""
        return float(self.t[-1] - self.t[0])

    def validate(self, where: str = "episode") -> None:
        """Raise :class:`DatasetError` naming ``where`` and the field if anything is off."""
        t = np.asarray(self.t)
        if t.ndim != 1 or t.shape[0] < 2:
            raise DatasetError(f"{where}: field 't' has shape {t.shape}, expected (T,) with T >= 2")
        T = t.shape[0]
        for name, arr, rows in (
            ("obs", self.obs, T),
            ("qpos", self.qpos, T),
            ("qvel", self.qvel, T),
            ("actions", self.actions, T - 1),
        ):
            arr = np.asarray(arr)
            if arr.ndim != 2 or arr.shape[0] != rows:
                raise DatasetError(
                    f"{where}: field '{name}' has shape {arr.shape}, expected ({rows}, dim)"
                )
        if np.asarray(self.rewards).shape != (T - 1,):
            raise DatasetError(
                f"{where}: field 'rewards' has shape {np.asarray(self.rewards).shape}, "
                f"expected ({T - 1},)"
            )
        for name in ("t", "obs", "qpos", "qvel", "actions", "rewards"):
            arr = np.asarray(getattr(self, name))
            if arr.dtype.kind not in _REAL:
                raise DatasetError(
                    f"{where}: field '{name}' has dtype {arr.dtype}, expected real numbers"
                )
            bad = ~np.isfinite(arr)
            if bad.any():
                idx = np.argwhere(bad)[0]
                raise DatasetError(
                    f"{where}: field '{name}' has a non-finite value ({arr[tuple(idx)]}) at index "
                    f"{tuple(int(i) for i in idx)}"
                )
        steps = np.diff(t)
        if (steps <= 0).any():
            i = int(np.argmax(steps <= 0))
            raise DatasetError(
                f"{where}: field 't' is not strictly increasing: "
                f"t[{i}]={t[i]!r}, t[{i + 1}]={t[i + 1]!r}"
            )


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape recorded data, for dataset and run metadata."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("worldmodel", "numpy", "gymnasium", "mujoco", "torch", "stable-baselines3"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def check_metadata(metadata: dict[str, Any], obs_dim: int, act_dim: int) -> None:
    """``DatasetError`` naming the first metadata entry the episodes' arrays contradict: the
    env's ``observation_shape`` and action bounds against their widths, and a non-positive
    ``default_dt`` or ``physics_timestep`` [s]."""
    shape = metadata.get("observation_shape")
    if shape is not None and list(shape) != [obs_dim]:
        raise DatasetError(
            f"observations have {obs_dim} dims, the metadata's observation_shape says {shape}"
        )
    for key in ("action_low", "action_high"):
        bound = metadata.get(key)
        if bound is not None and np.shape(bound) != (act_dim,):
            raise DatasetError(
                f"actions have {act_dim} dims, the metadata's {key} has {np.shape(bound)}"
            )
    for key in ("default_dt", "physics_timestep"):
        value = metadata.get(key)
        if value is not None and not (isinstance(value, (int, float)) and 0 < value < math.inf):
            raise DatasetError(
                f"metadata {key} must be a positive number of seconds, got {value!r}"
            )


@dataclass
class Dataset:
    """Ragged episodes of one env plus metadata.

    ``metadata`` holds at least ``format_version`` and ``env_id``; collection adds
    ``env_kwargs``, ``wrappers``, ``policy``, ``seed``, ``physics_timestep``, ``default_dt``,
    ``max_episode_steps`` and ``library_versions``.
    """

    episodes: list[Episode]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.episodes = list(self.episodes)
        self.metadata = {"format_version": FORMAT_VERSION, **self.metadata}
        if not self.metadata.get("env_id"):
            raise DatasetError("dataset metadata has no 'env_id'")
        if not self.episodes:
            raise DatasetError("dataset has no episodes")
        first = self.episodes[0]
        dims = {
            k: np.asarray(getattr(first, k)).shape[1] for k in ("obs", "actions", "qpos", "qvel")
        }
        for i, ep in enumerate(self.episodes):
            ep.validate(where=f"episode {i}")
            for k, d in dims.items():
                if np.asarray(getattr(ep, k)).shape[1] != d:
                    raise DatasetError(
                        f"episode {i}: field '{k}' has width "
                        f"{np.asarray(getattr(ep, k)).shape[1]}, "
                        f"but episode 0 has {d}"
                    )
        check_metadata(self.metadata, dims["obs"], dims["actions"])

    # -- shape and size ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self) -> Iterator[Episode]:
        return iter(self.episodes)

    def __getitem__(self, i: int) -> Episode:
        return self.episodes[i]

    @property
    def env_id(self) -> str:
        return str(self.metadata["env_id"])

    @property
    def timing(self) -> str:
        """The collection's ``IrregularTiming`` spec from the metadata (``fixed`` if none)."""
        wrappers = self.metadata.get("wrappers", [])
        return next((w["timing"] for w in wrappers if w.get("name") == "IrregularTiming"), "fixed")

    @property
    def obs_dim(self) -> int:
        return int(self.episodes[0].obs.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.episodes[0].actions.shape[1])

    @property
    def num_steps(self) -> int:
        """Total transitions (actions) over all episodes."""
        return sum(len(ep) - 1 for ep in self.episodes)

    def concat(self, name: str) -> np.ndarray:
        """One field of every episode stacked along axis 0."""
        return np.concatenate([np.asarray(getattr(ep, name)) for ep in self.episodes])

    # -- splitting and merging ---------------------------------------------------------------
    def subset(self, indices: Sequence[int]) -> Dataset:
        """The episodes at ``indices`` (same metadata)."""
        return Dataset([self.episodes[i] for i in indices], dict(self.metadata))

    def split_indices(
        self, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
    ) -> dict[str, np.ndarray]:
        """Deterministic train/val/test episode indices: a permutation drawn from ``seed``.

        Every split with a positive fraction gets at least one episode when there are enough.
        """
        if (
            len(fractions) != 3
            or any(f < 0 for f in fractions)
            or not np.isclose(sum(fractions), 1)
        ):
            raise ValueError(
                f"split fractions must be 3 non-negative numbers summing to 1, got {fractions}"
            )
        n = len(self)
        perm = np.random.default_rng(seed).permutation(n)
        counts = [int(round(f * n)) for f in fractions]
        for k in (1, 2):  # keep val and test non-empty when asked for and possible
            if fractions[k] > 0 and counts[k] == 0 and n - sum(counts) + counts[0] > 1:
                counts[k] = 1
        counts[0] = n - counts[1] - counts[2]
        bounds = np.cumsum([0, *counts])
        return {name: np.sort(perm[bounds[i] : bounds[i + 1]]) for i, name in enumerate(SPLITS)}

    def split(
        self, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
    ) -> dict[str, Dataset | None]:
        """``{"train", "val", "test"}`` sub-datasets by episode (``None`` for an empty split)."""
        return {
            k: (self.subset(idx.tolist()) if len(idx) else None)
            for k, idx in self.split_indices(fractions, seed).items()
        }

    @staticmethod
    def merge(datasets: Sequence[Dataset]) -> Dataset:
        """Concatenate datasets of the same env (same ``env_id`` and field widths); lazy (a
        :class:`~worldmodel.shards.ShardedDataset`) when one of them is.

        The result's metadata is the first's, with ``merged_from`` listing every source's.
        """
        if not datasets:
            raise DatasetError("nothing to merge")
        for i, d in enumerate(datasets):
            if not isinstance(d, Dataset):
                raise TypeError(
                    f"merge takes Dataset objects (load_dataset loads a path); item {i} is a "
                    f"{type(d).__name__}"
                )
        first = datasets[0]
        for i, d in enumerate(datasets[1:], start=1):
            if d.env_id != first.env_id:
                raise DatasetError(
                    f"cannot merge dataset {i} of env {d.env_id!r} "
                    f"with dataset 0 of env {first.env_id!r}"
                )
        meta = {k: v for k, v in first.metadata.items() if k != "merged_from"}
        meta["merged_from"] = [d.metadata for d in datasets]
        if any(not isinstance(d.episodes, list) for d in datasets):  # sharded: stay lazy
            from worldmodel.shards import merge_lazy

            return merge_lazy(datasets, meta)
        return Dataset([ep for d in datasets for ep in d.episodes], meta)

    # -- files -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, compress: bool = True) -> Path:
        """Write the dataset to one ``.npz`` file atomically (``compress=False``: stored, so
        that a shard can be memory-mapped)."""
        lengths = np.array([len(ep) for ep in self.episodes], dtype=np.int64)
        arrays = {
            "metadata": np.array(json.dumps(self.metadata, allow_nan=False)),
            "episode_lengths": lengths,
            "t": self.concat("t").astype(np.float64),
            "obs": self.concat("obs").astype(np.float64),
            "qpos": self.concat("qpos").astype(np.float64),
            "qvel": self.concat("qvel").astype(np.float64),
            "actions": self.concat("actions").astype(np.float32),
            "rewards": self.concat("rewards").astype(np.float64),
            "terminated": np.array([ep.terminated for ep in self.episodes], dtype=bool),
            "truncated": np.array([ep.truncated for ep in self.episodes], dtype=bool),
            "seeds": np.array([ep.seed for ep in self.episodes], dtype=np.int64),
        }
        savez = np.savez_compressed if compress else np.savez
        return atomic_write(path, lambda f: savez(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Dataset:
        """Load and validate a dataset file; any problem raises :class:`DatasetError` whose
        message starts with the file's path. A directory of shards loads lazily
        (:func:`worldmodel.shards.load_shards`, a :class:`~worldmodel.shards.ShardedDataset`)."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"a dataset path must be a str or a path, got {type(path).__name__}")
        path = Path(path)
        if path.is_dir():
            from worldmodel.shards import load_shards

            return load_shards(path)
        try:
            return _load(path)
        except DatasetError as err:
            raise DatasetError(f"{path}: {err}") from None


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Load and validate a dataset file or shard directory (see :meth:`Dataset.load`)."""
    return Dataset.load(path)


def check_file_start(path: Path) -> None:
    """Refuse a missing, empty or non-zip ``path`` (reads its first 4 bytes only)."""
    if not path.exists():
        raise DatasetError("no such file")
    if path.is_dir():
        raise DatasetError("is a directory, expected a .npz dataset file")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise DatasetError("empty file (0 bytes)")
    if head != b"PK\x03\x04":
        raise DatasetError("not a .npz (zip) file: truncated or corrupt header")


@contextmanager
def reading() -> Iterator[None]:
    """Turn the errors of reading a damaged zip or ``.npy`` into :class:`DatasetError`."""
    try:
        yield
    except DatasetError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        struct.error,
        NotImplementedError,  # zipfile: an unknown zip version or compression method
        RuntimeError,  # zipfile: "encrypted, password required"
    ) as err:
        raise DatasetError(f"not a readable .npz file (truncated or corrupt): {err}") from None
    except MemoryError as err:  # a corrupt .npy header can claim an enormous shape
        raise DatasetError(
            f"not a readable .npz file (an array too large to load): {err}"
        ) from None
    except ValueError as err:  # object arrays refused by allow_pickle=False, bad headers
        raise DatasetError(f"not a valid dataset file: {err}") from None


def _load(path: Path) -> Dataset:
    check_file_start(path)
    raw = path.read_bytes()
    with reading(), np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        missing = [k for k in _FILE_FIELDS if k not in npz.files]
        if missing:
            raise DatasetError(
                f"missing field {missing[0]!r} (fields present: {sorted(npz.files)})"
            )
        arrays = {k: npz[k] for k in _FILE_FIELDS}
    meta, lengths = check_fields(arrays)
    return Dataset(episodes_from_arrays(arrays, lengths), meta)


def check_fields(arrays: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    """Check a file's fields against each other: metadata, format version, shapes, flag dtypes.

    ``arrays`` maps every field to an array, or (for the large ones) anything with ``shape``
    and ``ndim`` (a shard's ``.npy`` header); ``metadata``, ``episode_lengths``,
    ``terminated``, ``truncated`` and ``seeds`` must be arrays. Returns the metadata and the
    ``(N,)`` episode lengths. The values of episodes are checked by :class:`Dataset`.
    """
    try:
        meta = json.loads(str(arrays["metadata"]))
    except json.JSONDecodeError as err:
        raise DatasetError(f"field 'metadata' is not valid JSON: {err}") from None
    if not isinstance(meta, dict):
        raise DatasetError("field 'metadata' is not a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetError(
            f"unknown format version {version!r} (this worldmodel reads version {FORMAT_VERSION})"
        )

    lengths = arrays["episode_lengths"]
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu" or len(lengths) == 0:
        raise DatasetError(
            "field 'episode_lengths' must be a non-empty (N,) integer array, "
            f"got {lengths.shape} {lengths.dtype}"
        )
    if (lengths < 2).any():
        raise DatasetError(f"episode {int(np.argmax(lengths < 2))} has fewer than 2 observations")
    n, total = len(lengths), sum(int(x) for x in lengths)  # Python ints: no wraparound
    expected = {
        "t": (total,),
        "obs": (total, None),
        "qpos": (total, None),
        "qvel": (total, None),
        "actions": (total - n, None),
        "rewards": (total - n,),
        "terminated": (n,),
        "truncated": (n,),
        "seeds": (n,),
    }
    for name, shape in expected.items():
        arr = arrays[name]
        if arr.ndim != len(shape) or any(
            s is not None and s != a for s, a in zip(shape, arr.shape)
        ):
            want = (
                "("
                + ", ".join("dim" if s is None else str(s) for s in shape)
                + ("," if len(shape) == 1 else "")
                + ")"
            )
            raise DatasetError(f"field {name!r} has shape {arr.shape}, expected {want}")

    for name in ("terminated", "truncated"):
        if arrays[name].dtype.kind != "b":
            raise DatasetError(f"field {name!r} has dtype {arrays[name].dtype}, expected bool")
    if arrays["seeds"].dtype.kind not in "iu":
        raise DatasetError(f"field 'seeds' has dtype {arrays['seeds'].dtype}, expected integers")

    return meta, lengths


def episodes_from_arrays(arrays: dict[str, np.ndarray], lengths: np.ndarray) -> list[Episode]:
    """The episodes of a file's checked fields, as views of its arrays."""
    starts = np.concatenate([[0], np.cumsum(lengths)])
    return [episode_at(arrays, starts, i) for i in range(len(lengths))]


def episode_at(arrays: dict[str, np.ndarray], starts: np.ndarray, i: int) -> Episode:
    """Episode ``i`` of a file's fields, as views; ``starts`` ``(N + 1,)``: offsets of each
    episode's first observation (its actions and rewards start ``i`` rows earlier)."""
    a, b = int(starts[i]), int(starts[i + 1])
    sa, sb = a - i, b - i - 1
    return Episode(
        t=arrays["t"][a:b],
        obs=arrays["obs"][a:b],
        qpos=arrays["qpos"][a:b],
        qvel=arrays["qvel"][a:b],
        actions=arrays["actions"][sa:sb],
        rewards=arrays["rewards"][sa:sb],
        terminated=bool(arrays["terminated"][i]),
        truncated=bool(arrays["truncated"][i]),
        seed=int(arrays["seeds"][i]),
    )


# -- streaming over many episodes (a sharded dataset need not fit in memory) ------------------
CHUNK_ROWS = 1 << 20
"""Rows that :func:`field_chunks` stacks at once (88 MiB of 11-dim float64 observations)."""


def episode_lengths(episodes: Sequence[Episode]) -> np.ndarray:
    """``(N,)`` observations per episode; read without loading from a lazy sequence."""
    lengths = getattr(episodes, "lengths", None)
    if lengths is not None:
        return np.asarray(lengths)
    return np.array([len(ep) for ep in episodes], dtype=np.int64)


def field_chunks(
    episodes: Sequence[Episode], name: str, max_rows: int = CHUNK_ROWS
) -> Iterator[np.ndarray]:
    """Field ``name`` of consecutive episodes stacked along axis 0, in chunks of at most
    ``max_rows`` rows (an episode longer than that is a chunk of its own): the whole
    concatenation, as one chunk, when it fits."""
    parts: list[np.ndarray] = []
    rows = 0
    for ep in episodes:
        arr = np.asarray(getattr(ep, name))
        if parts and rows + len(arr) > max_rows:
            yield np.concatenate(parts)
            parts, rows = [], 0
        parts.append(arr)
        rows += len(arr)
    if parts:
        yield np.concatenate(parts)


@dataclass
class Moments:
    """Per-dimension count, mean, std, mean ``|x|``, min and max of ``(rows, dim)`` chunks.

    Chunks merge with Chan et al.'s pairwise update; a single chunk gives numpy's own figures
    exactly (``x.mean(0)``, ``x.std(0)``, ...).
    """

    n: int = 0
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    abs_mean: np.ndarray | None = None
    min: np.ndarray | None = None
    max: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:
        k = len(x)
        if k == 0:
            return
        mean, std, abs_mean = x.mean(0), x.std(0), np.abs(x).mean(0)
        if self.n == 0:
            self.n, self.mean, self.std, self.abs_mean = k, mean, std, abs_mean
            self.min, self.max = x.min(0), x.max(0)
            return
        n, total = self.n, self.n + k
        delta = mean - self.mean
        m2 = self.std**2 * n + std**2 * k + delta**2 * (n * k / total)
        self.mean = self.mean + delta * (k / total)
        self.std = np.sqrt(m2 / total)
        self.abs_mean = (self.abs_mean * n + abs_mean * k) / total
        self.min, self.max = np.minimum(self.min, x.min(0)), np.maximum(self.max, x.max(0))
        self.n = total
