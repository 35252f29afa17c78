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
from agents.planners import make_planner, model_objective, simulator_objective
from envs.factory import EnvSpec, env_spec_of, make_env
from envs.timing import TimingSpec
from envs.wrappers import control_clock
from worldmodel.batching import context_batch, context_window
from worldmodel.data import Dataset
from worldmodel.models import WorldModel


def run_mpc(
    model: WorldModel | None, cfg: PlanConfig, spec: EnvSpec | None = None
) -> dict[str, Any]:
    """Run ``cfg.episodes`` real episodes under MPC; returns real returns, time per action (ms)
    and the recorded real episodes (``"episodes"``, a :class:`worldmodel.data.Dataset`).

    The real env is the model's (``env_spec_of(model)``), or ``spec`` when given; with
    ``cfg.dynamics == "simulator"`` the planner predicts with the real simulator and
    ``model`` may be None.

    Raises:
        ValueError: an env without a task in :mod:`envs.tasks` (the message lists them); no
            model to plan with, or no env.
    """
    if cfg.dynamics not in ("model", "simulator"):
        raise ValueError(
            f"plan: unknown dynamics {cfg.dynamics!r}; expected 'model' or 'simulator'"
        )
    if model is None and (cfg.dynamics == "model" or spec is None):
        raise ValueError(
            "plan: planning with the model needs one (dynamics='simulator' needs a spec)"
        )
    spec = (spec if spec is not None else env_spec_of(model)).replace(
        timing=cfg.timing, max_episode_steps=cfg.max_episode_steps
    )
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
    mean_substeps = TimingSpec.parse(cfg.timing).mean(frame_skip)
    substeps = int(round(mean_substeps))  # the simulator's hold per planned action
    if cfg.dynamics == "simulator" and abs(mean_substeps - substeps) > 1e-9:
        raise ValueError(
            f"plan: the simulator holds each planned action a whole number of physics steps; "
            f"timing {cfg.timing!r} has a mean of {mean_substeps:g}"
        )
    returns, ms = [], []
    for ep in range(cfg.episodes):
        obs, info = env.reset(seed=cfg.seed + ep)
        planner.reset()
        ts, xs, acts = [info["t"]], [obs], []
        total, done = 0.0, False
        while not done:
            start = time.perf_counter()
            if cfg.dynamics == "simulator":
                objective = simulator_objective(
                    env, task, obs, substeps, terminal=terminal, discount=cfg.value_discount
                )
            else:
                history = (ts, xs, np.asarray(acts, dtype=np.float64).reshape(-1, space.shape[0]))
                objective = _model_objective(model, cfg, task, history, obs, dt_plan, gen, terminal)
            action = planner.plan(objective)
            ms.append(1000 * (time.perf_counter() - start))
            a = action.numpy().astype(space.dtype)
            obs, r, term, trunc, info = env.step(a)
            total += float(r)
            ts.append(info["t"])
            xs.append(obs)
            acts.append(a)
            done = term or trunc
        returns.append(total)
    own = "-simulator" if cfg.dynamics == "simulator" else ""
    episodes = Dataset(
        env.get_wrapper_attr("episodes"),
        {**spec.metadata(), "policy": {"name": f"mpc-{cfg.planner}{own}"}},
    )
    return {
        "returns": returns,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "ms_per_action": float(np.median(ms)),
        "steps": episodes.num_steps,
        "episodes": episodes,
    }


def _model_objective(
    model: WorldModel,
    cfg: PlanConfig,
    task: Any,
    history: tuple[list, list, np.ndarray],
    obs: np.ndarray,
    dt_plan: float,
    gen: torch.Generator,
    terminal: Any,
) -> Any:
    """The planner's objective under ``model``, its state encoded from the last ``cfg.context``
    real observations (``history``: times, observations, ``(K, act_dim)`` actions so far)."""
    ts, xs, acts = history
    ctx = context_window(np.asarray(ts), np.asarray(xs), acts, len(ts) - 1, cfg.context)
    device = next(model.parameters()).device  # contexts go there; the planner stays on the CPU
    with torch.no_grad():  # [gen]: drawn on the CPU (the same draws), moved to device
        batch = context_batch([ctx], model.normalizer).to(device)
        state = model.encode(batch, cfg.particles, generator=[gen])[:, 0]
    return model_objective(
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
