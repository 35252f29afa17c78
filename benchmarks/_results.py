"""Append benchmark rows to a CSV under benchmarks/results/ (header written once)."""

from __future__ import annotations

import csv
import platform
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path


def append_rows(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    skip_recorded: bool = False,
) -> None:
    """Append ``rows`` to ``path``, each prefixed with a UTC timestamp and the machine name.

    With ``skip_recorded``, a row whose fields (after timestamp and machine) equal those of a
    row already in the file is left out: re-aggregating finished runs records nothing new.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    rows = [[str(v) for v in row] for row in rows]
    if skip_recorded and not new:
        with path.open(newline="") as f:
            recorded = {tuple(r[2:]) for r in csv.reader(f)}
        kept = [row for row in rows if tuple(row) not in recorded]
        if len(kept) < len(rows):
            print(f"{len(rows) - len(kept)} row(s) already in {path}, not appended again")
        rows = kept
        if not rows:
            return
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["timestamp", "machine", *header])
        for row in rows:
            w.writerow([stamp, platform.node() or "?", *row])
    print(f"appended to {path}")
