import io
import json
import os

import numpy as np
import pytest

from worldmodel.data import Dataset, DatasetError, Episode, load_dataset


def test_round_trip_is_exact(hopper_dataset, hopper_file):
    back = load_dataset(hopper_file)
    assert back.metadata == json.loads(json.dumps(hopper_dataset.metadata))
    assert len(back) == len(hopper_dataset)
    for a, b in zip(hopper_dataset, back):
        for k in ("t", "obs", "actions", "rewards", "qpos", "qvel"):
            assert np.array_equal(getattr(a, k), getattr(b, k)), k
        assert (a.terminated, a.truncated, a.seed) == (b.terminated, b.truncated, b.seed)


def test_metadata_says_how_the_data_was_made(hopper_dataset):
    m = hopper_dataset.metadata
    assert m["env_id"] == "Hopper-v5" and m["format_version"] == 1
    assert m["wrappers"] == [{"name": "IrregularTiming", "timing": "uniform:1-7"}]
    assert m["policy"] == {"name": "random"} and m["seed"] == 3
    assert m["physics_timestep"] == 0.002 and m["default_dt"] == 0.008
    assert {"numpy", "gymnasium", "mujoco"} <= set(m["library_versions"])


def _fields(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write(path, fields):
    with open(path, "wb") as f:
        np.savez(f, **fields)


def _broken(tmp_path, good, name, change):
    fields = _fields(good)
    change(fields)
    path = tmp_path / f"{name}.npz"
    _write(path, fields)
    return path


def _nan_obs(f):
    f["obs"] = f["obs"].copy()
    f["obs"][5, 2] = np.nan


def _inf_rew(f):
    f["rewards"] = f["rewards"].copy()
    f["rewards"][3] = np.inf


def _nan_at(f, name, where):
    f[name] = f[name].copy()
    f[name][where] = np.nan


def _bad_t(f):
    f["t"] = f["t"].copy()
    f["t"][4] = f["t"][3]


def _version(f):
    meta = json.loads(str(f["metadata"]))
    meta["format_version"] = 99
    f["metadata"] = np.array(json.dumps(meta))


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("missing", lambda f: f.pop("qvel"), "missing field 'qvel'"),
        ("shape", lambda f: f.update(actions=f["actions"][:-1]), "field 'actions' has shape"),
        ("width", lambda f: f.update(obs=f["obs"][:, None]), "field 'obs' has shape"),
        ("nan", _nan_obs, "field 'obs' has a non-finite value (nan)"),
        ("inf", _inf_rew, "field 'rewards' has a non-finite value (inf)"),
        ("nan_t", lambda f: _nan_at(f, "t", 4), "field 't' has a non-finite value (nan)"),
        (
            "nan_act",
            lambda f: _nan_at(f, "actions", (2, 1)),
            "field 'actions' has a non-finite value (nan)",
        ),
        ("order", _bad_t, "field 't' is not strictly increasing"),
        ("version", _version, "unknown format version 99"),
        (
            "meta",
            lambda f: f.update(metadata=np.array("{not json")),
            "'metadata' is not valid JSON",
        ),
        (
            "short",
            lambda f: f.update(episode_lengths=np.r_[1, f["episode_lengths"][1:]]),
            "fewer than 2",
        ),
    ],
)
def test_each_bad_field_gets_its_own_error(tmp_path, hopper_file, name, change, message):
    path = _broken(tmp_path, hopper_file, name, change)
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert str(err.value).startswith(str(path) + ": ")
    assert message in str(err.value)


