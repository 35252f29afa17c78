"""Sharded dataset directories (lazy, memory-mapped) and collection spread over ranks."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from tests.synthetic import linear_dataset
from worldmodel.batching import Normalizer
from worldmodel.collect import CollectConfig, collect
from worldmodel.collect_shards import collect_shards, rank_and_world, shard_blocks
from worldmodel.data import Dataset, DatasetError, Moments, field_chunks, load_dataset
from worldmodel.shards import OPEN_SHARDS, ShardedDataset, shard_name, write_shard, write_shards
from worldmodel.summary import describe

FIELDS = ("t", "obs", "actions", "rewards", "qpos", "qvel")


def assert_same_episodes(a, b) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        for k in FIELDS:
            assert np.array_equal(getattr(x, k), getattr(y, k)), (i, k)
        assert (x.terminated, x.truncated, x.seed) == (y.terminated, y.truncated, y.seed), i


@pytest.fixture()
def linear_dir(tmp_path):
    """40 synthetic episodes in 4 shards of 10, and the same dataset in memory."""
    data = linear_dataset(episodes=40, steps=12)
    write_shards(data, tmp_path / "linear", shard_size=10)
    return tmp_path / "linear", data


def test_a_sharded_dataset_equals_the_single_file(tmp_path, hopper_file):
    single = load_dataset(hopper_file)
    write_shards(single, tmp_path / "ds", shard_size=5)
    sharded = load_dataset(tmp_path / "ds")
    assert isinstance(sharded, ShardedDataset) and isinstance(sharded, Dataset)
    assert_same_episodes(single, sharded)
    assert sharded.metadata == single.metadata
    assert (sharded.num_steps, sharded.obs_dim, sharded.act_dim) == (
        single.num_steps,
        single.obs_dim,
        single.act_dim,
    )
    index = json.loads((tmp_path / "ds" / "index.json").read_text())
    assert [(s["file"], s["first_episode"], s["episodes"]) for s in index["shards"]] == [
        (shard_name(0), 0, 5),
        (shard_name(1), 5, 5),
        (shard_name(2), 10, 2),
    ]
    assert index["episodes"] == 12 and index["steps"] == single.num_steps
    assert describe(sharded, title="x") == describe(single, title="x")
    norm, ref = Normalizer.fit(sharded.episodes), Normalizer.fit(single.episodes)
    assert np.array_equal(norm.mean, ref.mean) and np.array_equal(norm.std, ref.std)


def test_the_split_is_the_same_episodes(linear_dir):
    directory, data = linear_dir
    sharded = load_dataset(directory)
    for seed in (0, 1, 7):
        a, b = data.split((0.7, 0.2, 0.1), seed), sharded.split((0.7, 0.2, 0.1), seed)
        for k in ("train", "val", "test"):
            assert isinstance(b[k], ShardedDataset)
            assert_same_episodes(a[k], b[k])


def test_loading_is_lazy_and_memory_is_bounded(linear_dir):
    directory, _ = linear_dir
    OPEN_SHARDS.clear()
    sharded = load_dataset(directory)
    shards = sharded.episodes.shards()
    train = sharded.split((0.8, 0.1, 0.1), 0)["train"]
    assert len(train) == 32 and train.num_steps == 32 * 12
    assert not any(OPEN_SHARDS.is_open(s) for s in shards)  # sizes and splits open nothing
    ep = sharded[25]
    assert isinstance(ep.obs, np.memmap) and not ep.obs.flags.writeable
    assert [OPEN_SHARDS.is_open(s) for s in shards] == [False, False, True, False]
    before, OPEN_SHARDS.max_open = OPEN_SHARDS.max_open, 2
    try:
        for i in (0, 15, 35):
            sharded[i]
        assert [OPEN_SHARDS.is_open(s) for s in shards] == [False, True, False, True]
    finally:
        OPEN_SHARDS.max_open = before


def test_chunked_statistics_match_one_pass_and_episodes_pickle(linear_dir):
    directory, data = linear_dir
    whole, chunked = Moments(), Moments()
    whole.add(data.concat("obs"))
    chunks = list(field_chunks(data.episodes, "obs", max_rows=30))
    assert [len(c) for c in chunks] == [26] * 20  # two 13-row episodes each
    for chunk in chunks:
        chunked.add(chunk)
    for k in ("mean", "std", "abs_mean", "min", "max"):
        np.testing.assert_allclose(getattr(chunked, k), getattr(whole, k), rtol=1e-12, err_msg=k)
    sharded = load_dataset(directory)  # as a DataLoader worker receives it: no open arrays
    assert_same_episodes(pickle.loads(pickle.dumps(sharded)), data)


def test_training_and_evaluation_on_a_directory_match_the_file(tmp_path, linear_dir):
    from worldmodel.evaluate import heldout_error, heldout_split
    from worldmodel.models import ModelConfig
    from worldmodel.train import TrainConfig, train

    directory, data = linear_dir
    cfg = TrainConfig(
        model="mlp-delta",
        net=ModelConfig(ensemble_units=16, ensemble_layers=1),
        epochs=1,
        steps_per_epoch=3,
        batch_size=8,
        window=6,
        eval_windows=8,
        progress=False,
        tensorboard=False,
    )
    ref = train(data, cfg, tmp_path / "file")
    model = train(directory, cfg, tmp_path / "dir")
    for (k, a), b in zip(ref.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
    sharded = load_dataset(directory)
    rows = heldout_error(model, heldout_split(model, sharded), observed=(0.5,), window=6)
    assert rows == heldout_error(ref, heldout_split(ref, data), observed=(0.5,), window=6)


def test_merge_and_info_work_on_directories(tmp_path, linear_dir):
    directory, data = linear_dir
    merged = Dataset.merge([load_dataset(directory), data.subset([0, 1])])
    assert isinstance(merged, ShardedDataset) and len(merged) == 42
    assert_same_episodes(merged, [*data, data[0], data[1]])
    again = write_shards(merged, tmp_path / "merged", shard_size=16)
    assert_same_episodes(again, merged)
    assert "episodes      42" in describe(again)
    with pytest.raises(DatasetError, match="already holds a dataset"):
        write_shards(merged, tmp_path / "merged")


def test_broken_shards_are_named(tmp_path, linear_dir):
    directory, data = linear_dir
    one = directory / shard_name(1)
    os.rename(one, directory / shard_name(5))
    with pytest.raises(DatasetError, match=r"shard-000005\.npz: .*belongs in shard-000001\.npz"):
        load_dataset(directory)
    os.rename(directory / shard_name(5), one)
    raw = one.read_bytes()
    one.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=r"shard-000001\.npz: not a readable \.npz"):
        load_dataset(directory)
    one.unlink()
    with pytest.raises(DatasetError, match="episodes 10-19 are missing"):
        load_dataset(directory)
    data.subset(range(10, 20)).save(one)  # a plain dataset file is not a shard
    with pytest.raises(DatasetError, match=r"shard-000001\.npz: metadata has no 'shard'"):
        load_dataset(directory)
    write_shard(one, data.episodes[10:20], data.metadata, index=1, first=10, total=40)
    assert len(load_dataset(directory)) == 40
    (directory / shard_name(3)).unlink()  # the last shard: only its writer's N tells
    with pytest.raises(DatasetError, match="episodes 30-39 are missing"):
        load_dataset(directory)


def test_bad_values_are_found_when_a_shard_is_first_opened(tmp_path, linear_dir):
    directory, data = linear_dir
    path = directory / shard_name(2)
    with np.load(path) as z:
        fields = {k: z[k] for k in z.files}
    fields["obs"][3, 1] = np.nan
    with open(path, "wb") as f:
        np.savez(f, **fields)
    (directory / "index.json").write_text("{not json")  # a cache: rebuilt, not an error
    sharded = load_dataset(directory)
    assert json.loads((directory / "index.json").read_text())["episodes"] == 40
    sharded[0]
    with pytest.raises(DatasetError, match=r"shard-000002\.npz: episode 0: field 'obs'"):
        sharded[20]
    with pytest.raises(DatasetError, match=r"shard-000002\.npz"):
        sharded.check_all()


# -- collection ------------------------------------------------------------------------------
def _config(episodes: int = 7, seed: int = 5) -> CollectConfig:
    return CollectConfig(
        env="Hopper-v5", episodes=episodes, seed=seed, max_episode_steps=6, progress=False
    )


def test_two_ranks_collect_the_same_episodes_as_one(tmp_path):
    cfg = _config()
    collect_shards(cfg, tmp_path / "one", shard_size=2)
    written = [collect_shards(cfg, tmp_path / "two", 2, rank=r, world_size=2) for r in (0, 1)]
    assert [[p.name for p in w] for w in written] == [
        [shard_name(0), shard_name(2)],
        [shard_name(1), shard_name(3)],
    ]
    one, two = load_dataset(tmp_path / "one"), load_dataset(tmp_path / "two")
    reference = collect(cfg)
    assert_same_episodes(one, reference)
    assert_same_episodes(two, reference)
    assert one.metadata["seed"] == 5 and one.metadata["shard_size"] == 2


def test_a_killed_rank_is_completed_by_a_rerun(tmp_path):
    cfg, out = _config(), tmp_path / "ds"
    collect_shards(cfg, out, 2, rank=0, world_size=2)
    collect_shards(cfg, out, 2, rank=1, world_size=2)
    (out / shard_name(3)).unlink()  # rank 1 died while writing its last shard:
    orphan = out / f".{shard_name(3)}.999999999.x1y2.tmp"  # its temporary file stays behind
    orphan.write_bytes(b"PK\x03\x04 half a shard")
    with pytest.raises(DatasetError, match="episodes 6-6 are missing"):
        load_dataset(out)
    assert [p.name for p in collect_shards(cfg, out, 2)] == [shard_name(3)]  # any world size
    assert not orphan.exists()
    done = load_dataset(out)
    assert_same_episodes(done, collect(cfg))
    assert sorted(ep.seed for ep in done) == sorted(set(ep.seed for ep in done))


def test_more_episodes_continue_the_seed_stream(tmp_path):
    out = tmp_path / "ds"
    collect_shards(_config(episodes=3), out, 2)  # shards 0 (2 episodes) and 1 (1, short)
    assert [p.name for p in collect_shards(_config(episodes=7), out, 2)] == [
        shard_name(1),
        shard_name(2),
        shard_name(3),
    ]
    assert_same_episodes(load_dataset(out), collect(_config(episodes=7)))
    with pytest.raises(DatasetError, match=r"shard-000000\.npz: collected with other settings"):
        collect_shards(_config(seed=6), out, 2)


def test_rank_and_world_come_from_torchrun_variables(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert rank_and_world() == (3, 4)
    assert rank_and_world(0, 2) == (0, 2)
    with pytest.raises(ValueError, match="rank 4"):
        rank_and_world(4, 4)
    assert shard_blocks(5, 2) == [(0, 2), (2, 4), (4, 5)]


def test_the_command_line_collects_shows_and_merges_shards(tmp_path, capsys, monkeypatch):
    from worldmodel.cli import main

    out = tmp_path / "ds"
    collect_args = [
        "collect",
        *("--env", "Hopper-v5", "--episodes", "5", "--max-episode-steps", "6", "--seed", "5"),
        *("--shard-size", "2", "--out", str(out), "--no-progress"),
    ]
    monkeypatch.setenv("RANK", "1")  # as torchrun sets them
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(collect_args) == 0
    printed = capsys.readouterr().out
    assert "rank 1 of 2: wrote 1 shards" in printed and "episodes 0-1 are missing" in printed
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert main(collect_args) == 0
    assert "rank 0 of 1: wrote 2 shards" in capsys.readouterr().out
    assert main(["dataset", "info", str(out)]) == 0
    assert "episodes      5" in capsys.readouterr().out
    merged = tmp_path / "merged"
    assert (
        main(["dataset", "merge", str(out), str(out), "--out", str(merged), "--shard-size", "4"])
        == 0
    )
    assert len(load_dataset(merged)) == 10 and len(list(merged.glob("shard-*.npz"))) == 3
