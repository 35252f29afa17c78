import csv
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.synthetic import linear_dataset
from worldmodel.batching import make_batch, tile_windows
from worldmodel.checkpoint import CheckpointError, read_checkpoint
from worldmodel.models import ModelConfig
from worldmodel.train import TrainConfig, Trainer, TrainingError, load
from worldmodel.training import guard
from worldmodel.training.schedules import LearningRate
from worldmodel.training.writers import RunWriters

NET = ModelConfig(
    latent_dim=4,
    rec_dim=8,
    units=16,
    layers=1,
    dec_units=0,
    time_unit=1.0,
    samples=1,
    ensemble_size=2,
    ensemble_units=16,
    ensemble_layers=1,
)


def cfg(**kw):
    base = dict(
        model="latent-ode",
        net=NET,
        epochs=2,
        steps_per_epoch=4,
        batch_size=8,
        window=10,
        eval_windows=16,
        progress=False,
        tensorboard=False,
    )
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def data():
    return linear_dataset(20, 15, seed=0)


def weights(path):
    tensors, _, _ = read_checkpoint(path)
    return {k: v for k, v in tensors.items() if k.startswith("model/")}


@pytest.mark.parametrize("model", ["latent-ode", "mlp-ensemble"])
def test_save_then_load_gives_identical_predictions(tmp_path, data, model):
    trainer = Trainer(cfg(model=model, epochs=1), data, tmp_path / "run")
    trainer.fit()
    loaded = load(tmp_path / "run", which="last", device=str(trainer.device))  # cuda when there
    b = make_batch(
        data.episodes,
        tile_windows(data.episodes[:4], 10),
        trainer.normalizer,
        mode="extrap",
        observed=0.5,
        rng=np.random.default_rng(0),
    ).to(trainer.device)
    trainer.model.eval()
    with torch.no_grad():
        a, c = trainer.model.predict(b), loaded.predict(b)
    assert torch.equal(a.mean, c.mean)
    np.testing.assert_array_equal(
        loaded.normalizer.mean, trainer.normalizer.mean.astype(np.float32)
    )
    assert loaded.env_id == "Linear-v0"
    assert (tmp_path / "run" / "model.safetensors").exists()
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert (
        rows[0].startswith("epoch,step,train/") and "val/extrap_mse" in rows[0] and len(rows) == 2
    )


