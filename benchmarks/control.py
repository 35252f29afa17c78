"""Control at equal real-env step budgets: model-free SAC vs SAC trained in imagination vs MPC.

    python benchmarks/control.py [--budgets 5000,10000] [--seeds 0,1,2] [--out runs/control]

For each seed: ``worldmodel dyna --no-use-model`` (model-free SAC) and ``worldmodel dyna``
(SAC + mlp-ensemble imagination), both evaluated on the real Hopper-v5 at every budget (3
deterministic episodes); then CEM MPC with the world model the Dyna run fitted on the same
real steps (its own episodes are extra real steps, reported). Prints mean ± std real return
over seeds per budget with wall-clock, writes ``benchmarks/results/control.csv`` and the learning
curves to ``benchmarks/results/control_curves.png``.
"""

from __future__ import annotations

import argparse
import math
from functools import reduce
from pathlib import Path

import numpy as np
from _results import append_rows

RESULTS = Path(__file__).parent / "results" / "control.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="5000,10000")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path, default=Path("runs/control"))
    args = ap.parse_args()
    budgets = sorted(int(b) for b in args.budgets.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]

    from agents.dyna import run_dyna
    from agents.mpc import run_mpc
    from worldmodel.config import DynaConfig, PlanConfig

    every = reduce(math.gcd, budgets)
    curves: dict[str, list] = {"sac": [], "sac+imagination": []}
    mpc: list[tuple[int, float, float, int]] = []
    wall: dict[str, list[float]] = {"sac": [], "sac+imagination": [], "mpc": []}
    for seed in seeds:
        for name, use_model in (("sac", False), ("sac+imagination", True)):
            cfg = DynaConfig(steps=budgets[-1], use_model=use_model, seed=seed, eval_every=every,
                             out=args.out / f"{name}-seed{seed}")  # fmt: skip
            res = run_dyna(cfg)
            curves[name].append({s: r for s, r, _ in res["curve"]})
            wall[name].append(res["wall_s"])
            print(
                f"seed {seed} {name}: "
                + ", ".join(f"{s}: {r:.1f}" for s, r, _ in res["curve"])
                + f" ({res['wall_s']:.0f} s)"
            )
        model_dir = sorted((args.out / f"sac+imagination-seed{seed}" / "model").iterdir())[-1]
        from worldmodel.train import load

        res = run_mpc(
            load(model_dir), PlanConfig(run=model_dir, planner="cem", episodes=3, seed=seed)
        )
        mpc.append((seed, res["mean_return"], res["ms_per_action"], res["steps"]))
        wall["mpc"].append(res["ms_per_action"] * res["steps"] / 1000)
        print(
            f"seed {seed} mpc (model of the last refit): {res['mean_return']:.1f}, {res['ms_per_action']:.0f} ms/action"
        )

    rows = []
    print(f"\nmean real return (std) over seeds {seeds}, Hopper-v5")
    print(f"  {'method':<18}" + "".join(f"{b:>16}" for b in budgets) + f"{'wall s/run':>12}")
    for name, cs in curves.items():
        vals = [[c[b] for c in cs] for b in budgets]
        print(
            f"  {name:<18}"
            + "".join(f"{np.mean(v):>9.1f} ({np.std(v):>4.1f})" for v in vals)
            + f"{np.mean(wall[name]):>12.0f}"
        )
        rows += [
            (
                name,
                b,
                f"{np.mean(v):.2f}",
                f"{np.std(v):.2f}",
                len(seeds),
                f"{np.mean(wall[name]):.0f}",
            )
            for b, v in zip(budgets, vals)
        ]
    m = [r for _, r, _, _ in mpc]
    extra = int(np.mean([s for *_, s in mpc]))
    print(f"  {'mpc (cem)':<18}{np.mean(m):>9.1f} ({np.std(m):>4.1f}) at {budgets[-1]} + {extra} real steps, "
          f"{np.mean([ms for _, _, ms, _ in mpc]):.0f} ms/action")  # fmt: skip
    rows.append(
        (
            "mpc-cem",
            budgets[-1],
            f"{np.mean(m):.2f}",
            f"{np.std(m):.2f}",
            len(seeds),
            f"{np.mean(wall['mpc']):.0f}",
        )
    )
    append_rows(
        RESULTS,
        ["method", "real_steps", "mean_return", "std_return", "seeds", "wall_s_per_run"],
        rows,
    )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, cs in curves.items():
        steps = sorted(cs[0])
        vals = np.array([[c[s] for s in steps] for c in cs])
        ax.plot(steps, vals.mean(0), marker="o", label=name)
        ax.fill_between(steps, vals.min(0), vals.max(0), alpha=0.2)
    ax.scatter([budgets[-1]], [np.mean(m)], marker="*", s=120, color="k", label="mpc (cem)")
    ax.set(
        xlabel="real env steps", ylabel="mean real return", title="Hopper-v5, real-env evaluation"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS.parent / "control_curves.png", dpi=90)
    print(f"wrote {RESULTS.parent / 'control_curves.png'}")


if __name__ == "__main__":
    main()
