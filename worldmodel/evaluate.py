"""Evaluation of trained models.

* ``heldout_error``: interpolation and extrapolation MSE (normalised units, the model's own
  normalisation) on held-out episodes at several observed fractions, with masks fixed by seed
  so that every model is scored on the same points.
* ``compare_to_simulator``: open-loop rollouts of models and of the real MuJoCo simulator from
  identical recorded states under the same actions and dts: error vs horizon, with the
  simulator's own sensitivity as a floor and a constant prediction as a ceiling. The simulator
  is the env the data was collected in (the dataset's :class:`envs.EnvSpec`: ``gym.make``
  kwargs, ``Incline``, ...), and it must first reproduce a few recorded steps
  (:func:`check_replay`) or the comparison is refused.
* ``recorded_error``: open-loop error along recorded actions and intervals (a policy's own
  data, no simulator), against holding the last observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from envs.factory import EnvSpec, make_env
from envs.mujoco_state import state_from_obs
from envs.tasks import check_env_id
from envs.timing import TimingSpec
from envs.wrappers import control_clock, mujoco_base, physics_state, set_physics_state
from worldmodel.batching import (
    Context,
    Normalizer,
    context_batch,
    context_window,
    make_batch,
    tile_windows,
)
from worldmodel.data import Dataset, Episode
from worldmodel.models import WorldModel


def heldout_split(model: WorldModel, dataset: Dataset, split: str = "test") -> Dataset:
    """The split of ``dataset`` that the model's run held out (its saved split settings)."""
    train = model.run_config["train"]
    part = dataset.split(tuple(train["split"]), train["split_seed"])[split]
    if part is None:
        raise ValueError(
            f"the run's split {train['split']} leaves no {split!r} episodes in this dataset"
        )
    return part


