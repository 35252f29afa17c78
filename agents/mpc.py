"""Model-predictive control on the real env: re-encode the latest real observations, plan in
the model, apply the first action to the real env, repeat. Returns are the real env's.

The real env is the one the model's data was collected in (:func:`envs.factory.env_spec_of`:
its ``gym.make`` kwargs, incline and reset noise), with the plan's own timing and time limit;
the planner scores candidates with that env's task (:meth:`envs.EnvSpec.task`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from agents.config import PlanConfig
from agents.planners import make_planner, model_objective
from envs.factory import env_spec_of, make_env
from envs.timing import TimingSpec
from envs.wrappers import control_clock
from worldmodel.batching import context_batch, context_window
from worldmodel.data import Dataset
from worldmodel.models import WorldModel


def run_mpc(model: WorldModel, cfg: PlanConfig) -> dict[str, Any]:
    """Run ``cfg.episodes`` real episodes under MPC; returns real returns, time per action (ms)
    and the recorded real episodes (``"episodes"``, a :class:`worldmodel.data.Dataset`).

    Raises:
        ValueError: an env without a task in :mod:`envs.tasks` (the message lists them).
    """
    spec = env_spec_of(model).replace(timing=cfg.timing, max_episode_steps=cfg.max_episode_steps)
    task = spec.task()  # refuses an env it cannot score before anything runs
    env = make_env(spec, record=True)
    space = env.action_space
    gen = torch.Generator().manual_seed(cfg.seed)
    # a PlanConfig is a PlannerConfig: the planner reads its own settings from it
    planner = make_planner(
        cfg.planner, torch.as_tensor(space.low), torch.as_tensor(space.high), cfg, gen
    )
    # plan at the run's mean control interval (the env's own step under fixed timing): the
    # next intervals are not known when the plan is made
    frame_skip, physics_dt = control_clock(env)
    dt_plan = TimingSpec.parse(cfg.timing).mean(frame_skip) * physics_dt
    if not 0.0 < cfg.value_discount <= 1.0:
        raise ValueError(f"plan: value_discount must be in (0, 1], got {cfg.value_discount}")
    terminal = None
    if cfg.value is not None:
        from agents.policies import critic_value

        terminal = critic_value(cfg.value, env.observation_space, space)
    norm = model.normalizer
    device = next(model.parameters()).device  # contexts go there; the planner stays on the CPU
    returns, ms = [], []
    for ep in range(cfg.episodes):
        obs, info = env.reset(seed=cfg.seed + ep)
        planner.reset()
        ts, xs, acts = [info["t"]], [obs], []
        total, done = 0.0, False
        while not done:
            start = time.perf_counter()
            ctx = context_window(
                np.asarray(ts),
                np.asarray(xs),
                np.asarray(acts, dtype=np.float64).reshape(-1, space.shape[0]),
                len(ts) - 1,
                cfg.context,
            )
            with torch.no_grad():  # [gen]: drawn on the CPU (the same draws), moved to device
                batch = context_batch([ctx], norm).to(device)
                state = model.encode(batch, cfg.particles, generator=[gen])[:, 0]
            action = planner.plan(
                model_objective(
                    model,
                    task,
                    state,
                    torch.as_tensor(obs),
                    dt_plan,
                    cfg.particles,
                    gen,
                    terminal=terminal,
                    discount=cfg.value_discount,
                )
            )
            ms.append(1000 * (time.perf_counter() - start))
            a = action.numpy().astype(space.dtype)
            obs, r, term, trunc, info = env.step(a)
            total += float(r)
            ts.append(info["t"])
            xs.append(obs)
            acts.append(a)
            done = term or trunc
        returns.append(total)
    episodes = Dataset(
        env.get_wrapper_attr("episodes"),
        {**spec.metadata(), "policy": {"name": f"mpc-{cfg.planner}"}},
    )
    return {
        "returns": returns,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "ms_per_action": float(np.median(ms)),
        "steps": episodes.num_steps,
        "episodes": episodes,
    }
