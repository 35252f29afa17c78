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
    cfg.check()
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
    mean_substeps = TimingSpec.parse(cfg.timing).mean(frame_skip)
    dt_plan = mean_substeps * physics_dt
    terminal, actor = None, None
    if cfg.value is not None:
        from agents.policies import critic_value, make_policy

        terminal = critic_value(cfg.value, env.observation_space, space)
        if cfg.policy_prior:
            actor = make_policy(str(cfg.value), env.observation_space, space)
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
                prior = None
            else:
                history = (ts, xs, np.asarray(acts, dtype=np.float64).reshape(-1, space.shape[0]))
                state = _encode(model, cfg, history, gen)
                objective = model_objective(
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
                prior = None if actor is None else _rollout(model, actor, state, obs, dt_plan, cfg)
            action = planner.plan(objective, prior)
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


def _encode(
    model: WorldModel, cfg: PlanConfig, history: tuple[list, list, np.ndarray], gen: torch.Generator
) -> torch.Tensor:
    """``(particles, D)`` model states from the last ``cfg.context`` real observations
    (``history``: times, observations, ``(K, act_dim)`` actions so far)."""
    ts, xs, acts = history
    ctx = context_window(np.asarray(ts), np.asarray(xs), acts, len(ts) - 1, cfg.context)
    device = next(model.parameters()).device  # contexts go there; the planner stays on the CPU
    with torch.no_grad():  # [gen]: drawn on the CPU (the same draws), moved to device
        batch = context_batch([ctx], model.normalizer).to(device)
        return model.encode(batch, cfg.particles, generator=[gen])[:, 0]


@torch.no_grad()
def _rollout(
    model: WorldModel, actor: Any, state: torch.Tensor, obs: np.ndarray, dt: float, cfg: PlanConfig
) -> torch.Tensor:
    """``(horizon, act_dim)``: ``actor``'s actions along the model's mean prediction from the
    first of ``state``'s particles and the real observation ``obs``."""
    s, o, out = state[:1], np.asarray(obs), []
    d = torch.full((1,), float(dt), dtype=state.dtype, device=state.device)
    for _ in range(cfg.horizon):
        a = np.asarray(actor(o), dtype=np.float64)
        out.append(a)
        s, o_norm = model.step(s, torch.as_tensor(a[None], dtype=state.dtype, device=s.device), d)
        o = model.denormalize(o_norm)[0].double().cpu().numpy()
    return torch.as_tensor(np.stack(out), dtype=torch.float32)
