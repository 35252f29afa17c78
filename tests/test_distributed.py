"""Distributed data-parallel training: ``torchrun -m worldmodel train`` with 2 CPU processes (gloo)
against the 1-process run at the same global batch and seed."""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.synthetic import linear_dataset
from worldmodel.models import ModelConfig
from worldmodel.train import TrainConfig, Trainer, load
from worldmodel.training.distributed import Processes

STEPS, EPOCHS = 10, 2  # 20 steps
# episodes of 41 observations, windows of 10: every window has 9 transitions, so the models whose
# loss is a mean over transitions (mlp-delta, mlp-ensemble) average over windows too
SETTINGS = {
    "steps_per_epoch": STEPS,
    "batch_size": 8,
    "window": 10,
    "eval_windows": 16,
    "tensorboard": False,
    "progress": False,
    "step_log": True,
    "device": "cpu",
}


def flags(settings: dict) -> list[str]:
    out = []
    for k, v in settings.items():
        name = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(name if v else "--no-" + k.replace("_", "-"))
        else:
            out += [name, str(v)]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(data: Path, out: Path, *args: str, ok: bool = True) -> str:
    """``worldmodel train`` in 2 processes under torchrun; its output (it must succeed, or with
    ``ok=False`` fail)."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master-addr=127.0.0.1",
        f"--master-port={free_port()}",
        "-m",
        "worldmodel",
        "train",
        str(data),
        "--out",
        str(out),
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert (res.returncode == 0) == ok, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def step_losses(run: Path) -> dict[int, float]:
    with (run / "steps.csv").open(newline="") as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def data():
    return linear_dataset(episodes=20, steps=40)


@pytest.fixture(scope="module")
def data_file(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "linear.npz"
    data.save(path)
    return path


@pytest.mark.parametrize("model", ["mlp-delta", "mlp-ensemble"])
def test_two_processes_match_one_process_for_20_steps(tmp_path, data, data_file, model):
    torchrun(
        data_file, tmp_path / "two", "--model", model, "--epochs", str(EPOCHS), *flags(SETTINGS)
    )
    two = step_losses(tmp_path / "two")
    Trainer(TrainConfig(model=model, epochs=EPOCHS, **SETTINGS), data, tmp_path / "one").fit()
    one = step_losses(tmp_path / "one")
    assert list(two) == list(one) == list(range(1, STEPS * EPOCHS + 1))
    np.testing.assert_allclose(list(two.values()), list(one.values()), rtol=1e-4, atol=1e-5)
    # rank 0 alone wrote the run, with the same contents as a one-process run
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )


def test_a_distributed_run_resumes_and_loads_in_one_process(tmp_path, data, data_file):
    """A 2-process run stopped after epoch 1 and resumed to 2 gives the uninterrupted
    1-process run's losses (a constant learning rate: a resume stretches the cosine over the
    new total); its checkpoint loads, and resumes, in one process."""
    settings = {**SETTINGS, "model": "mlp-delta", "lr_schedule": "constant"}
    run = tmp_path / "two"
    torchrun(data_file, run, *flags(settings), "--epochs", "1")
    torchrun(data_file, run, *flags(settings), "--epochs", "2", "--resume")
    Trainer(TrainConfig(**settings, epochs=2), data, tmp_path / "one").fit()
    one, two = step_losses(tmp_path / "one"), step_losses(run)
    assert list(two) == list(one) == list(range(1, 2 * STEPS + 1))
    np.testing.assert_allclose(list(two.values()), list(one.values()), rtol=1e-4, atol=1e-5)
    model, ref = load(run), load(tmp_path / "one")
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=k)
    Trainer(TrainConfig(**settings, epochs=3), data, run, resume=True).fit()
    assert list(step_losses(run)) == list(range(1, 3 * STEPS + 1))


def posterior_means(self, shape=()):
    """``Normal.rsample`` without the noise: the latent-ode's one random draw in training."""
    return self.loc.expand(*shape, *self.loc.shape)


def train_rank(rank: int, port: int, data, out: Path, settings: dict) -> None:
    """A process of a 2-process run started by ``torch.multiprocessing.spawn`` (the variables
    torchrun would set), with the posterior samples replaced by their means."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    torch.distributions.Normal.rsample = posterior_means
    Trainer(TrainConfig(**settings), data, out).fit()


def test_latent_ode_differs_only_by_its_posterior_samples(tmp_path, data, monkeypatch):
    """Each process draws the posterior noise of its own windows (its own torch stream), so a
    latent-ode's 2-process losses are not the 1-process ones; with the samples replaced by the
    posterior means they are (the rest of its loss is a mean over windows). The ode-rnn encoder
    (the default) also differs: its Euler steps between context points number the longest gap
    of any window in the batch (in model time units), so a share may take fewer; the rnn
    encoder has no steps."""
    settings = {
        **SETTINGS,
        "model": "latent-ode",
        "net": ModelConfig(encoder="rnn"),
        "epochs": 1,
        "steps_per_epoch": 20,
    }
    torch.multiprocessing.spawn(
        train_rank, args=(free_port(), data, tmp_path / "two", settings), nprocs=2
    )
    monkeypatch.setattr(torch.distributions.Normal, "rsample", posterior_means)
    Trainer(TrainConfig(**settings), data, tmp_path / "one").fit()
    one, two = step_losses(tmp_path / "one"), step_losses(tmp_path / "two")
    assert list(two) == list(one) == list(range(1, 21))
    np.testing.assert_allclose(list(two.values()), list(one.values()), rtol=1e-4, atol=1e-5)


def test_a_batch_that_does_not_split_over_the_processes_is_refused():
    assert Processes(rank=1, world=2).share(8) == slice(4, 8)
    with pytest.raises(ValueError, match="batch_size 8 does not split evenly over 3 processes"):
        Processes(rank=0, world=3).share(8)


def test_every_process_stops_with_the_error_of_a_bad_setting(tmp_path, data_file):
    out = torchrun(data_file, tmp_path / "run", *flags(SETTINGS), "--batch-size", "7", ok=False)
    assert out.count("worldmodel: error: batch_size 7 does not split evenly over 2") == 2
