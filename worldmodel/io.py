"""File writes: atomic ones (a reader never sees a half-written file, and a crash keeps the old
one) and the CSV writers (a whole table atomically, or rows appended)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync it, then rename it
    over ``path`` (atomic on POSIX). On any error the temporary file is removed and ``path``
    is left as it was. A temporary file that a killed writer left beside ``path`` (named
    ``.NAME.PID.XXXXXXXX.tmp``, PID no longer running on this machine) is removed afterwards."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _remove_orphans(path)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _remove_orphans(path: Path) -> None:
    """Delete temporaries of ``path`` whose writer process is gone (SIGKILL, power loss)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp")
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        m = pattern.fullmatch(tmp.name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write JSON (indented, keys in insertion order) atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def atomic_write_csv(
    path: str | os.PathLike,
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    lineterminator: str = "\r\n",
) -> Path:
    """Write a whole CSV table atomically: a header of ``columns``, then ``rows`` (keys outside
    ``columns`` are ignored, missing ones left empty); no columns give an empty file.
    ``lineterminator`` is the csv module's (``"\r\n"`` by default)."""
    buf = io.StringIO()
    if columns:
        w = csv.DictWriter(
            buf, fieldnames=list(columns), extrasaction="ignore", lineterminator=lineterminator
        )
        w.writeheader()
        w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def append_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Append ``rows`` (dicts with the first row's keys) to a CSV file, writing the header when
    the file is new; makes the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            w.writeheader()
        w.writerows(rows)
    return path
