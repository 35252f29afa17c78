"""Imagined steps per second at batch sizes 1 to 4096, against the real Hopper-v5 in the same run.

    python benchmarks/imagination.py [--batches 1,16,256,1024,4096] [--seconds 2] [--device cuda]

Baselines, measured first in this run:
  * the real Hopper-v5 through Gymnasium: a ``gym.make`` step loop with random actions,
  * ``mujoco.rollout`` of Hopper-v5's model (4 physics substeps per control step), batched,
    on 2 threads.
Then, for ``latent-ode`` and ``mlp-ensemble`` at their default sizes (weights untrained: speed
does not depend on them), ``ImaginedVectorEnv.step`` (the full Gymnasium path: checks, model,
reward and termination, autoreset) and the bare ``ImaginationCore.step`` at each batch size, with
the model on ``--device`` (rows ``NAME-cuda-...`` when not the CPU; both paths return numpy, so the
timings include the copy back).
Each latent-ode row is measured twice: as trained (float32) and with ``precision="bf16"``
(rows ``latent-ode-bf16-...``: the vector field's hidden layers in bfloat16, the state update
in float32).
The machine's speed drifts within minutes (the gym loop has measured 5.3k-9.5k steps/s on the
same afternoon), so the gym loop is timed again around every measurement (half ``--seconds``
before and after it) and each ratio divides by the mean of those two loops; rows
``real-gym-min`` and ``-max`` give the loop's range over the run (their ratios: to the first).
Prints steps/s and the ratio to the real single env; appends to
``benchmarks/results/imagination.csv``. ``--profile`` prints where the time goes at the
largest batch.

``--accuracy RUN`` (a trained latent-ode run, e.g. one of ``benchmarks/world_models.py``'s)
also measures what bf16 costs in accuracy: open-loop MSE against the simulator from the run's
held-out episodes (its own dataset and split, 256 starts, random actions at the data's timing)
at float32 and at bf16, appended to ``benchmarks/results/imagination_accuracy.csv``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from functools import partial
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import torch
from _results import append_rows
from mujoco import rollout

from envs.imagined import ImaginedVectorEnv
from worldmodel.evaluate import ModelPredictor
from worldmodel.models import ModelConfig
from worldmodel.models.latent import hidden_precision
from worldmodel.train import TrainConfig, Trainer

RESULTS = Path(__file__).parent / "results" / "imagination.csv"


def timed(fn, seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after one warm-up call)."""
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


class GymLoop:
    """The real Hopper-v5 through Gymnasium: a ``gym.make`` step loop with random actions,
    timed again beside every measurement (the machine's speed drifts within minutes)."""

    def __init__(self) -> None:
        self.env = gym.make("Hopper-v5")
        self.env.reset(seed=0)
        self.rng = np.random.default_rng(0)
        self.rates: list[float] = []

    def _step(self) -> None:
        _, _, term, trunc, _ = self.env.step(self.rng.uniform(-1, 1, 3))
        if term or trunc:
            self.env.reset()

    def rate(self, seconds: float) -> float:
        """Steps per second now (also kept in ``rates``)."""
        self.rates.append(timed(self._step, seconds))
        return self.rates[-1]


def real_rollout(batch: int, seconds: float, nstep: int = 100) -> float:
    env = gym.make("Hopper-v5")
    env.reset(seed=0)
    base = env.unwrapped
    m = base.model
    datas = [mujoco.MjData(m) for _ in range(2)]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.zeros(mujoco.mj_stateSize(m, spec))
    mujoco.mj_getState(m, base.data, state, spec)
    init = np.tile(state, (batch, 1))
    ctrl = np.random.default_rng(0).uniform(-1, 1, size=(batch, nstep * base.frame_skip, m.nu))
    calls = timed(lambda: rollout.rollout(m, datas, init, ctrl, persistent_pool=True), seconds)
    return calls * batch * nstep  # control steps (of 4 substeps) per second


def make_run(model: str, directory: Path) -> Path:
    from worldmodel.collect import CollectConfig, collect

    data = collect(CollectConfig(episodes=20, max_episode_steps=30, progress=False))
    out = directory / model
    cfg = TrainConfig(
        model=model,
        net=ModelConfig(),
        epochs=1,
        steps_per_epoch=1,
        batch_size=8,
        window=10,
        eval_windows=4,
        progress=False,
        tensorboard=False,
    )
    Trainer(cfg, data, out).fit()
    return out


class Bf16Predictor(ModelPredictor):
    """The model's open-loop predictions with its field's hidden layers in bfloat16."""

    def predict(self, contexts, actions, dts):
        with hidden_precision(self.model, torch.bfloat16):
            return super().predict(contexts, actions, dts)


