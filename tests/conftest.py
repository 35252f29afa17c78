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
