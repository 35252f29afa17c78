"""Collect irregularly timed rollouts into a dataset, in parallel worker processes.

Episode ``i`` is reset with its own seed, drawn from ``SeedSequence(seed)``, and its policy is
re-seeded with it, so the dataset depends on ``seed`` only, never on the worker count.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from envs.factory import EnvSpec, make_env
from envs.wrappers import TrajectoryRecorder, mujoco_base
from worldmodel.data import Dataset, Episode, library_versions


@dataclass
class CollectConfig:
    """Settings of one collection run."""

    env: str = "Hopper-v5"
    """Gymnasium MuJoCo env id."""
    episodes: int = 50
    """Number of episodes to record."""
    policy: str = "random"
    """``random``, ``zero``, or the path of a stable-baselines3 ``.zip``."""
    action_noise: float = 0.0
    """Gaussian action noise for an SB3 policy, as a fraction of each action's half-range."""
    timing: str = "uniform:1-7"
    """Physics substeps per step: ``fixed``, ``fixed:N``, ``uniform:A-B``, ``geometric:P[:MAX]``."""
    seed: int = 0
    """Master seed: fixes every episode's seed, the timing draws and the policy."""
    workers: int = 1
    """Worker processes (the data is the same for any count)."""
    max_episode_steps: int | None = None
    """Time limit in steps (default: the env's registered limit, 1000 for Hopper-v5)."""
    reset_noise: float = 0.0
    """Extra uniform noise on qpos/qvel at reset."""
    incline_deg: float = 0.0
    """Tilt of gravity in degrees (positive: uphill towards +x)."""
    env_kwargs: dict[str, float] = field(default_factory=dict)
    """Extra keyword arguments for ``gym.make`` (e.g. ``ctrl_cost_weight``)."""
    progress: bool = True
    """Show a progress bar."""

    def env_spec(self) -> EnvSpec:
        return EnvSpec(
            env_id=self.env,
            timing=self.timing,
            max_episode_steps=self.max_episode_steps,
            reset_noise=self.reset_noise,
            incline_deg=self.incline_deg,
            env_kwargs=dict(self.env_kwargs),
        )

    def check(self) -> None:
        """Fail before any worker starts, naming the bad setting."""
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        self.env_spec().check()


def episode_seeds(seed: int, episodes: int) -> np.ndarray:
    """``(episodes,)`` int64 reset seeds, independent of how episodes are shared out."""
    return np.random.SeedSequence(seed).generate_state(episodes, dtype=np.uint32).astype(np.int64)


# One env and policy per worker process, built on first use.
_WORKER: dict[str, Any] = {}


def _worker_setup(config: CollectConfig) -> tuple[TrajectoryRecorder, Any]:
    key = repr(config)
    if _WORKER.get("key") != key:
        from agents.policies import make_policy

        env = make_env(config.env_spec(), record=True)
        policy = make_policy(
            config.policy, env.observation_space, env.action_space, noise_std=config.action_noise
        )
        _WORKER.update(key=key, env=env, policy=policy)
    return _WORKER["env"], _WORKER["policy"]


def run_episode(env: TrajectoryRecorder, policy: Any, seed: int) -> Episode:
    """Run one episode to termination or truncation and return its record."""
    obs, _ = env.reset(seed=int(seed))
    policy.reset(int(seed))
    while True:
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        if terminated or truncated:
            return env.episodes.pop()


_IN_WORKER = False  # set in the processes of :func:`worker_pool` only


def _mark_worker() -> None:
    global _IN_WORKER
    _IN_WORKER = True


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` collection processes, spawned (they never inherit torch/MuJoCo state from
    the parent); an SB3 policy runs on one torch thread in each."""
    ctx = mp.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_mark_worker)


def collect_chunk(config: CollectConfig, seeds: list[int]) -> list[Episode]:
    """The episodes of ``seeds`` (one reset seed each) collected as ``config`` says, in this
    process (a worker's share of :func:`collect` and of ``collect_shards``). In the caller's
    own process it leaves torch's thread count as it is."""
    env, policy = _worker_setup(config)
    if _IN_WORKER and "torch" in sys.modules:  # an SB3 policy: one thread per worker process
        sys.modules["torch"].set_num_threads(1)
    return [run_episode(env, policy, s) for s in seeds]


def metadata(config: CollectConfig) -> dict[str, Any]:
    """Dataset metadata describing how ``config`` collects."""
    spec = config.env_spec()
    env = make_env(spec)
    try:
        base = mujoco_base(env)
        from agents.policies import make_policy

        policy = make_policy(
            config.policy, env.observation_space, env.action_space, noise_std=config.action_noise
        )
        return {
            # env_id, env_kwargs, wrappers: what EnvSpec.from_metadata rebuilds the env from
            **spec.metadata(),
            "max_episode_steps": env.spec.max_episode_steps if env.spec else None,
            "policy": policy.describe(),
            "seed": config.seed,
            "physics_timestep": float(base.model.opt.timestep),
            "default_dt": float(base.dt),
            "observation_shape": list(env.observation_space.shape),
            "action_low": env.action_space.low.tolist(),
            "action_high": env.action_space.high.tolist(),
            "nq": int(base.model.nq),
            "nv": int(base.model.nv),
            "library_versions": library_versions(),
        }
    finally:
        env.close()


def collect(config: CollectConfig) -> Dataset:
    """Record ``config.episodes`` episodes and return them as a :class:`Dataset`."""
    config.check()
    meta = metadata(config)  # also fails early on a bad policy path
    seeds = episode_seeds(config.seed, config.episodes).tolist()
    chunk = max(1, min(8, config.episodes // (4 * config.workers)))
    chunks = [seeds[i : i + chunk] for i in range(0, len(seeds), chunk)]
    episodes: list[Episode] = []
    bar = tqdm(
        total=config.episodes, desc=f"collect {config.env}", unit="ep", disable=not config.progress
    )
    with bar:
        if config.workers == 1:
            for c in chunks:
                episodes.extend(collect_chunk(config, c))
                bar.update(len(c))
        else:
            with worker_pool(config.workers) as pool:
                for eps in pool.map(collect_chunk, [config] * len(chunks), chunks):
                    episodes.extend(eps)
                    bar.update(len(eps))
        bar.set_postfix(steps=sum(len(e) - 1 for e in episodes))
    return Dataset(episodes, meta)


def collect_to_file(config: CollectConfig, out: str | Path) -> Dataset:
    """Collect and write the dataset atomically to ``out`` (a file; ``collect_shards`` writes
    a directory)."""
    if Path(out).is_dir():  # refused before the collection, not after
        raise IsADirectoryError(f"{out} is a directory; give a file path (or --shard-size)")
    dataset = collect(config)
    dataset.save(out)
    return dataset