def accuracy(run: Path, horizons: tuple[int, ...] = (1, 5, 10, 30)) -> list[tuple]:
    """Rows ``(run, precision, h, mse, ratio to float32)`` for the trained latent-ode ``run``."""
    from worldmodel.data import load_dataset
    from worldmodel.evaluate import compare_to_simulator, heldout_split
    from worldmodel.train import load

    model = load(run)
    dataset = load_dataset(model.run_config["dataset"]["path"])
    res = compare_to_simulator(
        [ModelPredictor(model, "fp32", samples=1), Bf16Predictor(model, "bf16", samples=1)],
        heldout_split(model, dataset),
        model.normalizer,
        horizon=max(horizons),
        starts=256,
    )
    rows = []
    for h in horizons:
        full, half = (float(res.errors[k][:, h - 1].mean()) for k in ("fp32", "bf16"))
        print(f"{run.name}  h={h:<3} float32 {full:.5g}  bf16 {half:.5g}  ({half / full:.4f}x)")
        rows += [(str(run), "fp32", h, f"{full:.6g}", "1.0000")]
        rows += [(str(run), "bf16", h, f"{half:.6g}", f"{half / full:.4f}")]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,16,256,1024,4096")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--device", default="cpu", help="where the model runs: cpu or cuda")
    ap.add_argument("--accuracy", type=Path, help="a trained latent-ode run: bf16's error")
    args = ap.parse_args()
    tag = "" if args.device == "cpu" else f"-{args.device}"
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(2)

    # rows (what, batch, steps/s, the gym loop's steps/s around that measurement)
    rows: list[tuple[str, int, float, float]] = []
    loop = GymLoop()
    first = loop.rate(args.seconds)
    print(f"real Hopper-v5, gymnasium step loop      {first:10.0f} steps/s")
    before = first
    for b in (1, 1024):
        sps = real_rollout(b, args.seconds)
        after = loop.rate(args.seconds / 2)
        rows.append(("real-mujoco-rollout", b, sps, (before + after) / 2))
        before = after
        print(f"real Hopper-v5, mujoco.rollout batch {b:<5} {sps:10.0f} steps/s   ", end="")
        print(f"({sps / rows[-1][3]:.2f}x)")

    with tempfile.TemporaryDirectory() as tmp:
        for name, precision in (
            ("latent-ode", "fp32"),
            ("latent-ode-bf16", "bf16"),
            ("mlp-ensemble", "fp32"),
        ):
            model = name.removesuffix("-bf16")
            run = Path(tmp) / model
            if not run.exists():  # the bf16 rows step the float32 rows' run
                make_run(model, Path(tmp))
            for b in batches:
                venv = ImaginedVectorEnv(
                    run, num_envs=b, max_episode_steps=1000, device=args.device, precision=precision
                )
                venv.reset(seed=0)
                actions = np.random.default_rng(0).uniform(-1, 1, size=(b, 3))
                core, state, obs = venv.core, venv.batch.state, venv.batch.obs
                dt = np.full(b, venv.real.dt)
                # each model timing between two gym loops; its ratio divides by their mean
                g0 = loop.rate(args.seconds / 2)
                env_sps = timed(partial(venv.step, actions), args.seconds) * b
                g1 = loop.rate(args.seconds / 2)
                core_sps = timed(partial(core.step, state, obs, actions, dt), args.seconds) * b
                g2 = loop.rate(args.seconds / 2)
                rows += [
                    (f"{name}{tag}-vector-env", b, env_sps, (g0 + g1) / 2),
                    (f"{name}{tag}-core", b, core_sps, (g1 + g2) / 2),
                ]
                print(
                    f"{name + tag:<18} batch {b:<5} vector env {env_sps:10.0f} steps/s "
                    f"({env_sps / rows[-2][3]:7.2f}x)   "
                    f"core {core_sps:10.0f} steps/s ({core_sps / rows[-1][3]:7.2f}x)"
                )
                if args.profile and b == batches[-1]:
                    prof = cProfile.Profile()
                    prof.runcall(partial(timed, partial(venv.step, actions), 1.0))
                    pstats.Stats(prof).sort_stats("cumulative").print_stats(12)

    rates = loop.rates
    print(
        f"the gym loop, timed {len(rates)} times: {min(rates):.0f}-{max(rates):.0f} steps/s "
        f"(median {float(np.median(rates)):.0f})"
    )
    rows = [
        ("real-gym", 1, first, first),
        ("real-gym-min", 1, min(rates), first),
        ("real-gym-max", 1, max(rates), first),
        *rows,
    ]
    append_rows(
        RESULTS,
        ["what", "batch", "steps_per_s", "ratio_to_real_gym"],
        [(what, b, f"{sps:.0f}", f"{sps / gym:.3f}") for what, b, sps, gym in rows],
    )
    if args.accuracy is not None:
        append_rows(
            RESULTS.with_name("imagination_accuracy.csv"),
            ["run", "precision", "horizon", "mse", "ratio_to_fp32"],
            accuracy(args.accuracy),
        )


if __name__ == "__main__":
    main()
