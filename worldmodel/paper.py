"""The Latent ODE paper's MuJoCo Hopper protocol (Rubanova, Chen & Duvenaud 2019, Table 3).

As the original code does it:

* physics: the DeepMind Control Suite hopper (``dm_control.suite.hopper.get_model_and_assets``,
  loaded with ``mujoco`` directly; timestep 0.005 s), zero control;
* 10,000 trajectories of 200 raw physics steps from random initial states, numpy seed 123,
  drawn in the original's order: ``qpos[:2] ~ U(0, 0.5)``, ``qpos[2:] ~ U(-2, 2)``,
  ``qvel ~ U(-5, 5)``; state = qpos (7) ++ qvel (7);
* normalisation per feature over the whole dataset as ``(x - min) / max`` (sic; the MSE is
  measured in that space); time = step index / 200;
* split: the first 8,000 trajectories train (of which 10 % validate here), the last 2,000 test;
* interpolation: one random 100-step window per trajectory, a fraction p of its points seen,
  all 100 scored; extrapolation: all 200 steps, p of the first third (66 points; the paper's
  text says half, its code a third) seen, the other 134 scored. Metric: MSE over every scored
  entry, averaged over the test set.

``worldmodel benchmark paper-hopper`` runs one cell or ``--all`` of them and appends measured
values, the paper's, wall-clock and settings to ``benchmarks/results/paper_hopper.csv``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.config import PaperConfig
from worldmodel.io import append_csv
from worldmodel.metrics import trained_seconds

# Table 3, Latent ODE (ODE encoder), test MSE
PAPER_LATENT_ODE = {
    ("interp", 0.1): 0.360e-2,
    ("interp", 0.2): 0.295e-2,
    ("interp", 0.3): 0.300e-2,
    ("interp", 0.5): 0.285e-2,
    ("extrap", 0.1): 1.441e-2,
    ("extrap", 0.2): 1.400e-2,
    ("extrap", 0.3): 1.175e-2,
    ("extrap", 0.5): 1.258e-2,
}
LENGTH, CONTEXT_POINTS, WINDOW = 200, 66, 100
PROFILES = {
    "quick": {"trajectories": 2000, "epochs": 8},
    "full": {"trajectories": 10000, "epochs": 100},
}


def hopper_model():
    """The dm_control hopper as a ``mujoco.MjModel`` (dm-control is the ``paper`` extra)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        from dm_control.suite import hopper
    except ImportError:
        raise ImportError(
            "the paper-hopper benchmark needs dm-control: pip install -e '.[paper]'"
        ) from None
    import mujoco

    return mujoco.MjModel.from_xml_string(*hopper.get_model_and_assets())


def generate(n: int = 10000, length: int = LENGTH, seed: int = 123) -> np.ndarray:
    """``(n, length, 14)`` raw states (qpos ++ qvel) recorded before each physics step."""
    import mujoco
    from mujoco import rollout

    m = hopper_model()
    d = mujoco.MjData(m)
    rs = np.random.RandomState(seed)  # the original seeds numpy's global (legacy) generator
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    init = np.zeros((n, mujoco.mj_stateSize(m, spec)))
    for i in range(n):
        mujoco.mj_resetData(m, d)
        d.qpos[:2] = rs.uniform(0, 0.5, size=2)
        d.qpos[2:] = rs.uniform(-2, 2, size=m.nq - 2)
        d.qvel[:] = rs.uniform(-5, 5, size=m.nv)
        mujoco.mj_forward(m, d)
        mujoco.mj_getState(m, d, init[i], spec)
    datas = [mujoco.MjData(m) for _ in range(os.cpu_count() or 1)]
    states, _ = rollout.rollout(m, datas, init, np.zeros((n, length - 1, m.nu)))
    full = np.concatenate([init[:, None], states], 1)  # (n, length, nstate): time, qpos, qvel, ...
    return full[:, :, 1 : 1 + m.nq + m.nv]


