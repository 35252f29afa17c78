"""The Latent ODE paper's Hopper protocol: data, normalisation, windows and masks."""

import mujoco
import numpy as np
import pytest

pytest.importorskip("dm_control")

from worldmodel.paper import (  # noqa: E402
    CONTEXT_POINTS,
    LENGTH,
    WINDOW,
    as_dataset,
    generate,
    hopper_model,
    protocol_batches,
)


def test_generation_follows_the_protocol():
    data = generate(n=3, length=12, seed=123)
    assert data.shape == (3, 12, 14)
    # the first state is the protocol's draw, in the original's order
    rs = np.random.RandomState(123)
    q01, q2, v = rs.uniform(0, 0.5, 2), rs.uniform(-2, 2, 5), rs.uniform(-5, 5, 7)
    np.testing.assert_allclose(data[0, 0], np.r_[q01, q2, v])
    # each next state is one raw physics step (0.005 s, zero control) of the dm_control hopper
    m = hopper_model()
    assert m.opt.timestep == 0.005
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = data[1, 0, :7], data[1, 0, 7:]
    mujoco.mj_forward(m, d)
    for k in range(1, 12):
        mujoco.mj_step(m, d)
        np.testing.assert_allclose(np.r_[d.qpos, d.qvel], data[1, k], atol=1e-9)


def test_windows_and_masks():
    data = np.random.default_rng(0).random((6, LENGTH, 14)).astype(np.float32)
    test = as_dataset(data)
    (bi,) = protocol_batches(test, "interp", 0.3, seed=0)
    assert bi.times.shape[0] == WINDOW and (bi.target.sum(1) == WINDOW).all()
    assert (bi.context.sum(1) == 30).all()
    (be,) = protocol_batches(test, "extrap", 0.5, seed=0)
    assert (be.target.sum(1) == LENGTH - CONTEXT_POINTS).all() and (be.context.sum(1) == 33).all()
    assert (be.context[:, CONTEXT_POINTS:] == 0).all()
    (again,) = protocol_batches(test, "extrap", 0.5, seed=0)
    assert (again.context == be.context).all()


def test_a_tiny_cell_end_to_end_resumes_and_traces(tmp_path):
    import csv

    from worldmodel.config import PaperConfig
    from worldmodel.paper import run_benchmark

    cfg = PaperConfig(
        mode="extrap",
        observed=0.3,
        trajectories=10,
        epochs=1,
        batch_size=4,
        cache=tmp_path / "hopper.npz",
        runs=tmp_path / "runs",
        csv=tmp_path / "results.csv",
        device="cpu",
        progress=False,
        trace_test=True,
    )
    (first,) = run_benchmark(cfg)
    assert (
        first["paper_mse"] == 1.175e-2 and np.isfinite(first["test_mse"]) and first["test_mse"] > 0
    )
    assert first["epochs"] == 1 and first["iterations"] == 1  # 0.9 * 8 training trajectories // 4
    assert (tmp_path / "hopper_10.npz").exists()
    cfg.epochs = 2  # the same command with more epochs resumes the cell
    (second,) = run_benchmark(cfg)
    assert second["epochs"] == 2 and second["iterations"] == 2
    # summed over both sessions: the two epochs' own times, whatever the machine's speed (a
    # fast machine rounds both sessions to the same 0.1 s, so no strict comparison of times)
    with (tmp_path / "runs" / "latent-ode-extrap-0.3-quick" / "metrics.csv").open() as f:
        epoch_s = [float(r["time/epoch_s"]) for r in csv.DictReader(f)]
    assert len(epoch_s) == 2 and second["train_seconds"] == round(sum(epoch_s), 1)
    assert second["train_seconds"] >= first["train_seconds"]
    with cfg.csv.open() as f:
        assert [r["epochs"] for r in csv.DictReader(f)] == ["1", "2"]
    with (tmp_path / "runs" / "latent-ode-extrap-0.3-quick" / "test_trace.csv").open() as f:
        trace = list(csv.DictReader(f))
    assert [r["epoch"] for r in trace] == ["1", "2"]
    assert float(trace[0]["seconds"]) == round(epoch_s[0], 1)
    assert float(trace[1]["seconds"]) == round(sum(epoch_s), 1)
    with pytest.raises(ValueError, match="only the extrap mode"):
        run_benchmark(
            PaperConfig(model="mlp-ensemble", mode="interp", trajectories=10, cache=cfg.cache)
        )


@pytest.mark.parametrize(
    "model,mode",
    [
        ("ode-rnn", "interp"),
        ("gru-dt", "extrap"),
        ("rnn-vae", "interp"),
        ("mlp-ensemble", "extrap"),
    ],
)
def test_the_baseline_rows_run_a_tiny_cell(tmp_path, model, mode):
    from worldmodel.config import PaperConfig
    from worldmodel.paper import run_benchmark
    from worldmodel.train import load

    cfg = PaperConfig(
        model=model,
        mode=mode,
        observed=0.5,
        trajectories=10,
        epochs=1,
        batch_size=4,
        cache=tmp_path / "hopper.npz",
        runs=tmp_path / "runs",
        csv=tmp_path / "results.csv",
        device="cpu",
        progress=False,
    )
    (row,) = run_benchmark(cfg)
    assert row["model"] == model and row["paper_mse"] is None
    assert np.isfinite(row["test_mse"]) and row["test_mse"] > 0 and row["iterations"] == 1
    net = load(tmp_path / "runs" / f"{model}-{mode}-0.5-quick").config
    assert net.obs_std == 1e-3  # every row trains on the protocol's fixed observation noise
    assert net.solver == ("euler" if model == "ode-rnn" else "dopri5")  # as the original code