def heldout_error(
    model: WorldModel,
    episodes: Dataset,
    *,
    observed: Sequence[float] = (0.1, 0.3, 0.5, 1.0),
    modes: Sequence[str] = ("interp", "extrap"),
    window: int = 50,
    context_fraction: float = 0.5,
    samples: int = 1,
    batch_size: int = 64,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """MSE and NLL per (mode, observed fraction) over non-overlapping windows of every episode.

    Returns rows ``{"mode", "observed", "mse", "nll", "points"}``; ``mse`` is averaged over every
    scored (point, dimension) entry.
    """
    windows = tile_windows(episodes.episodes, window)
    norm = model.normalizer
    device = next(model.parameters()).device
    rows = []
    for mode in modes:
        for p in observed:
            rng = np.random.default_rng([seed, int(p * 1000), len(mode)])
            sq = nl = n = 0.0
            for i in range(0, len(windows), batch_size):
                batch = make_batch(
                    episodes.episodes,
                    windows[i : i + batch_size],
                    norm,
                    mode=mode,
                    observed=p,
                    context_fraction=context_fraction,
                    rng=rng,
                ).to(device)
                with torch.no_grad():
                    m = model.metrics(batch, samples=samples)
                k = float(batch.target.sum()) * model.obs_dim
                sq, nl, n = sq + m["mse"] * k, nl + m["nll"] * k, n + k
            rows.append(
                {
                    "mode": mode,
                    "observed": p,
                    "mse": sq / n,
                    "nll": nl / n,
                    "points": int(n / model.obs_dim),
                }
            )
    return rows


# --- model vs simulator, from identical states ------------------------------------------------


class Predictor(Protocol):
    """Anything that predicts real observations from real contexts under given actions."""

    name: str

    def predict(
        self, contexts: Sequence[Context], actions: np.ndarray, dts: np.ndarray
    ) -> np.ndarray:
        """``actions (B, H, act_dim)`` held for ``dts (B, H)`` seconds after each context's last
        point -> predicted observations ``(B, H, obs_dim)`` (real units) at the end of each."""


class ModelPredictor:
    """A trained model as a :class:`Predictor`: the mean over ``samples`` latent rollouts."""

    def __init__(
        self, model: WorldModel, name: str | None = None, samples: int = 8, seed: int = 0
    ) -> None:
        self.model, self.samples, self.seed = model, samples, seed
        self.name = name or model.name

    @torch.no_grad()
    def predict(
        self, contexts: Sequence[Context], actions: np.ndarray, dts: np.ndarray
    ) -> np.ndarray:
        m = self.model
        p = next(m.parameters())
        batch = context_batch(contexts, m.normalizer).to(p.device)
        gen = torch.Generator().manual_seed(self.seed)
        state = m.encode(batch, self.samples, generator=gen)
        pred = m.rollout(
            state,
            torch.as_tensor(actions, dtype=p.dtype, device=p.device),
            torch.as_tensor(dts, dtype=p.dtype, device=p.device),
        )
        return m.denormalize(pred.mean).mean(0).double().cpu().numpy()


class MeanPredictor:
    """The mean of several predictors' predictions (an ensemble of independently trained
    models, as bagging averages them): ``(B, H, obs_dim)``, real units."""

    def __init__(self, predictors: Sequence[Predictor], name: str) -> None:
        if not predictors:
            raise ValueError("MeanPredictor needs at least one predictor")
        self.predictors, self.name = list(predictors), name

    def predict(
        self, contexts: Sequence[Context], actions: np.ndarray, dts: np.ndarray
    ) -> np.ndarray:
        return np.mean([p.predict(contexts, actions, dts) for p in self.predictors], axis=0)


def _as_spec(env: EnvSpec | str) -> EnvSpec:
    """An env id alone means the plain ``gym.make(env_id)`` env."""
    return env if isinstance(env, EnvSpec) else EnvSpec(str(env))


class SimulatorPredictor:
    """The real simulator behind the predictor contract: it rebuilds the state from the last
    observation (``qpos = [0, obs[:nq-1]]``, ``qvel = obs[nq-1:]``; the x position does not
    change the dynamics) and steps MuJoCo. Exact while ``|qvel| <= 10`` (observations clip it).

    ``env`` is an :class:`envs.EnvSpec` (e.g. ``EnvSpec.from_metadata(dataset.metadata)``) or
    an env id (the plain ``gym.make`` env)."""

    def __init__(self, env: EnvSpec | str, name: str = "simulator") -> None:
        self.name, self.spec = name, _as_spec(env)
        self.env_id = self.spec.env_id

    def predict(
        self, contexts: Sequence[Context], actions: np.ndarray, dts: np.ndarray
    ) -> np.ndarray:
        sim = Simulator(self.spec)
        out = []
        for c, a, d in zip(contexts, actions, dts):
            qpos, qvel = sim.state_from_obs(c.obs[-1])
            out.append(sim.run(qpos, qvel, a, d)[0])
        return np.stack(out)


class Simulator:
    """A bare MuJoCo env (no time limit, no termination) stepped with given actions and dts.

    ``env``: an :class:`envs.EnvSpec`, built by :func:`envs.make_env` as collection built it
    (``gym.make`` kwargs, ``Incline``; timing and time limit do not apply), or an env id."""

    def __init__(self, env: EnvSpec | str) -> None:
        self.spec = _as_spec(env)
        self.env = make_env(self.spec.replace(timing="fixed"), bare=True)
        self.env.reset(seed=0)
        base = mujoco_base(self.env)
        self.nq, self.nv = int(base.model.nq), int(base.model.nv)

    def state_from_obs(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if obs.shape[0] != self.nq - 1 + self.nv:
            raise ValueError(
                f"observations of {obs.shape[0]} dims are not qpos[1:] ++ qvel of this env"
            )
        return state_from_obs(obs, [0.0], self.nq, self.nv)

    def run(
        self, qpos: np.ndarray, qvel: np.ndarray, actions: np.ndarray, dts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From ``(qpos, qvel)``: observations ``(H, obs_dim)``, qpos ``(H, nq)``,
        qvel ``(H, nv)``."""
        return self.replay(qpos, qvel, actions, dts)[:3]

    def replay(
        self, qpos: np.ndarray, qvel: np.ndarray, actions: np.ndarray, dts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`run`, plus the env's rewards ``(H,)``."""
        set_physics_state(self.env, qpos, qvel, 0.0)
        obs, qs, vs, rs = [], [], [], []
        for a, dt in zip(actions, dts):
            o, r, *_ = self.env.step_dt(a, float(dt))
            obs.append(o)
            rs.append(float(r))
            q, v, _ = physics_state(self.env)
            qs.append(q)
            vs.append(v)
        return np.array(obs), np.array(qs), np.array(vs), np.array(rs)


#: largest ``|replayed - recorded| / max(1, |recorded|)`` that :func:`check_replay` accepts (a
#: faithful replay is off by about 1e-8: MuJoCo's warm start is not part of qpos/qvel)
REPLAY_TOLERANCE = 1e-5


class SimulatorMismatch(ValueError):
    """The simulator does not reproduce a dataset's recorded steps."""


def check_replay(
    sim: Simulator,
    dataset: Dataset,
    *,
    episodes: int = 3,
    steps: int = 5,
    tolerance: float = REPLAY_TOLERANCE,
) -> float:
    """Replay the first ``steps`` recorded steps of ``episodes`` episodes (first, middle, last)
    in ``sim``: from the recorded ``qpos``/``qvel``, under the recorded actions and dts, and
    compare the observations and rewards with the recording.

    Returns:
        the largest error ``|replayed - recorded| / max(1, |recorded|)``.

    Raises:
        SimulatorMismatch: an error above ``tolerance``, or states that do not fit the
            simulator's model; the message names the episode, step and quantity, and the env
            spec the simulator was built from.
    """
    eligible = [i for i, ep in enumerate(dataset) if len(ep) >= 2]
    if not eligible:
        raise ValueError("no episode has a step to replay")
    picks = sorted({eligible[int(k)] for k in np.linspace(0, len(eligible) - 1, episodes)})
    spec = sim.spec
    versions = dataset.metadata.get("library_versions", {}).get("mujoco")
    from worldmodel.data import library_versions

    here = library_versions().get("mujoco")
    why = (
        f"the simulator is {spec.env_id} built from the dataset's env spec (env_kwargs "
        f"{spec.env_kwargs}, incline {spec.incline_deg} deg, reset noise {spec.reset_noise}), "
        "so the data was not collected with the settings its metadata records (gravity or "
        "incline, gym.make kwargs, model file)"
        + (f", or with another MuJoCo ({versions}, this is {here})" if versions != here else "")
        + "; refusing to compare models against a simulator that is not the data's"
    )
    worst = 0.0
    for e in picks:
        ep = dataset[e]
        if ep.qpos.shape[1] != sim.nq or ep.qvel.shape[1] != sim.nv:
            raise SimulatorMismatch(
                f"episode {e} records qpos/qvel of sizes {ep.qpos.shape[1]}/{ep.qvel.shape[1]}, "
                f"the simulator's model has {sim.nq}/{sim.nv}: {why}"
            )
        n = min(steps, len(ep) - 1)
        obs, _, _, rewards = sim.replay(
            ep.qpos[0], ep.qvel[0], ep.actions[:n], np.diff(ep.t[: n + 1])
        )
        for what, got, want in (
            ("observation", obs, ep.obs[1 : n + 1]),
            ("reward", rewards, ep.rewards[:n]),
        ):
            if got.shape != want.shape:
                raise SimulatorMismatch(
                    f"episode {e}: the simulator's {what}s have shape {got.shape[1:]}, the "
                    f"recorded ones {want.shape[1:]}: {why}"
                )
            err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
            err = np.where(np.isfinite(err), err, np.inf)
            if err.max() > tolerance:  # name the first step off, and its worst entry
                k = int(np.argmax(err.reshape(n, -1).max(1) > tolerance))
                dim = (int(np.argmax(err[k])),) if err.ndim > 1 else ()
                name = f"{what}[{dim[0]}]" if dim else what
                raise SimulatorMismatch(
                    f"replaying episode {e} (seed {ep.seed}) from its recorded state, step "
                    f"{k + 1}'s {name} is {got[(k, *dim)]:.6g} in the simulator and "
                    f"{want[(k, *dim)]:.6g} in the recording (error {err[(k, *dim)]:.2g} > "
                    f"{tolerance:g}): {why}"
                )
            worst = max(worst, float(err.max()))
    return worst


@dataclass
class Start:
    """A recorded moment to start from: the context before it and the full physics state."""

    context: Context
    qpos: np.ndarray
    qvel: np.ndarray
    context_qpos: np.ndarray
    context_qvel: np.ndarray
    episode: int
    index: int


def sample_starts(
    dataset: Dataset | Sequence[Episode], count: int, context: int, seed: int = 0, after: int = 0
) -> list[Start]:
    """``count`` recorded moments (episode, step) with ``context`` observations up to them and
    ``after`` recorded steps after them."""
    eligible = [i for i, ep in enumerate(dataset) if len(ep) >= context + after]
    if not eligible:
        raise ValueError(
            f"no episode has the {context} observations a context needs"
            + (f" and {after} steps after it" if after else "")
        )
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        e = int(rng.choice(eligible))
        ep = dataset[e]
        k = int(rng.integers(context - 1, len(ep) - after))
        s = slice(k - context + 1, k + 1)
        ctx = context_window(ep.t, ep.obs, ep.actions, k, context)
        out.append(Start(ctx, ep.qpos[k], ep.qvel[k], ep.qpos[s], ep.qvel[s], e, k))
    return out


def recorded_plan(
    episodes: Dataset | Sequence[Episode], starts: Sequence[Start], horizon: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What was recorded after each start (sampled with ``after=horizon``): ``actions (B, H,
    act_dim)``, ``dts (B, H)`` seconds and the observations ``(B, H, obs_dim)`` they led to."""
    eps = [(episodes[s.episode], s.index) for s in starts]
    actions = np.stack([ep.actions[k : k + horizon] for ep, k in eps])
    dts = np.stack([np.diff(ep.t[k : k + horizon + 1]) for ep, k in eps])
    obs = np.stack([ep.obs[k + 1 : k + horizon + 1] for ep, k in eps])
    return actions, dts, obs


def recorded_error(
    predictor: Predictor,
    episodes: Sequence[Episode],
    normalizer: Normalizer,
    *,
    horizon: int,
    starts: int = 256,
    context: int = 5,
    seed: int = 0,
) -> dict[str, np.ndarray] | None:
    """Open-loop error along *recorded* actions and intervals (the policy's own, no simulator):
    from ``starts`` random points of ``episodes`` with ``context`` observations up to them and
    ``horizon`` recorded steps after, the predictor's squared error in ``normalizer``'s units
    and that of holding the last context observation, each ``(horizon,)`` (mean over starts and
    dimensions) under the names ``"model"`` and ``"hold"``. None when no episode is long enough.
    """
    if not any(len(ep) >= context + horizon for ep in episodes):
        return None
    chosen = sample_starts(episodes, starts, context, seed, after=horizon)
    actions, dts, target = recorded_plan(episodes, chosen, horizon)
    contexts = [s.context for s in chosen]
    pred = predictor.predict(contexts, actions, dts)
    hold = np.stack([c.obs[-1] for c in contexts])[:, None]
    return {
        name: (((p - target) / normalizer.std) ** 2).mean((0, 2))
        for name, p in (("model", pred), ("hold", hold))
    }


def action_plan(
    env: EnvSpec | str,
    count: int,
    horizon: int,
    *,
    policy: str = "random",
    timing: str = "fixed",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``actions (count, horizon, act_dim)`` from ``random`` or ``zero`` and
    ``dts (count, horizon)`` seconds drawn from ``timing`` (a :class:`envs.TimingSpec`), in the
    env of ``env`` (an :class:`envs.EnvSpec` or an env id: its action space and default
    substeps)."""
    env = make_env(_as_spec(env).replace(timing="fixed"), bare=True)
    space = env.action_space
    frame_skip, physics_dt = control_clock(env)
    env.close()
    rng = np.random.default_rng(seed)
    if policy == "random":
        actions = rng.uniform(space.low, space.high, size=(count, horizon, *space.shape))
    elif policy == "zero":
        actions = np.zeros((count, horizon, *space.shape))
    else:
        raise ValueError(f"unknown evaluation policy {policy!r}; expected 'random' or 'zero'")
    spec = TimingSpec.parse(timing)
    sub = np.array([[spec.sample(rng, frame_skip) for _ in range(horizon)] for _ in range(count)])
    return actions, sub * physics_dt


@dataclass
class HorizonResult:
    """Squared errors in normalised units, ``(starts, horizon)`` overall and
    ``(starts, horizon, obs_dim)`` per dimension, for every predictor and the two references."""

    errors: dict[str, np.ndarray]
    per_dim: dict[str, np.ndarray]
    predictions: dict[str, np.ndarray]
    real: np.ndarray
    real_qpos: np.ndarray
    real_qvel: np.ndarray
    starts: list[Start]
    actions: np.ndarray
    dts: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self, horizons: Sequence[int]) -> list[dict[str, Any]]:
        """Rows ``{"name", "h=..": mean (std over starts)}`` at the given horizons (1-based)."""
        rows = []
        for name, err in self.errors.items():
            row: dict[str, Any] = {"name": name}
            for h in horizons:
                if h <= err.shape[1]:
                    row[f"h={h}"] = (float(err[:, h - 1].mean()), float(err[:, h - 1].std()))
            rows.append(row)
        return rows


FLOOR, CEILING = "simulator 1e-6 (floor)", "constant (ceiling)"


def compare_to_simulator(
    predictors: Sequence[Predictor],
    dataset: Dataset,
    normalizer: Normalizer,
    *,
    horizon: int = 30,
    starts: int = 32,
    context: int = 5,
    policy: str = "random",
    timing: str | None = None,
    seed: int = 0,
    spec: EnvSpec | None = None,
) -> HorizonResult:
    """Run every predictor and the real simulator open loop from identical recorded states with
    the same actions and dts; errors in ``normalizer``'s units.

    The simulator's own sensitivity (a second run from a state perturbed by 1e-6) is the floor;
    holding the last context observation is the ceiling. ``policy``: ``"random"`` or
    ``"zero"`` actions at dts drawn from ``timing`` (default: the dataset's), or
    ``"recorded"``: the actions and dts the recording took next (the data's own policy; starts
    then need ``horizon`` recorded steps after them, and ``timing`` is ignored).
    The simulator is ``spec`` (default: the dataset's, from its metadata); before anything is
    compared it must reproduce recorded steps of ``dataset`` (:func:`check_replay`).

    Raises:
        ValueError: an env without a task in :mod:`envs.tasks` (the message lists them).
        SimulatorMismatch: the simulator does not replay the recording.
    """
    if policy not in ("random", "zero", "recorded"):
        raise ValueError(
            f"unknown evaluation policy {policy!r}; expected 'random', 'zero' or 'recorded'"
        )
    spec = spec if spec is not None else EnvSpec.from_metadata(dataset.metadata)
    check_env_id(spec.env_id)
    if timing is None:
        timing = dataset.timing
    sim = Simulator(spec)
    replay_error = check_replay(sim, dataset)
    if policy == "recorded":  # what the data's own policy did next, at the recorded dts
        chosen = sample_starts(dataset, starts, context, seed, after=horizon)
        actions, dts, _ = recorded_plan(dataset, chosen, horizon)
        timing = "recorded"
    else:
        chosen = sample_starts(dataset, starts, context, seed)
        actions, dts = action_plan(spec, starts, horizon, policy=policy, timing=timing, seed=seed)
    rng = np.random.default_rng([seed, 1])
    real, qs, vs, floor = [], [], [], []
    for s, a, d in zip(chosen, actions, dts):
        o, q, v = sim.run(s.qpos, s.qvel, a, d)
        real.append(o)
        qs.append(q)
        vs.append(v)
        floor.append(
            sim.run(
                s.qpos + rng.uniform(-1e-6, 1e-6, s.qpos.shape),
                s.qvel + rng.uniform(-1e-6, 1e-6, s.qvel.shape),
                a,
                d,
            )[0]
        )
    real_arr = np.stack(real)
    preds = {p.name: p.predict([s.context for s in chosen], actions, dts) for p in predictors}
    preds[FLOOR] = np.stack(floor)
    preds[CEILING] = np.stack([np.repeat(s.context.obs[-1:], horizon, 0) for s in chosen])
    per_dim = {k: ((v - real_arr) / normalizer.std) ** 2 for k, v in preds.items()}
    return HorizonResult(
        errors={k: v.mean(-1) for k, v in per_dim.items()},
        per_dim=per_dim,
        predictions=preds,
        real=real_arr,
        real_qpos=np.stack(qs),
        real_qvel=np.stack(vs),
        starts=chosen,
        actions=actions,
        dts=dts,
        settings={
            "horizon": horizon,
            "starts": starts,
            "context": context,
            "policy": policy,
            "timing": timing,
            "seed": seed,
            "env_id": dataset.env_id,
            "env_spec": spec.to_dict(),
            "replay_error": replay_error,
        },
    )