def load_or_generate(cache: Path, n: int) -> np.ndarray:
    """Normalised ``(n, 200, 14)`` float32 data, cached in ``cache`` (written atomically)."""
    from worldmodel.io import atomic_write

    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            if int(z["n"]) == n:
                return z["data"]
    raw = generate(n)
    flat = raw.reshape(-1, raw.shape[-1])
    lo, hi = flat.min(0), flat.max(0)
    hi = np.where(hi == 0, 1.0, hi)
    data = ((raw - lo) / hi).astype(np.float32)
    atomic_write(cache, lambda f: np.savez_compressed(f, data=data, n=np.array(n), min=lo, max=hi))
    return data


def as_dataset(data: np.ndarray):
    """Trajectories as a :class:`worldmodel.data.Dataset` (time = step / 200, no actions)."""
    from worldmodel.data import Dataset, Episode

    T = data.shape[1]
    t = np.arange(T) / LENGTH
    eps = [
        Episode(
            t=t,
            obs=x.astype(np.float64),
            actions=np.zeros((T - 1, 0), np.float32),
            rewards=np.zeros(T - 1),
            qpos=np.zeros((T, 0)),
            qvel=np.zeros((T, 0)),
        )
        for x in data
    ]
    return Dataset(eps, {"env_id": "dm_control/hopper", "protocol": "rubanova2019-hopper"})


def net_for(model: str, obs_std: float | None = None):
    """The paper's Hopper sizes: 15 latents, 3 x 300 ODE networks, encoder 30, linear decoder.

    As in the original code, the latent ODE's generative ODE uses dopri5 and the ODE-RNN's
    hidden-state ODE takes Euler steps (one per interval between grid points here)."""
    from worldmodel.config import ModelConfig

    solver = "euler" if model == "ode-rnn" else "dopri5"
    return ModelConfig(
        latent_dim=15,
        rec_dim=30,
        units=300,
        layers=3,
        rec_layers=3,
        dec_units=0,
        samples=3,
        solver=solver,
        time_unit=1.0,
        ensemble_units=300,
        ensemble_layers=3,
        obs_std=obs_std,
        carry_obs=False,
        field_activation="tanh",
        max_step=None,
        noise_horizons=0,
    )


def protocol_batches(test, mode: str, observed: float, seed: int, chunk: int = 250):
    """Fixed-seed batches of the protocol's test windows and masks."""
    from worldmodel.batching import Normalizer, Window, make_batch

    ident = Normalizer(np.zeros(test.obs_dim), np.ones(test.obs_dim))
    rng = np.random.default_rng([seed, int(observed * 1000), len(mode)])
    if mode == "interp":
        starts = rng.integers(0, LENGTH - WINDOW + 1, size=len(test))
        windows = [Window(i, int(s), int(s) + WINDOW) for i, s in enumerate(starts)]
    else:
        windows = [Window(i, 0, LENGTH) for i in range(len(test))]
    return [
        make_batch(
            test.episodes,
            windows[i : i + chunk],
            ident,
            mode=mode,
            observed=observed,
            context_fraction=CONTEXT_POINTS / LENGTH,
            rng=rng,
        )
        for i in range(0, len(windows), chunk)
    ]


def test_mse(model, batches) -> float:
    """MSE over every scored entry of ``batches`` (the protocol's metric); eval mode, no grad."""
    import torch

    was_training = model.training
    model.eval()
    sq = k = 0.0
    with torch.no_grad():
        for b in batches:
            b = b.to(next(model.parameters()).device)
            w = float(b.target.sum()) * model.obs_dim
            sq, k = sq + model.metrics(b)["mse"] * w, k + w
    model.train(was_training)
    return sq / k