def test_resume_continues_exactly_where_it_stopped(tmp_path, data):
    Trainer(cfg(epochs=3), data, tmp_path / "straight").fit()
    Trainer(
        cfg(epochs=3), data, tmp_path / "cut", callbacks=[lambda tr, epoch, m: epoch == 1]
    ).fit()
    assert read_checkpoint(tmp_path / "cut" / "last.safetensors")[1]["epoch"] == 1
    Trainer(cfg(epochs=3), data, tmp_path / "cut", resume=True).fit()
    a, b = (
        weights(tmp_path / "straight" / "last.safetensors"),
        weights(tmp_path / "cut" / "last.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    epochs = [
        r.split(",")[0] for r in (tmp_path / "cut" / "metrics.csv").read_text().splitlines()[1:]
    ]
    assert epochs == ["1", "2", "3"]


def test_interrupted_mid_epoch_loses_only_that_epoch(tmp_path, data, monkeypatch):
    Trainer(cfg(epochs=3), data, tmp_path / "straight").fit()
    trainer = Trainer(cfg(epochs=3), data, tmp_path / "cut")
    real = trainer.train_step
    calls = {"n": 0}

    def dies_in_epoch_two(batch):
        calls["n"] += 1
        if calls["n"] == 6:  # epoch 2, step 2 of 4
            raise KeyboardInterrupt
        return real(batch)

    trainer.train_step = dies_in_epoch_two
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert read_checkpoint(tmp_path / "cut" / "last.safetensors")[1]["epoch"] == 1
    Trainer(cfg(epochs=3), data, tmp_path / "cut", resume=True).fit()
    a, b = (
        weights(tmp_path / "straight" / "last.safetensors"),
        weights(tmp_path / "cut" / "last.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_kill_9_mid_training_then_resume(tmp_path, data):
    path = tmp_path / "lin.npz"
    data.save(path)
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "worldmodel.cli",
        "train",
        str(path),
        "--out",
        str(run),
        "--epochs",
        "50",
        "--steps-per-epoch",
        "20",
        "--batch-size",
        "8",
        "--window",
        "10",
        "--no-progress",
        "--no-tensorboard",
        "--net.latent-dim",
        "4",
        "--net.units",
        "16",
        "--net.layers",
        "1",
        "--net.time-unit",
        "1.0",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while (
        not (run / "last.safetensors").exists() and proc.poll() is None and time.time() < deadline
    ):
        time.sleep(0.05)
    time.sleep(0.3)
    if proc.poll() is not None:  # ended before the kill: say why, not "no checkpoint"
        pytest.fail(f"training exited {proc.returncode} on its own: {proc.stderr.read()[-2000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert (run / "last.safetensors").exists(), f"no checkpoint in 120 s: {err[-2000:]}"
    epoch = read_checkpoint(run / "last.safetensors")[1]["epoch"]
    assert 1 <= epoch < 50
    done = subprocess.run(
        [*args[:8], str(epoch + 2), *args[9:], "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert read_checkpoint(run / "last.safetensors")[1]["epoch"] == epoch + 2
    assert load(run).env_id == "Linear-v0"


def test_malicious_pickle_checkpoint_is_refused(tmp_path, data):
    Trainer(cfg(epochs=1), data, tmp_path / "run").fit()
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "run" / "model.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint"):
        load(tmp_path / "run")
    assert not marker.exists()


def test_mismatched_env_and_size_are_named(tmp_path, data):
    Trainer(cfg(epochs=1), data, tmp_path / "run").fit()
    with pytest.raises(CheckpointError, match="trained on 'Linear-v0', not 'Hopper-v5'"):
        load(tmp_path / "run", env_id="Hopper-v5")
    with pytest.raises(CheckpointError, match="2 dims, not 11"):
        load(tmp_path / "run", obs_dim=11)
    with pytest.raises(FileExistsError, match="already holds a run"):
        Trainer(cfg(epochs=1), data, tmp_path / "run")


def test_non_finite_batches_are_skipped_and_never_saved(tmp_path, data):
    trainer = Trainer(cfg(epochs=2), data, tmp_path / "run")
    real = trainer.model.loss
    calls = {"n": 0}

    def sometimes_nan(batch):
        calls["n"] += 1
        loss, m = real(batch)
        return (loss * float("nan"), m) if calls["n"] % 3 == 0 else (loss, m)

    trainer.model.loss = sometimes_nan
    trainer.fit()
    tensors = weights(tmp_path / "run" / "last.safetensors")
    assert all(torch.isfinite(v).all() for v in tensors.values())
    skipped = [
        float(r.split(",")[-2])
        for r in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
    ]
    assert sum(skipped) >= 2
    assert trainer.state["lr_scale"] < 1.0


def test_divergence_stops_with_the_last_good_checkpoint_intact(tmp_path, data):
    trainer = Trainer(cfg(epochs=3, max_bad_batches=3), data, tmp_path / "run")
    real = trainer.model.loss
    calls = {"n": 0}

    def blows_up_in_epoch_two(batch):
        calls["n"] += 1
        loss, m = real(batch)
        return (loss * float("inf"), m) if calls["n"] > 4 else (loss, m)

    trainer.model.loss = blows_up_in_epoch_two
    with pytest.raises(
        TrainingError,
        match="3 consecutive batches .* last good checkpoint .*model.safetensors \\(epoch 1\\)",
    ):
        trainer.fit()
    assert torch.isfinite(load(tmp_path / "run").obs_std).all()


def test_bad_settings_are_named(tmp_path, data):
    with pytest.raises(ValueError, match="unknown model 'lstm'"):
        Trainer(cfg(model="lstm"), data, tmp_path / "a")
    with pytest.raises(ValueError, match="observed_min"):
        Trainer(cfg(observed_min=0.0), data, tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        Trainer(cfg(), data, tmp_path / "c", resume=True)


def test_ensemble_is_selected_on_extrapolation_only(tmp_path, data):
    trainer = Trainer(cfg(model="mlp-ensemble", epochs=1, mode="both"), data, tmp_path / "run")
    row = trainer.fit()
    assert row["val/score"] == row["val/extrap_mse"] != row["val/interp_mse"]


@pytest.mark.parametrize(
    "err", [RuntimeError("shape mismatch"), TypeError("bad operand"), AssertionError("x > 0")]
)
def test_a_bug_in_the_loss_surfaces_instead_of_a_skipped_batch(tmp_path, data, err):
    trainer = Trainer(cfg(epochs=1), data, tmp_path / "run")

    def broken(batch):
        raise err

    trainer.model.loss = broken
    with pytest.raises(type(err), match=str(err)):
        trainer.fit()
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_an_adaptive_solver_blow_up_is_a_skipped_batch(tmp_path, data):
    trainer = Trainer(cfg(epochs=1), data, tmp_path / "run")

    def underflow(batch):  # what torchdiffeq's dopri5 asserts when the state explodes
        raise AssertionError("underflow in dt 0.0")

    trainer.model.loss = underflow
    assert trainer.train_step(trainer._train_batch()) is None
    assert trainer.state["bad_batches"] == 1


def test_an_epoch_whose_batches_were_all_skipped_is_not_a_success(tmp_path, data):
    trainer = Trainer(cfg(epochs=2, steps_per_epoch=3), data, tmp_path / "run")
    real = trainer.model.loss
    trainer.model.loss = lambda batch: (real(batch)[0] * float("nan"), {})
    with pytest.raises(TrainingError, match="epoch 1: all 3 batches .* no checkpoint was saved"):
        trainer.fit()
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert not (tmp_path / "run" / "last.safetensors").exists()  # nor a finished epoch


@pytest.mark.parametrize("solver", ["rk4", "euler"])
def test_adjoint_trains_with_fixed_step_solvers(tmp_path, data, solver):
    net = ModelConfig(**{**NET.to_dict(), "adjoint": True, "solver": solver, "max_step": 0.3})
    trainer = Trainer(cfg(epochs=1, steps_per_epoch=2, net=net), data, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    row = trainer.fit()
    assert row["train/skipped_batches"] == 0 and np.isfinite(row["train/loss"])
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("field.") for k in changed), changed  # the adjoint's gradients


def test_a_run_config_from_before_the_world_model_settings_builds_the_old_model():
    """config.json of runs saved before carry_obs / field_activation / noise_horizons /
    one_step_weight existed: loading builds (and would resume) the model they were trained as,
    so their weights fit and their objective is unchanged."""
    from worldmodel.models import make_model

    old = TrainConfig.from_dict(
        {"model": "latent-ode", "net": {"latent_dim": 15, "max_step": None}}
    )
    net = old.net
    assert (net.carry_obs, net.field_activation, net.noise_horizons, net.one_step_weight) == (
        False,
        "tanh",
        0,
        0.0,
    )
    model = make_model("latent-ode", 11, 3, old.net)
    assert model.state_dim == 15 and model.log_std_h is None and model.decoder is not None


def test_max_step_data_is_the_longest_control_interval(data, tmp_path):
    """The default ``net.max_step="data"`` becomes the longest interval of the dataset, in
    seconds, in the run's config.json: every training interval is one solver step."""
    import json

    from worldmodel.training.run_dir import resolve_max_step

    longest = max(float(np.diff(ep.t).max()) for ep in data.episodes)
    assert resolve_max_step("data", data) == longest
    assert resolve_max_step("env-dt", data) is None  # the synthetic data records no env dt
    Trainer(cfg(epochs=1, steps_per_epoch=1), data, tmp_path / "run").fit()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["net"]["max_step"] == longest


@pytest.mark.parametrize(
    ("model", "env_id", "expected"),
    [
        ("latent-ode", "Walker2d-v5", 0.05),
        ("latent-ode", "Hopper-v5", 0.0),
        ("mlp-ensemble", "Walker2d-v5", 0.0),
    ],
)
def test_field_dropout_default_is_the_envs_and_is_saved_resolved(tmp_path, model, env_id, expected):
    """``net.field_dropout=None`` (the default) becomes the env's value in the run's config; a
    value set by hand is kept; a resume with the default does not conflict with the saved one."""
    from types import SimpleNamespace

    from worldmodel.training.run_dir import settle_config

    data = SimpleNamespace(env_id=env_id)  # settle_config reads only the env id here
    net = ModelConfig(max_step=0.01)
    got = settle_config(TrainConfig(model=model, net=net), data, tmp_path / "a", resume=False)
    assert got.net.field_dropout == expected
    if model == "latent-ode":
        mine = TrainConfig(model=model, net=replace(net, field_dropout=0.2))
        assert settle_config(mine, data, tmp_path / "b", resume=False).net.field_dropout == 0.2


def _lr_before_torch_scheduler(peak, schedule, step, total, scale):
    """``Trainer._lr`` as it was before the schedule became a torch ``LambdaLR``."""
    frac = min(1.0, step / total)
    shape = 1.0 if schedule == "constant" else 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac))
    return peak * shape * scale


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_the_lr_scheduler_gives_the_old_formula_bit_for_bit(schedule):
    params = [torch.nn.Parameter(torch.zeros(2))]
    lr = LearningRate(torch.optim.Adam(params, lr=3e-3), 3e-3, schedule, 37)
    scale, halve = 1.0, np.random.default_rng(0).random(42) < 0.4  # skipped batches
    for step in range(42):  # past the end too
        assert lr.value == _lr_before_torch_scheduler(3e-3, schedule, step, 37, scale)
        if halve[step]:
            scale = max(scale * 0.5, 1e-3)
        lr.advance(scale)
    assert scale == 1e-3  # the floor was reached
    for step in (1, 17, 36):  # rebuilt from the step count on resume, a new total included
        rebuilt = LearningRate(torch.optim.Adam(params), 3e-3, schedule, 50, step=step, scale=0.25)
        assert rebuilt.value == _lr_before_torch_scheduler(3e-3, schedule, step, 50, 0.25)


def test_a_skipped_first_batch_raises_no_scheduler_warning(tmp_path, data):
    trainer = Trainer(cfg(epochs=1), data, tmp_path / "run")
    batch = trainer._train_batch()
    trainer.model.loss = lambda b: (torch.tensor(float("nan")), {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert trainer.train_step(batch) is None


def test_disabled_writers_write_and_show_nothing(tmp_path, data, capsys):
    model = Trainer(cfg(epochs=1), data, tmp_path / "run").model
    quiet = RunWriters(tmp_path / "quiet", tensorboard=True, progress=True, enabled=False)
    quiet.write_config({"format_version": 1})
    for _ in quiet.progress(3, "epoch 1"):
        pass
    quiet.save("last.safetensors", model, {"epoch": 1})
    quiet.log(1, 3, {"train/loss": 1.0, "val/score": 2.0})
    quiet.log_step(3, {"loss": 1.0})
    quiet.epoch_line(1, {"train/loss": 1.0, "val/score": 2.0}, improved=True, skipped=0)
    quiet.close()
    assert not (tmp_path / "quiet").exists()
    assert capsys.readouterr() == ("", "")


def _step_losses(run):
    with (run / "steps.csv").open(newline="") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def test_batches_built_by_loader_workers_depend_on_the_seed_and_step_alone(tmp_path, data):
    """Step k's batch comes from ``default_rng([seed, k])``: the same with 1 or 2 workers, and
    after a resume (a constant learning rate, so that the resumed run is the same run)."""
    from worldmodel.training.loader import step_rng

    kw = dict(model="mlp-delta", lr_schedule="constant", step_log=True)
    trainer = Trainer(cfg(**kw, loader_workers=1), data, tmp_path / "one")
    first = trainer._train_batch()
    drawn = trainer.batches.global_batch(step_rng(trainer.config.seed, 0))
    for name in ("times", "obs", "actions", "exists", "context", "target"):
        assert torch.equal(getattr(first, name), getattr(drawn, name)), name
    trainer._prefetched.close()
    Trainer(cfg(**kw, loader_workers=1), data, tmp_path / "w1").fit()
    Trainer(cfg(**kw, loader_workers=2, epochs=1), data, tmp_path / "w2").fit()
    Trainer(cfg(**kw, loader_workers=2), data, tmp_path / "w2", resume=True).fit()
    assert _step_losses(tmp_path / "w1") == _step_losses(tmp_path / "w2")
    assert len(_step_losses(tmp_path / "w1")) == 8


def test_a_batch_is_skipped_without_a_backward_pass_when_any_process_says_so(tmp_path, data):
    """``agree`` stands for the other processes of a distributed run: a finite loss here is
    still skipped (no backward pass, no gradient) when another process's was not."""
    trainer = Trainer(cfg(model="mlp-delta", epochs=1), data, tmp_path / "run")
    params = list(trainer.model.parameters())
    batch = trainer._train_batch()
    assert guard.backward(trainer.model.loss, batch, params, 10.0, agree=lambda ok: False) is None
    assert all(p.grad is None for p in params)
    assert guard.backward(trainer.model.loss, batch, params, 10.0, agree=bool) is not None


def test_observation_bounds_stream_to_the_same_values_as_one_concatenation(monkeypatch):
    """The imagination clamp's range is read chunk by chunk (sharded datasets): the same
    bits as normalising every observation at once and taking the extremes."""
    import functools

    import worldmodel.training.sampling as sampling
    from worldmodel.batching import Normalizer
    from worldmodel.data import field_chunks

    eps = linear_dataset(12, 9, seed=3).episodes
    norm = Normalizer.fit(eps)
    monkeypatch.setattr(sampling, "field_chunks", functools.partial(field_chunks, max_rows=7))
    seen = norm.normalize(np.concatenate([ep.obs for ep in eps]))
    lo, hi = seen.min(0), seen.max(0)
    got = sampling.observation_bounds(norm, eps)
    np.testing.assert_array_equal(got[0], lo - 0.1 * (hi - lo))
    np.testing.assert_array_equal(got[1], hi + 0.1 * (hi - lo))


def test_resume_refuses_a_new_setting_it_would_drop_and_takes_the_run_options(tmp_path, data):
    Trainer(cfg(epochs=1, lr=1e-3), data, tmp_path / "r").fit()
    with pytest.raises(ValueError, match=r"--lr 0\.01 \(saved: 0\.001\).*another --out"):
        Trainer(cfg(epochs=2, lr=1e-2), data, tmp_path / "r", resume=True)
    with pytest.raises(ValueError, match=r"--net\.units 64"):
        Trainer(
            cfg(epochs=2, lr=1e-3, net=replace(NET, units=64)), data, tmp_path / "r", resume=True
        )
    # the saved value, or the default, is no change; epochs and run options are taken
    again = Trainer(cfg(epochs=2, lr=1e-3, step_log=True), data, tmp_path / "r", resume=True)
    assert again.config.epochs == 2 and again.config.step_log and again.config.lr == 1e-3
    # and config.json states them (a report's commands rebuilt from it reproduce the run)
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["train"]["epochs"] == 2 and saved["train"]["lr"] == 1e-3
    assert saved["env_id"] == data.env_id and saved["obs_dim"] == data.obs_dim


def test_a_run_config_missing_a_field_or_holding_a_bad_setting_is_named(tmp_path, data):
    Trainer(cfg(epochs=1), data, tmp_path / "r").fit()
    path = tmp_path / "r" / "config.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in saved.items() if k != "train"}))
    with pytest.raises(CheckpointError, match="config.json: missing train"):
        load(tmp_path / "r")
    net = {**saved["train"]["net"], "time_unit": 0}
    path.write_text(json.dumps({**saved, "train": {**saved["train"], "net": net}}))
    with pytest.raises(CheckpointError, match="invalid training settings: --net.time-unit must"):
        load(tmp_path / "r")
    path.write_text(json.dumps({**saved, "default_dt": -0.008}))
    with pytest.raises(CheckpointError, match="default_dt must be a positive number of seconds"):
        load(tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load(tmp_path / "nothing")


def test_an_out_path_that_is_a_file_is_named(tmp_path, data):
    (tmp_path / "d.npz").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="d.npz is a file, not a run directory"):
        Trainer(cfg(), data, tmp_path / "d.npz")


def test_resume_accepts_the_first_calls_env_dt_step(tmp_path, data):
    net = replace(NET, max_step="env-dt")
    Trainer(cfg(epochs=1, net=net), data, tmp_path / "r").fit()
    again = Trainer(cfg(epochs=2, net=net), data, tmp_path / "r", resume=True)
    assert again.config.epochs == 2


def test_the_horizon_schedule_grows_to_the_whole_window():
    from worldmodel.training.schedules import open_loop_horizon

    hs = [open_loop_horizon(s, 100, 2, 0.5, full=9) for s in range(0, 101, 10)]
    assert hs[0] == 2 and hs[5:] == [None] * 6  # whole windows from half-way on
    grown = [h for h in hs if h is not None]
    assert grown == sorted(grown) and len(set(grown)) > 2
    assert open_loop_horizon(0, 100, None, 0.5, full=9) is None


def test_a_horizon_schedule_cuts_the_training_windows_from_the_first_step(tmp_path, data):
    trainer = Trainer(cfg(horizon_start=1, horizon_ramp=1.0, epochs=4), data, tmp_path / "run")
    batch = trainer._train_batch()  # step 0: one scored point past each window's anchor
    past = torch.arange(batch.times.shape[0]) > batch.anchor().unsqueeze(1)
    assert ((batch.target & past).sum(1) == 1).all()
    assert (batch.exists.sum(1) < trainer.config.window).any()
    # validation scores whole windows whatever the schedule
    assert all(
        (b.exists.sum(1) == trainer.config.window).all()
        for b in trainer.validator.batches["extrap"]
    )
    trainer.fit()
    with pytest.raises(ValueError, match="one-step model"):
        Trainer(cfg(model="mlp-delta", horizon_start=3), data, tmp_path / "delta")
    with pytest.raises(ValueError, match="horizon_start must be >= 1"):
        Trainer(cfg(horizon_start=0), data, tmp_path / "zero")
    with pytest.raises(ValueError, match="horizon_ramp is used only with a horizon_start"):
        Trainer(cfg(horizon_ramp=0.2), data, tmp_path / "ramp")


def test_kl_beta_is_the_kl_weight_after_the_warm_up(tmp_path, data):
    from worldmodel.training.schedules import kl_weight

    assert [kl_weight(s, 10, 4.0) for s in (0, 5, 10, 50)] == [0.0, 2.0, 4.0, 4.0]
    assert kl_weight(3, 0, 4.0) == 4.0 and kl_weight(5, 10) == 0.5
    trainer = Trainer(cfg(kl_beta=4.0, kl_warmup_steps=2, epochs=1), data, tmp_path / "run")
    row = trainer.fit()
    assert trainer.model.kl_weight == 4.0 and math.isfinite(row["val/score"])
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="kl_beta must be >= 0"):
            Trainer(cfg(kl_beta=bad), data, tmp_path / "bad")


def test_validation_windows_can_be_longer_than_the_training_ones(tmp_path, data):
    trainer = Trainer(cfg(eval_window=14), data, tmp_path / "run")
    assert trainer._train_batch().exists.sum(1).max() == 10
    assert all((b.exists.sum(1) == 14).all() for b in trainer.validator.batches["extrap"])
    assert math.isfinite(trainer.fit()["val/score"])
    with pytest.raises(ValueError, match="eval_window must be >= 3"):
        Trainer(cfg(eval_window=2), data, tmp_path / "short")


def test_long_windows_keep_the_short_context_and_score_a_longer_open_loop(tmp_path, data):
    # every context point observed; long windows of 24 are cut to the episodes' 16 points
    c = cfg(long_window=24, long_share=0.5, observed_min=1.0)
    trainer = Trainer(c, data, tmp_path / "run")
    lengths, contexts = set(), set()
    for _ in range(12):
        batch = trainer._train_batch()
        lengths.add(int(batch.exists.sum(1).max()))
        contexts |= set((batch.exists & batch.context).sum(1).tolist())
        assert batch.obs.shape[0] == trainer.config.batch_size
    assert lengths == {10, 16} and contexts == {5}  # 5 context points in either
    assert math.isfinite(trainer.fit()["val/score"])
    # without a long window the batches are drawn exactly as before the setting existed
    plain, again = (Trainer(cfg(), data, tmp_path / name) for name in ("a", "b"))
    assert torch.equal(plain._train_batch().obs, again._train_batch().obs)
    for bad, message in (
        ({"long_window": 10}, "must be longer than window"),
        ({"long_window": 16, "long_share": 0.0}, "long_share must be in"),
        ({"long_share": 0.5}, "long_share is used only with a long_window"),
        ({"long_window": 16, "horizon_start": 2}, "do not mix"),
    ):
        with pytest.raises(ValueError, match=message):
            Trainer(cfg(**bad), data, tmp_path / "bad")


def test_a_weight_average_is_validated_saved_and_resumed_exactly(tmp_path, data):
    one = Trainer(cfg(epochs=1, ema_decay=0.9), data, tmp_path / "one")
    one.fit()
    # the average is what is validated and saved as the model; the raw weights differ from it
    assert one.evaluated_model is one.ema.module
    saved = weights(tmp_path / "one" / "model.safetensors")
    average = one.ema.module.state_dict()
    assert all(torch.equal(saved["model/" + k], average[k]) for k in average)
    raw = one.model.state_dict()
    assert any(not torch.equal(raw[k], average[k]) for k in raw if raw[k].is_floating_point())

    c = cfg(epochs=3, ema_decay=0.9)
    straight = Trainer(c, data, tmp_path / "straight")
    straight.fit()
    Trainer(c, data, tmp_path / "cut", callbacks=[lambda tr, epoch, m: epoch == 1]).fit()
    resumed = Trainer(c, data, tmp_path / "cut", resume=True)
    resumed.fit()
    for a, b in ((straight.model, resumed.model), (straight.ema, resumed.ema)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(ValueError, match=r"ema_decay must be in \(0, 1\)"):
        Trainer(cfg(ema_decay=1.0), data, tmp_path / "bad")


def test_windows_may_start_near_an_episodes_end_and_keep_a_whole_context(tmp_path, data):
    c = cfg(window_starts="any", observed_min=1.0)  # episodes of 15 points, windows of 10
    trainer = Trainer(c, data, tmp_path / "run")
    lengths, contexts = set(), set()
    for _ in range(20):
        batch = trainer._train_batch()
        lengths |= set(batch.exists.sum(1).tolist())
        contexts |= set((batch.exists & batch.context).sum(1).tolist())
    assert min(lengths) < 10 and max(lengths) == 10 and contexts == {5}
    assert math.isfinite(trainer.fit()["val/score"])
    with pytest.raises(ValueError, match="unknown window_starts 'ends'"):
        Trainer(cfg(window_starts="ends"), data, tmp_path / "bad")
