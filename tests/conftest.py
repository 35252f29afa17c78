"""Shared fixtures: small real datasets made on the fly (nothing is downloaded)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session")
def hopper_dataset():
    """12 short irregular Hopper-v5 episodes from the random policy."""
    from worldmodel.collect import CollectConfig, collect

    return collect(
        CollectConfig(
            env="Hopper-v5",
            episodes=12,
            timing="uniform:1-7",
            seed=3,
            max_episode_steps=40,
            progress=False,
        )
    )


@pytest.fixture(scope="session")
def hopper_file(hopper_dataset, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "hopper.npz"
    hopper_dataset.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_run(hopper_dataset, hopper_file, tmp_path_factory):
    """``tiny_run(model)``: the run directory of ``model`` trained for a few batches on
    ``hopper_dataset`` (tiny networks; trained once per session and model)."""
    from worldmodel.models import ModelConfig
    from worldmodel.train import TrainConfig, Trainer

    net = ModelConfig(
        latent_dim=6,
        rec_dim=12,
        units=32,
        layers=1,
        dec_units=0,
        samples=1,
        ensemble_size=3,
        ensemble_units=32,
        ensemble_layers=2,
    )
    runs = {}

    def make(model: str = "latent-ode"):
        if model not in runs:
            out = tmp_path_factory.mktemp("runs") / model
            cfg = TrainConfig(
                model=model,
                net=net,
                epochs=1,
                steps_per_epoch=5,
                batch_size=8,
                window=10,
                eval_windows=8,
                progress=False,
                tensorboard=False,
            )
            Trainer(cfg, hopper_dataset, out, dataset_path=hopper_file).fit()
            runs[model] = out
        return runs[model]

    return make
