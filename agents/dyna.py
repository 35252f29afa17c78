"""Learning in imagination (Dyna / MBPO style) with stable-baselines3's SAC (or sb3-contrib's
CrossQ, ``DynaConfig.agent``; "SAC" below stands for either).

SAC collects real steps as usual. Every ``refit_every`` real steps a callback refits the world
model on all real episodes so far (warm-started); every ``imagine_every`` real steps it encodes
``rollouts`` real context windows, rolls the current policy ``rollout_length`` steps in the model
and puts those imagined transitions in a FIFO ring beside the real replay buffer
(:class:`agents.replay.MixedReplayBuffer`); each SAC batch takes ``real_ratio`` of its samples
from real steps and the rest from the ring, ``gradient_steps`` batches per real step. The agent
is evaluated on the real env only; the learning curve (real steps, mean real return) goes to
``out/curve.csv``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from agents.dyna_checkpoint import (
    config_dict,
    latest_checkpoint,
    load_dyna_checkpoint,
    save_dyna_checkpoint,
)
from agents.replay import MixedReplayBuffer, TimedReplayBuffer
from envs.factory import EnvSpec, make_env
from envs.imagined import ImaginationCore
from envs.self_timed import SelfTimed, hold_substeps, make_self_timed, timed_reward
from envs.tasks import check_env_id
from envs.timing import TimingSpec
from envs.wrappers import control_clock
from worldmodel.batching import context_window
from worldmodel.config import DynaConfig, TrainConfig
from worldmodel.data import Dataset
from worldmodel.io import atomic_write, atomic_write_csv
from worldmodel.models import ModelConfig
from worldmodel.models.base import DATA_BUFFERS

log = logging.getLogger(__name__)

CURVE_COLUMNS = ("real_steps", "mean_real_return", "wall_s")  # out/curve.csv
# out/model.csv, one row per refit: the previous fit's open-loop error (normalised units) on
# the real episodes finished since it, along their recorded actions, at one step and at the
# branch length, beside holding the last observation; then the refit's seconds
MODEL_COLUMNS = (
    "real_steps",
    "refit",
    "new_episodes",
    "branch_length",
    "model_h1",
    "hold_h1",
    "model_hK",
    "hold_hK",
    "fit_s",
)


def real_env(cfg: DynaConfig, record: bool = False) -> gym.Env:
    """The run's real env: under ``cfg.timing``, or :class:`envs.SelfTimed` with
    ``cfg.self_timed`` (with ``record``, a :class:`envs.TrajectoryRecorder` records it; see
    :func:`recorder_of`)."""
    spec = EnvSpec(cfg.env, timing=cfg.timing)
    if cfg.self_timed is None:
        return make_env(spec, record=record)
    return make_self_timed(spec, cfg.self_timed, record=record, decision_cost=cfg.decision_cost)


def recorder_of(env: gym.Env):
    """The :class:`envs.TrajectoryRecorder` of a :func:`real_env` made with ``record``."""
    return env.env if isinstance(env, SelfTimed) else env


def refit_seed(seed: int, refit: int) -> int:
    """The training seed of refit ``refit`` of a run seeded ``seed``: drawn from both, so that
    no two (seed, refit) pairs share a stream (``seed + refit`` gave seed 0's second refit
    seed 1's first one)."""
    return int(np.random.SeedSequence([seed, refit]).generate_state(1)[0])


def run_episodes(
    agent: OffPolicyAlgorithm, env: gym.Env, episodes: int, seed: int
) -> tuple[list[float], list[float]]:
    """Mean-action returns of ``agent`` over ``episodes`` episodes of ``env`` (seeds ``seed``,
    ``seed + 1``, ...), and each episode's decisions per simulated second (from ``info["t"]``,
    which ``env`` must give: :class:`envs.IrregularTiming` does)."""
    out, rates = [], []
    for k in range(episodes):
        obs, info = env.reset(seed=seed + k)
        total, done, decisions, start = 0.0, False, 0, float(info["t"])
        while not done:
            obs, r, term, trunc, info = env.step(agent.predict(obs, deterministic=True)[0])
            total, done, decisions = total + float(r), term or trunc, decisions + 1
        out.append(total)
        rates.append(decisions / (float(info["t"]) - start))
    env.close()
    return out, rates


def evaluate_real(
    agent: OffPolicyAlgorithm, env_id: str, timing: str, episodes: int, seed: int
) -> list[float]:
    """Mean-action returns of ``agent`` on the real env (never on a model)."""
    return run_episodes(agent, make_env(EnvSpec(env_id, timing=timing)), episodes, seed)[0]


class DynaCallback(BaseCallback):
    """Refits the model, adds imagined transitions, evaluates on the real env."""

    def __init__(self, cfg: DynaConfig, recorder, clock: tuple[int, float]) -> None:
        """``clock``: the real env's ``(frame_skip, physics timestep [s])``
        (:func:`envs.wrappers.control_clock`); imagined steps last as long as real ones, their
        substeps drawn from ``cfg.timing`` as the real env draws them (self-timed: the policy's
        own hold)."""
        super().__init__()  # SB3 sets self.model to the agent
        self.cfg, self.recorder = cfg, recorder
        self.timing = TimingSpec.parse(cfg.timing)
        self.frame_skip, self.physics_dt = clock
        self.curve: list[tuple[int, float, float]] = []
        self.decision_rates: list[float] = []  # per evaluation: mean decisions per second
        self.model_rows: list[dict[str, Any]] = []
        self.fitted_episodes = 0  # real episodes the current model was fitted on
        self.world_model = None
        self.world_model_dir: Path | None = None
        self.refits = 0
        self.imagined = 0
        self.truncated = 0  # imagined steps dropped for the members' disagreement (max_spread)
        self.rng = np.random.default_rng(cfg.seed)
        self.start = time.perf_counter()
        self.checkpoint_due = False  # set at an evaluation, saved once SB3 has stored and trained

    def _dataset(self) -> Dataset:
        space = self.recorder.action_space  # the physical actions (not a self-timed hold)
        # the env spec goes into every refit's config.json, where ImaginationCore reads its task;
        # a self-timed agent's intervals are its own, within the range it picks from, which
        # stands as their timing (what `worldmodel evaluate` tests a refit at by default)
        c = self.cfg
        own = None if c.self_timed is None else f"uniform:{c.self_timed[0]}-{c.self_timed[1]}"
        spec = EnvSpec(c.env, timing=own or c.timing).metadata()
        return Dataset(
            list(self.recorder.episodes),
            {**spec, "action_low": space.low.tolist(), "action_high": space.high.tolist()},
        )

    def model_error(self) -> dict[str, Any]:
        """The current model's open-loop error on the real episodes it was not fitted on
        (:func:`worldmodel.evaluate.recorded_error`, 256 starts, at 1 step and at the branch
        length); blanks before the first fit or when no new episode is long enough."""
        from worldmodel.evaluate import ModelPredictor, recorded_error

        c = self.cfg
        K = c.branch_length(self.num_timesteps)
        row: dict[str, Any] = {"new_episodes": len(self.recorder.episodes) - self.fitted_episodes}
        row |= {"branch_length": K}
        if self.world_model is None:
            return row
        new = self.recorder.episodes[self.fitted_episodes :]
        predictor = ModelPredictor(self.world_model, samples=1, seed=c.seed)
        err = recorded_error(
            predictor,
            new,
            self.world_model.normalizer,
            horizon=K,
            context=c.context,
            seed=refit_seed(c.seed, self.refits),
        )
        if err is not None:
            row |= {
                "model_h1": f"{err['model'][0]:.5g}",
                "hold_h1": f"{err['hold'][0]:.5g}",
                "model_hK": f"{err['model'][-1]:.5g}",
                "hold_hK": f"{err['hold'][-1]:.5g}",
            }
        return row

    def refit(self) -> None:
        from worldmodel.train import Trainer, load

        c = self.cfg
        row = {"real_steps": self.num_timesteps, "refit": self.refits, **self.model_error()}
        start = time.perf_counter()
        finished = len(self.recorder.episodes)
        if finished < 2:  # a fit holds out a tenth of the episodes, at least one
            raise ValueError(
                f"dyna: the refit at {self.num_timesteps} real steps has {finished} finished "
                "real episode(s) to fit and hold out, and needs at least 2: raise --init-steps"
            )
        data = self._dataset()
        run = c.out / "model" / f"refit_{self.refits:03d}"  # named as refit_runs reads them
        tc = TrainConfig(
            model=c.model,
            # field dropout pinned off: the loop's runs (Walker2d-v5's included) were measured
            # without it; the per-env default was chosen on the world-model benchmark only
            net=ModelConfig(field_dropout=0.0),
            epochs=c.refit_epochs,
            steps_per_epoch=c.refit_steps_per_epoch,
            batch_size=c.refit_batch,
            window=c.window,
            split=(0.9, 0.1, 0.0),
            seed=refit_seed(c.seed, self.refits),
            patience=0,
            lr=c.refit_lr,
            mode=c.refit_mode,
            window_starts=c.refit_window_starts,
            progress=False,
            tensorboard=False,
        )
        trainer = Trainer(tc, data, run)
        if self.world_model is not None:  # warm start; keep the new data's normalisation
            # and range (obs_low/high, normalised by the new mean and std), unless reproducing
            # the runs that carried the first fit's range along (refit_bounds "first")
            fresh = DATA_BUFFERS if c.refit_bounds == "own" else ("obs_mean", "obs_std")
            keep = {k: v for k, v in self.world_model.state_dict().items() if k not in fresh}
            trainer.model.load_state_dict(keep, strict=False)
        trainer.fit()
        self.world_model, self.world_model_dir = load(run), run
        self.fitted_episodes = len(data.episodes)
        self.refits += 1
        self.model_rows.append(row | {"fit_s": f"{time.perf_counter() - start:.1f}"})
        atomic_write_csv(c.out / "model.csv", self.model_rows, MODEL_COLUMNS, lineterminator="\n")

    def imagine(self) -> None:
        """Branch ``rollouts`` imagined rollouts from random non-terminal real states into the
        imagined ring (a terminated episode's last state has no future to imagine: branching
        from it taught SAC transitions out of a state the real env never leaves)."""
        c = self.cfg
        core = ImaginationCore(self.world_model)
        eps = [ep for ep in self.recorder.episodes if len(ep) >= 2]
        contexts = [
            context_window(ep.t, ep.obs, ep.actions, k, c.context)
            for ep, k in self.branch_starts(eps)
        ]
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**31)))
        state = core.encode(contexts, gen)
        obs = np.stack([ctx.obs[-1] for ctx in contexts])
        alive = np.ones(len(obs), dtype=bool)
        buf = self.model.replay_buffer
        length = c.branch_length(self.num_timesteps)
        batch = len(obs) * length
        if batch > buf.imagined_capacity:  # the first steps must not fall out
            log.info("imagined ring grows to %d transitions", batch)
            buf.grow_imagined(batch)
        for _ in range(length):
            actions, _ = self.model.predict(obs, deterministic=False)
            if c.self_timed is None:
                physical = actions
                substeps = [self.timing.sample(self.rng, self.frame_skip) for _ in obs]
            else:  # the policy's last component is its hold
                physical, substeps = actions[:, :-1], hold_substeps(actions[:, -1], *c.self_timed)
            dt = self.physics_dt * np.asarray(substeps, float)
            confident = np.ones(len(obs), dtype=bool)
            if c.max_spread is not None:
                with torch.no_grad():
                    spread = self.world_model.member_spread(
                        state,
                        torch.as_tensor(physical, dtype=state.dtype),
                        torch.as_tensor(dt, dtype=state.dtype),
                    )
                confident = spread.cpu().numpy() <= c.max_spread
                self.truncated += int((alive & ~confident).sum())
            state, nxt, reward, term, div, _ = core.step(state, obs, physical, dt)
            if c.self_timed is not None:  # as SelfTimed scores the real env
                dt0 = self.frame_skip * self.physics_dt
                reward = timed_reward(reward, dt, dt0, c.decision_cost)
            keep = alive & ~div & confident
            stored = self.model.policy.scale_action(actions)  # as SB3 stores real actions
            buf.add_imagined(obs[keep], nxt[keep], stored[keep], reward[keep], term[keep])
            self.imagined += int(keep.sum())
            alive = keep & ~term
            obs = np.where(alive[:, None], nxt, obs)
            if not alive.any():
                break

    def branch_starts(self, eps: list) -> list[tuple[Any, int]]:
        """``rollouts`` pairs ``(episode, index)`` of real start states drawn by
        ``cfg.branch_starts`` (a terminated episode's last state excluded)."""
        c = self.cfg
        starts = [len(ep) - 1 if ep.terminated else len(ep) for ep in eps]
        if c.branch_starts == "episodes":  # the older rule, drawing as its code drew
            out = []
            for _ in range(c.rollouts):
                i = int(self.rng.integers(len(eps)))
                out.append((eps[i], int(self.rng.integers(starts[i]))))
            return out
        ends = np.cumsum(starts)
        flat = self.rng.integers(ends[-1], size=c.rollouts)
        which = np.searchsorted(ends, flat, side="right")
        return [(eps[i], int(f - (ends[i] - starts[i]))) for i, f in zip(which, flat)]

    def _on_step(self) -> bool:
        c, n = self.cfg, self.num_timesteps
        if c.use_model and n >= c.init_steps:
            since = n - c.init_steps
            if since % c.refit_every == 0:
                self.refit()
            if since % c.imagine_every == 0:
                self.imagine()
        if n % c.eval_every == 0 or n == c.steps:
            # the task's return: a decision cost shapes training, not the score
            env = real_env(dataclasses.replace(c, decision_cost=0.0))
            rets, rates = run_episodes(self.model, env, c.eval_episodes, 10_000 + n)
            self.curve.append((n, float(np.mean(rets)), time.perf_counter() - self.start))
            self.decision_rates.append(float(np.mean(rates)))
            rows = [
                {"real_steps": s, "mean_real_return": f"{r:.2f}", "wall_s": f"{w:.1f}"}
                for s, r, w in self.curve
            ]
            columns = CURVE_COLUMNS
            if c.self_timed is not None:  # the price of the return: decisions per second
                columns += ("decisions_per_s",)
                for row, rate in zip(rows, self.decision_rates, strict=True):
                    row["decisions_per_s"] = f"{rate:.2f}"
            atomic_write_csv(c.out / "curve.csv", rows, columns, lineterminator="\n")
            if c.keep_agents:
                atomic_write(c.out / "agents" / f"step_{n:07d}.zip", self.model.save)
            self.checkpoint_due = True
        return True

    # SB3 calls ``on_step`` before it stores the step's transition and trains on it; the
    # checkpoint waits for both (the next rollout's start, or the end of training), so that a
    # resumed run has every real transition and update an uninterrupted one has
    def _on_rollout_start(self) -> None:
        self._checkpoint_if_due()

    def _on_training_end(self) -> None:
        self._checkpoint_if_due()

    def _checkpoint_if_due(self) -> None:
        if self.checkpoint_due:
            self.checkpoint()
            self.checkpoint_due = False

    def state(self) -> dict[str, Any]:
        """The loop's JSON state for a checkpoint."""
        return {
            "config": config_dict(self.cfg),
            "curve": self.curve,
            "decision_rates": self.decision_rates,
            "refits": self.refits,
            "model_rows": self.model_rows,
            "fitted_episodes": self.fitted_episodes,
            "imagined": self.imagined,
            "truncated": self.truncated,
            "rng": self.rng.bit_generator.state,
            "world_model": str(self.world_model_dir) if self.world_model_dir else None,
            "wall_s": time.perf_counter() - self.start,
        }

    def restore(self, state: dict[str, Any]) -> None:
        from worldmodel.train import load

        self.curve = [tuple(row) for row in state["curve"]]
        # absent in checkpoints before it: unknown rates for the evaluations made then
        rates = state.get("decision_rates", [])
        self.decision_rates = [float("nan")] * (len(self.curve) - len(rates)) + rates
        self.refits, self.imagined = state["refits"], state["imagined"]
        self.truncated = state.get("truncated", 0)
        self.model_rows = state.get("model_rows", [])  # absent in checkpoints before it
        # a checkpoint from before model.csv: the model was fitted on (about) all its episodes
        self.fitted_episodes = state.get("fitted_episodes", len(self.recorder.episodes))
        self.rng.bit_generator.state = state["rng"]
        if state["world_model"] is not None:
            self.world_model_dir = Path(state["world_model"])
            self.world_model = load(self.world_model_dir)
        self.start = time.perf_counter() - state["wall_s"]

    def drop_refits_after_checkpoint(self) -> None:
        """Remove ``model/refit_NNN`` directories numbered at or past the current refit count
        (0 on a fresh start, the checkpoint's on resume): a run stopped after its last
        checkpoint left them, this run refits them anew (from the checkpoint's data and random
        state), and the trainer refuses a directory that already holds a run. Anything else in
        ``model/`` (the restored model's own refit included) is left alone."""
        keep = self.world_model_dir.resolve() if self.world_model_dir is not None else None
        for number, run in sorted(refit_runs(self.cfg.out).items()):
            if run.is_symlink() or not run.is_dir() or run.resolve() == keep:
                continue
            if number >= self.refits:
                log.warning("removing %s: a refit past the checkpoint this run resumes", run)
                shutil.rmtree(run)

    def checkpoint(self) -> None:
        save_dyna_checkpoint(self.cfg.out, self.model, self.state(), self._dataset())