def test_empty_truncated_corrupt_and_pickled_files(tmp_path, hopper_file):
    raw = hopper_file.read_bytes()
    cases = {
        "empty.npz": (b"", "empty file"),
        "trunc.npz": (raw[: len(raw) // 2], "truncated or corrupt"),
        "junk.npz": (os.urandom(2000), "truncated or corrupt"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DatasetError, match=message):
            load_dataset(tmp_path / name)
    # an object array would need unpickling: refused, not executed
    fields = _fields(hopper_file)
    fields["obs"] = np.array([object()] * 3, dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **fields)
    (tmp_path / "pickle.npz").write_bytes(buf.getvalue())
    with pytest.raises(DatasetError, match="not a valid dataset file"):
        load_dataset(tmp_path / "pickle.npz")
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "absent.npz")


def test_failed_write_keeps_the_old_file(tmp_path, hopper_dataset):
    path = tmp_path / "d.npz"
    hopper_dataset.save(path)
    before = path.read_bytes()
    bad = Dataset(hopper_dataset.episodes, dict(hopper_dataset.metadata))
    bad.metadata["oops"] = float("nan")  # JSON refuses NaN: the write fails midway
    with pytest.raises(ValueError):
        bad.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


def test_episode_validation_in_memory():
    t = np.array([0.0, 0.1, 0.2])
    ok = dict(
        t=t,
        obs=np.zeros((3, 2)),
        actions=np.zeros((2, 1)),
        rewards=np.zeros(2),
        qpos=np.zeros((3, 0)),
        qvel=np.zeros((3, 0)),
    )
    Dataset([Episode(**ok)], {"env_id": "X"})
    with pytest.raises(DatasetError, match="episode 0: field 'rewards' has shape"):
        Dataset([Episode(**{**ok, "rewards": np.zeros(3)})], {"env_id": "X"})
    with pytest.raises(DatasetError, match="episode 1: field 'obs' has width 3"):
        Dataset([Episode(**ok), Episode(**{**ok, "obs": np.zeros((3, 3))})], {"env_id": "X"})
    with pytest.raises(DatasetError, match="no 'env_id'"):
        Dataset([Episode(**ok)], {})


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"observation_shape": [11]}, "observations have 2 dims, the metadata's observation_shape"),
        ({"action_low": [-1.0, -1.0, -1.0]}, "actions have 1 dims, the metadata's action_low"),
        ({"action_high": [1.0, 1.0]}, "actions have 1 dims, the metadata's action_high"),
        ({"default_dt": -0.008}, "default_dt must be a positive number of seconds"),
        ({"physics_timestep": 0.0}, "physics_timestep must be a positive number of seconds"),
    ],
)
def test_arrays_that_contradict_their_metadata_are_refused(meta, message):
    t = np.array([0.0, 0.1, 0.2])
    ep = Episode(
        t, np.zeros((3, 2)), np.zeros((2, 1)), np.zeros(2), np.zeros((3, 0)), np.zeros((3, 0))
    )
    consistent = {"observation_shape": [2], "action_low": [-1.0], "default_dt": 0.1}
    Dataset([ep], {"env_id": "X", **consistent})
    with pytest.raises(DatasetError, match=message):
        Dataset([ep], {"env_id": "X", **consistent, **meta})


def test_split_is_deterministic_disjoint_and_complete(hopper_dataset):
    a = hopper_dataset.split_indices((0.6, 0.2, 0.2), seed=1)
    b = hopper_dataset.split_indices((0.6, 0.2, 0.2), seed=1)
    c = hopper_dataset.split_indices((0.6, 0.2, 0.2), seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    allidx = np.concatenate(list(a.values()))
    assert sorted(allidx.tolist()) == list(range(len(hopper_dataset)))
    assert [len(a[k]) for k in ("train", "val", "test")] == [8, 2, 2]
    parts = hopper_dataset.split((0.6, 0.2, 0.2), seed=1)
    assert parts["val"][0].obs is hopper_dataset[int(a["val"][0])].obs
    with pytest.raises(ValueError, match="summing to 1"):
        hopper_dataset.split_indices((0.5, 0.2, 0.2))


def test_a_path_or_a_dataset_of_the_wrong_type_is_named(tmp_path, hopper_file, hopper_dataset):
    with pytest.raises(TypeError, match="a dataset path must be a str or a path, got NoneType"):
        load_dataset(None)
    with pytest.raises(TypeError, match="merge takes Dataset objects .* item 1 is a str"):
        Dataset.merge([hopper_dataset, str(hopper_file)])


def test_merge_same_env_only(hopper_dataset):
    merged = Dataset.merge([hopper_dataset, hopper_dataset.subset([0, 1])])
    assert len(merged) == len(hopper_dataset) + 2
    assert len(merged.metadata["merged_from"]) == 2
    other = Dataset(hopper_dataset.episodes, {**hopper_dataset.metadata, "env_id": "Walker2d-v5"})
    with pytest.raises(DatasetError, match="cannot merge dataset 1 of env 'Walker2d-v5'"):
        Dataset.merge([hopper_dataset, other])


def test_uncompressed_save_round_trips_and_an_empty_directory_is_refused(tmp_path, hopper_dataset):
    import zipfile

    path = hopper_dataset.save(tmp_path / "stored.npz", compress=False)
    with zipfile.ZipFile(path) as zf:
        assert {info.compress_type for info in zf.infolist()} == {zipfile.ZIP_STORED}
    back = load_dataset(path)
    for a, b in zip(hopper_dataset, back):
        assert np.array_equal(a.obs, b.obs) and np.array_equal(a.actions, b.actions)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: no shard files \(shard-\*\.npz\)"):
        load_dataset(tmp_path / "empty")
