"""Append benchmark rows to a CSV under benchmarks/results/ (header written once)."""

from __future__ import annotations

import csv
import platform
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path


def append_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Append ``rows`` to ``path``, each prefixed with a UTC timestamp and the machine name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["timestamp", "machine", *header])
        for row in rows:
            w.writerow([stamp, platform.node() or "?", *row])
    print(f"appended to {path}")