def refit_runs(out: Path) -> dict[int, Path]:
    """The model refits of the dyna run in ``out``: ``out/model/refit_<digits>`` by number (other
    names are not refits); empty when there are none."""
    runs = {}
    for run in (out / "model").glob("refit_*"):
        number = re.fullmatch(r"refit_(\d+)", run.name, re.ASCII)
        if number is not None:
            runs[int(number[1])] = run
    return runs


def learner_class(name: str) -> type[OffPolicyAlgorithm]:
    """The off-policy algorithm ``DynaConfig.agent`` names: SB3's SAC or sb3-contrib's CrossQ."""
    if name == "sac":
        return SAC
    if name == "crossq":
        from sb3_contrib import CrossQ

        return CrossQ
    raise ValueError(f"dyna: agent must be 'sac' or 'crossq', got {name!r}")


def critic_kwargs(units: int | None) -> dict[str, Any]:
    """The learner's keyword arguments for critics of ``units`` x ``units`` beside SB3's
    256 x 256 actor (none for None: the learner's own default network)."""
    if units is None:
        return {}
    return {"policy_kwargs": {"net_arch": {"pi": [256, 256], "qf": [units, units]}}}


def run_dyna(cfg: DynaConfig) -> dict[str, Any]:
    """Train SAC for ``cfg.steps`` real steps (with imagined transitions when ``use_model``).

    A checkpoint is written at every evaluation; a rerun with the same ``out`` resumes from the
    latest one (``steps`` may grow), and a finished run returns its saved curve."""
    cfg.check()
    check_env_id(cfg.env)  # imagination needs the env's reward and termination
    cfg.out.mkdir(parents=True, exist_ok=True)
    env = real_env(cfg, record=True)
    recorder = recorder_of(env)
    timed: dict[str, Any] = {}
    if cfg.timed_discount:  # each transition discounted over its own interval
        timed = {
            "self_timed": cfg.self_timed,
            "gamma": cfg.gamma,
            "default_substeps": env.get_wrapper_attr("default_substeps"),  # SelfTimed's dt0
        }
    buffer: dict[str, Any] = {}
    if cfg.use_model:
        buffer = {
            "replay_buffer_class": MixedReplayBuffer,
            "replay_buffer_kwargs": {
                "imagined_capacity": cfg.imagined_capacity,
                "real_ratio": cfg.real_ratio,
            }
            | timed,
        }
    elif timed:
        buffer = {"replay_buffer_class": TimedReplayBuffer, "replay_buffer_kwargs": timed}
    agent = learner_class(cfg.agent)(
        "MlpPolicy",
        env,
        learning_starts=cfg.init_steps,
        gradient_steps=cfg.gradient_steps,
        batch_size=cfg.batch_size,
        target_entropy="auto" if cfg.target_entropy is None else cfg.target_entropy,
        gamma=cfg.gamma,
        seed=cfg.seed,
        device="cpu",
        verbose=0,
        **buffer,
        **critic_kwargs(cfg.critic_units),
    )
    cb = DynaCallback(cfg, recorder, control_clock(env))
    resume_from = latest_checkpoint(cfg.out)
    if resume_from is not None:
        state, episodes = load_dyna_checkpoint(resume_from, agent, cfg)
        recorder.episodes[:] = episodes
        cb.restore(state)
        log.info("resumed %s at %d real steps", cfg.out, agent.num_timesteps)
    cb.drop_refits_after_checkpoint()
    if agent.num_timesteps < cfg.steps:
        agent.learn(
            cfg.steps - agent.num_timesteps, callback=cb, reset_num_timesteps=resume_from is None
        )
    agent.save(cfg.out / "agent.zip")
    return {
        "curve": cb.curve,
        "decision_rates": cb.decision_rates,
        "final_real_return": cb.curve[-1][1] if cb.curve else float("nan"),
        "refits": cb.refits,
        "imagined_transitions": cb.imagined,
        "truncated_transitions": cb.truncated,
        "buffer": agent.replay_buffer.size(),
        "imagined_buffer": getattr(agent.replay_buffer, "im_size", 0),
        "wall_s": time.perf_counter() - cb.start,
        "resumed_from": resume_from,
    }


def dyna_summary(res: dict[str, Any], cfg: DynaConfig) -> str:
    name = learner_class(cfg.agent).__name__  # SAC, CrossQ
    kind = f"{name} + {cfg.model} imagination" if cfg.use_model else f"model-free {name}"
    curve = ", ".join(f"{s}: {r:.1f}" for s, r, _ in res["curve"])
    return (
        f"{kind} on {cfg.env}, {cfg.steps} real steps in {res['wall_s']:.0f} s: "
        f"final mean real return {res['final_real_return']:.1f}; "
        f"curve (real steps: return) {curve}; {res['refits']} refits, "
        f"{res['imagined_transitions']} imagined transitions"
        + (
            f" ({res['truncated_transitions']} dropped for the members' disagreement); "
            if cfg.max_spread is not None
            else "; "
        )
        + f"curve in {Path(cfg.out) / 'curve.csv'}"
    )
