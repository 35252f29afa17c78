"""Two latent-odes averaged against one ensemble, from the printed tables of
``benchmarks/world_models.py --seed-average`` run on each pair of three training seeds.

    python benchmarks/results/world_models_ablation/diagnostics/pair_average.py \
        benchmarks/results/world_models_ablation/pairs/walker_random_*.txt

Each input file is one pair (``--seeds 0,1``, ``1,2`` or ``0,2``): its printed table
(``.txt``), or the ``world_models.csv`` or ``world_models_alive.csv`` of the same run with
``--results DIR`` instead of ``--no-csv`` (full precision). Over the files given it
prints, per table (all starts, or only those whose real episode still runs) and test timing,
at h=1 / 5 / 10 / 20 / 30: the latent-ode's mean error over the seeds (each seed is in two
pairs, so the mean of the pairs' means), the mean over pairs of the two latent-odes' averaged
prediction (``latent-ode-avg2``), the same two for the ensemble (``mlp-ensemble-avg2``: two
ensembles, 10 members, averaged), and the latent-ode pair over one ensemble and over the
ensemble pair.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import numpy as np

HORIZONS = (1, 2, 5, 10, 20, 30, 40, 50)
SHOWN = (1, 5, 10, 20, 30)
MODELS = ("latent-ode", "latent-ode-avg2", "mlp-ensemble", "mlp-ensemble-avg2")


def parse(path: Path) -> dict[tuple[str, str, str], list[float]]:
    """(table, test, model) -> errors at HORIZONS, from one printed run."""
    out: dict[tuple[str, str, str], list[float]] = {}
    table = test = ""
    for line in path.read_text().splitlines():
        if "open-loop MSE" in line:
            table = "all starts"
        elif "still runs at h" in line:
            table = "while running"
        elif line.startswith(" test timing "):
            test = line.removeprefix(" test timing ").strip()
        elif (m := re.match(r"^  (\S+)\s{2,}(.*)$", line)) and m[1] in MODELS and test:
            cells = re.sub(r"\([^)]*\)", " ", m[2]).split()
            out[(table, test, m[1])] = [float(c) for c in cells[: len(HORIZONS)]]
    return out


def parse_csv(path: Path) -> dict[tuple[str, str, str], list[float]]:
    """The same from the ``world_models.csv`` (all starts) or ``world_models_alive.csv``
    (named ``*alive*``: while running) a run wrote with ``--results DIR``, at full precision:
    a model's rows are averaged over the pair's two seeds."""
    rows: dict[tuple[str, str, str], list[list[float]]] = {}
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            if r["model"] in MODELS:
                key = (
                    "while running" if "alive" in path.name else "all starts",
                    r["test"],
                    r["model"],
                )
                rows.setdefault(key, []).append([float(r[f"h{h}"]) for h in HORIZONS])
    return {k: list(np.mean(v, axis=0)) for k, v in rows.items()}


def main(paths: list[Path]) -> None:
    runs = [parse_csv(p) if p.suffix == ".csv" else parse(p) for p in paths]
    digits = 4 if all(p.suffix == ".csv" for p in paths) else 3  # the printed tables have 3
    keys = [k for k in runs[0] if k[2] == "latent-ode"]
    for table, test, _ in keys:
        print(
            f"\n{table}, test timing {test} ({len(runs)} pairs): h=" + " / ".join(map(str, SHOWN))
        )
        mean = {m: np.mean([r[(table, test, m)] for r in runs], axis=0) for m in MODELS}
        idx = [HORIZONS.index(h) for h in SHOWN]
        for m in MODELS:
            print(f"  {m:<26}" + " / ".join(f"{mean[m][i]:.{digits}g}" for i in idx))
        for other in ("mlp-ensemble", "mlp-ensemble-avg2"):
            ratio = mean["latent-ode-avg2"] / mean[other]
            print(f"  {'avg2 / ' + other:<26}" + " / ".join(f"{ratio[i]:.2f}" for i in idx))


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