def run_cell(cfg: PaperConfig, mode: str, observed: float, data: np.ndarray) -> dict[str, Any]:
    """Train ``cfg.model`` on one (mode, observed) cell and score it on the test split."""

    from worldmodel.config import TrainConfig
    from worldmodel.train import Trainer

    prof = PROFILES[cfg.profile]
    n = data.shape[0]
    n_train = int(0.8 * n)
    train, test = as_dataset(data[:n_train]), as_dataset(data[n_train:])
    epochs = cfg.epochs or prof["epochs"]
    steps = max(1, int(0.9 * n_train) // cfg.batch_size)
    tc = TrainConfig(
        model=cfg.model,
        net=net_for(cfg.model, cfg.obs_std),
        epochs=epochs,
        steps_per_epoch=steps,
        batch_size=cfg.batch_size,
        window=WINDOW if mode == "interp" else LENGTH,
        lr=cfg.lr,
        mode=mode,
        observed_min=observed,
        observed_max=observed,
        context_fraction=CONTEXT_POINTS / LENGTH,
        eval_observed=observed,
        eval_windows=200,
        normalize_obs=False,
        split=(0.9, 0.1, 0.0),
        patience=0,
        seed=cfg.seed,
        device=cfg.device,
        progress=cfg.progress,
        tensorboard=False,
    )
    run = cfg.runs / f"{cfg.model}-{mode}-{observed:g}-{cfg.profile}"
    start = time.perf_counter()
    budget = cfg.minutes * 60 if cfg.minutes else None

    def out_of_time(trainer, epoch, metrics) -> bool:
        return budget is not None and time.perf_counter() - start > budget

    batches = protocol_batches(test, mode, observed, cfg.seed)

    def trace(trainer, epoch, metrics) -> bool:
        """Test MSE of the current weights (the average, with ``ema_decay``) after each epoch,
        against the summed epoch times (the trace's own time is not counted); never used to
        choose a checkpoint."""
        if cfg.trace_test:
            row = {
                "epoch": epoch,
                "seconds": round(trained_seconds(run), 1),
                "test_mse": test_mse(trainer.evaluated_model, batches),
            }
            append_csv(run / "test_trace.csv", [row])
        return False

    trainer = Trainer(
        tc, train, run, resume=(run / "last.safetensors").exists(), callbacks=[trace, out_of_time]
    )
    trainer.fit()
    seconds = trained_seconds(run)
    from worldmodel.train import load

    model = load(run, device=cfg.device)
    paper = PAPER_LATENT_ODE.get((mode, observed)) if cfg.model == "latent-ode" else None
    return {
        "model": cfg.model,
        "mode": mode,
        "observed": observed,
        "test_mse": test_mse(model, batches),
        "paper_mse": paper,
        "train_seconds": round(seconds, 1),
        "epochs": trainer.state["epoch"],
        "best_epoch": trainer.state["best_epoch"],
        "iterations": trainer.state["step"],
        "trajectories": n,
        "profile": cfg.profile,
        "device": str(trainer.device),
        "settings": json.dumps({**asdict(tc.net), "lr": cfg.lr, "batch_size": cfg.batch_size}),
    }


def run_benchmark(cfg: PaperConfig) -> list[dict[str, Any]]:
    """Run the asked cells; print measured vs paper; append rows to ``cfg.csv``."""

    prof = PROFILES[cfg.profile]
    n = cfg.trajectories or prof["trajectories"]
    t0 = time.perf_counter()
    data = load_or_generate(cfg.cache.with_name(f"{cfg.cache.stem}_{n}.npz"), n)
    print(
        f"data: {n} trajectories of {LENGTH} steps "
        f"({time.perf_counter() - t0:.1f} s incl. generation or cache)"
    )
    if cfg.all:
        modes = ("interp", "extrap") if cfg.model != "mlp-ensemble" else ("extrap",)
        cells = [(m, p) for m in modes for p in (0.1, 0.2, 0.3, 0.5)]
    else:
        if cfg.model == "mlp-ensemble" and cfg.mode == "interp":
            raise ValueError(
                "mlp-ensemble is a one-step model: only the extrap mode makes sense for it"
            )
        cells = [(cfg.mode, cfg.observed)]
    rows = []
    for mode, p in cells:
        row = run_cell(cfg, mode, p, data)
        rows.append(row)
        paper = "" if row["paper_mse"] is None else f"   paper {row['paper_mse'] * 100:.3f}"
        print(
            f"{row['model']} {mode:<6} p={p:<4} test MSE x1e-2 {row['test_mse'] * 100:.3f}{paper}"
            f"   ({row['train_seconds']:.0f} s, {row['iterations']} iterations, {row['device']})"
        )
    append_csv(cfg.csv, rows)
    print(f"appended to {cfg.csv}")
    return rows
