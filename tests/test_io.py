"""Atomic writes: all or nothing, and no litter from writers that were killed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worldmodel.io import atomic_write, atomic_write_json, atomic_write_text


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_replaces_and_keeps_old_file_on_error(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    atomic_write_json(path, {"x": 1})
    assert path.read_text() == '{\n  "x": 1\n}\n'

    def fail(f) -> None:
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == '{\n  "x": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_nan_is_refused_and_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "b.json", {"loss": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_removes_temporaries_of_killed_writers_only(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.txt"
    orphan = tmp_path / f".ckpt.txt.{_dead_pid()}.abc123xy.tmp"
    live = tmp_path / f".ckpt.txt.{os.getppid()}.zz99zz99.tmp"  # a running process's write
    other = tmp_path / f".other.txt.{_dead_pid()}.abc123xy.tmp"  # another file's temporary
    for p in (orphan, live, other):
        p.write_text("partial")
    atomic_write_text(path, "done")
    assert path.read_text() == "done"
    assert not orphan.exists()
    assert live.exists() and other.exists()
