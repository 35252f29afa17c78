"""Policies of several qualities for the world-model benchmark's policy-data regimes.

    python benchmarks/policies.py --env Hopper-v5 [--seed 2] [--steps 50000] [--utd 5]

Trains model-free SAC with ``worldmodel dyna --no-use-model --gradient-steps UTD --keep-agents``
(resumable: an interrupted run goes on from its last evaluation; a finished one is reused), keeping
the agent of every evaluation (3 deterministic episodes every 2,500 real steps). From those it
picks, as offline-RL datasets do (D4RL's random / medium / expert):

- ``expert``: the agent with the best evaluation;
- ``medium``: among the earlier agents, the one whose evaluation is closest to a third of it.

Each is exported (actor only, :func:`agents.policies.export_policy`, ~0.3 MB) to
``benchmarks/policies/ENV/QUALITY.zip``, loaded later without unpickling, and re-evaluated on 10
real episodes at the env's fixed step and under the benchmark's irregular timing (3-5 physics
substeps per action); ``benchmarks/policies/ENV/policies.json`` records the choice, the returns
and this command. ``random`` needs no file. The benchmark never trains these again.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

HERE = Path(__file__).parent / "policies"
TIMINGS = {"fixed": "fixed", "irregular 3-5": "uniform:3-5"}


def pick(curve: list[tuple[int, float]]) -> dict[str, tuple[int, float]]:
    """``{"medium": (step, return), "expert": (step, return)}`` from an evaluation curve."""
    best = max(range(len(curve)), key=lambda i: curve[i][1])
    target = curve[best][1] / 3
    earlier = curve[:best] or curve[:1]
    medium = min(earlier, key=lambda c: abs(c[1] - target))
    return {"medium": medium, "expert": curve[best]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="Hopper-v5")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--utd", type=int, default=5, help="SAC gradient steps per real step")
    ap.add_argument("--runs", type=Path, default=Path("runs/policies"))
    ap.add_argument("--episodes", type=int, default=10, help="real episodes per re-evaluation")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from agents.dyna import evaluate_real, run_dyna
    from agents.policies import SB3Policy, export_policy
    from envs.factory import EnvSpec, make_env
    from worldmodel.config import DynaConfig
    from worldmodel.io import atomic_write_json

    out = args.runs / f"{args.env}-sac-utd{args.utd}-seed{args.seed}"
    cfg = DynaConfig(
        env=args.env,
        steps=args.steps,
        use_model=False,
        gradient_steps=args.utd,
        seed=args.seed,
        eval_every=2_500,
        keep_agents=True,
        out=out,
    )
    res = run_dyna(cfg)
    with (out / "curve.csv").open(newline="") as f:
        curve = [(int(r["real_steps"]), float(r["mean_real_return"])) for r in csv.DictReader(f)]
    dest = HERE / args.env
    env = make_env(EnvSpec(args.env), bare=True)
    record = {
        "command": "python benchmarks/policies.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "training": {
            "env": args.env,
            "seed": args.seed,
            "real_steps": args.steps,
            "gradient_steps_per_real_step": args.utd,
            "wall_s": round(res["wall_s"], 1),
            "curve": curve,
        },
        "policies": {},
    }
    for quality, (step, ret) in pick(curve).items():
        path = export_policy(out / "agents" / f"step_{step:07d}.zip", dest / f"{quality}.zip")
        pol = SB3Policy(path, env.observation_space, env.action_space)
        returns = {
            name: evaluate_real(pol.policy, args.env, timing, args.episodes, seed=20_000)
            for name, timing in TIMINGS.items()
        }
        record["policies"][quality] = {
            "file": path.name,
            "real_steps": step,
            "training_eval_return": ret,
            **{
                f"return_{name}": [round(float(np.mean(r)), 1), round(float(np.std(r)), 1)]
                for name, r in returns.items()
            },
        }
        print(
            f"{args.env} {quality}: step {step}, "
            + ", ".join(f"{n} {np.mean(r):.0f} ± {np.std(r):.0f}" for n, r in returns.items())
        )
    atomic_write_json(dest / "policies.json", record)
    print(f"wrote {dest / 'policies.json'}")


if __name__ == "__main__":
    main()
