"""CEM MPC over a grid of planner settings, with the real simulator as its model (a perfect model)
or with a trained world model, with or without a SAC critic's terminal value (issue #16's MPC
bar: is the gap to 1,000 the model's or the planner's?).

    python benchmarks/mpc_planner.py [--env Hopper-v5] [--model RUN] [--horizons 10,20,30]
        [--populations 128] [--iterations 3] [--episodes 1] [--max-steps 300] [--seed 0]
        [--value AGENT.zip [--policy-prior]]

Without ``--model`` each setting plans with ``worldmodel plan --dynamics simulator`` (the real
simulator restored to the real env's exact state before every plan, scored with the task's
reward and termination as a model's predictions are): what the planner's settings allow. With
``--model RUN`` (a ``worldmodel train`` or dyna refit run) it plans with that model in the env the
model was trained on. ``--value`` adds a SAC agent's critic as the terminal value of each plan's
last state (``worldmodel plan --value``; TD-MPC's idea); the agent's own actor (its mean action)
is then measured on the same episodes first, as the row ``dynamics=policy`` (horizon and
population 0): what the plan adds to the policy whose critic it uses. ``--policy-prior`` (with
``--model`` and ``--value``) starts each plan's search from that actor rolled through the model.

Prints the real return, the steps survived and the time per action of each setting, the
default setting (horizon 10, population 128, 3 iterations) measured first in the same run, and
appends one row per setting to ``benchmarks/results/mpc_planner.csv`` as it finishes. A setting
already in that file (same dynamics, env, settings, episodes, steps, seed and value) is not run
again, so a long grid can be resumed.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from _results import append_rows

RESULTS = Path(__file__).parent / "results" / "mpc_planner.csv"
HEADER = [
    "dynamics",
    "env",
    "horizon",
    "population",
    "iterations",
    "episodes",
    "max_steps",
    "seed",
    "value",
    "policy_prior",
    "mean_return",
    "mean_steps",
    "ms_per_action",
    "std_return",
    "returns",
]
KEY = HEADER[:10]


def _done() -> dict[tuple[str, ...], dict[str, str]]:
    """The rows already measured, by their settings."""
    if not RESULTS.exists():
        return {}
    with RESULTS.open() as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != ["timestamp", "machine", *HEADER]:
            raise SystemExit(
                f"{RESULTS}: its columns {reader.fieldnames} are not this benchmark's "
                f"{HEADER}; move it aside"
            )
        return {tuple(r[k] for k in KEY): r for r in reader}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="Hopper-v5", help="the real env (with the simulator)")
    ap.add_argument("--model", type=Path, default=None, help="plan with this run's model")
    ap.add_argument("--horizons", default="10,20,30")
    ap.add_argument("--populations", default="128")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--value", type=Path, default=None, help="a SAC agent zip: its critic values plans' ends"
    )
    ap.add_argument(
        "--policy-prior", action="store_true", help="search from the value agent's actor's plan"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    if args.policy_prior and (args.model is None or args.value is None):
        raise SystemExit("--policy-prior searches from the --value agent's actor in the --model")
    import torch

    from agents.config import PlanConfig
    from agents.mpc import run_mpc
    from envs import EnvSpec, env_spec_of
    from envs.tasks import check_env_id

    model, spec = None, EnvSpec(args.env)
    if args.model is not None:
        from worldmodel.train import load

        model = load(args.model)
        spec = env_spec_of(model)  # the env the model was trained on, as run_mpc plans in it
        args.env = spec.env_id
    try:
        check_env_id(args.env)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    torch.set_num_threads(args.threads)
    grid = [(10, 128)] + [
        (int(h), int(p))
        for h in args.horizons.split(",")
        for p in args.populations.split(",")
        if (int(h), int(p)) != (10, 128)
    ]
    dynamics = "simulator" if model is None else str(args.model)
    value = "none" if args.value is None else str(args.value)
    done = _done()
    if args.value is not None:  # the agent's own actor on the same episodes: the baseline
        settings = (
            "policy",
            args.env,
            0,
            0,
            0,
            args.episodes,
            args.max_steps,
            args.seed,
            value,
            "no",
        )
        if tuple(str(v) for v in settings) not in done:
            rets, steps = _actor(args.value, spec, args.episodes, args.max_steps, args.seed)
            ret = float(np.mean(rets))
            print(f"the agent's actor: return {ret:8.1f}  steps {steps:6.1f} of {args.max_steps}")
            row = (*settings, f"{ret:.2f}", f"{steps:.1f}", "", *_spread(rets))
            append_rows(RESULTS, HEADER, [row])
    for h, p in grid:
        settings = (
            dynamics,
            args.env,
            h,
            p,
            args.iterations,
            args.episodes,
            args.max_steps,
            args.seed,
            value,
            "yes" if args.policy_prior else "no",
        )
        key = tuple(str(v) for v in settings)
        if key in done:
            r = done[key]
            print(f"H={h:<3} pop={p:<5} (measured before) return {float(r['mean_return']):8.1f}")
            continue
        cfg = PlanConfig(
            planner="cem",
            horizon=h,
            population=p,
            iterations=args.iterations,
            elites=max(2, p // 8),
            episodes=args.episodes,
            max_episode_steps=args.max_steps,
            seed=args.seed,
            dynamics="simulator" if model is None else "model",
            value=args.value,
            policy_prior=args.policy_prior,
        )
        res = run_mpc(model, cfg, spec=spec if model is None else None)
        steps = res["steps"] / args.episodes
        print(
            f"H={h:<3} pop={p:<5} return {res['mean_return']:8.1f}  steps {steps:6.1f} "
            f"of {args.max_steps}  {res['ms_per_action']:6.0f} ms/action"
        )
        # one row per setting as it finishes: an interrupted grid keeps what it measured
        row = (
            *settings,
            f"{res['mean_return']:.2f}",
            f"{steps:.1f}",
            f"{res['ms_per_action']:.1f}",
            *_spread(res["returns"]),
        )
        append_rows(RESULTS, HEADER, [row])


def _spread(returns: list[float]) -> tuple[str, str]:
    """The ``std_return`` and ``returns`` cells: the sample std over episodes (blank for one)
    and each episode's return."""
    std = f"{np.std(returns, ddof=1):.2f}" if len(returns) > 1 else ""
    return std, " ".join(f"{r:.1f}" for r in returns)


def _actor(
    agent: Path, spec, episodes: int, max_steps: int, seed: int
) -> tuple[list[float], float]:
    """Each episode's return, and the mean steps, of ``agent``'s deterministic actor (loaded
    without unpickling) on the real env of ``spec`` (an :class:`envs.EnvSpec`, at its fixed
    step, as MPC runs it), episodes of seeds ``seed, seed + 1, ...``, at most ``max_steps``
    each."""
    from agents.policies import make_policy
    from envs import make_env

    env = make_env(spec.replace(timing="fixed", max_episode_steps=max_steps))
    policy = make_policy(str(agent), env.observation_space, env.action_space)
    returns, steps = [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, n, done = 0.0, 0, False
        while not done:
            obs, r, term, trunc, _ = env.step(policy(obs))
            total, n, done = total + float(r), n + 1, term or trunc
        returns.append(total)
        steps.append(n)
    return returns, float(np.mean(steps))


if __name__ == "__main__":
    main()
