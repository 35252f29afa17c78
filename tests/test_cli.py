"""One subprocess smoke test per CLI command."""

import subprocess
import sys

import numpy as np

from worldmodel.data import load_dataset


def run(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "worldmodel.cli", *args], capture_output=True, text=True, timeout=300
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_collect_then_info_then_merge(tmp_path):
    out = tmp_path / "h.npz"
    run(
        "collect",
        "--env",
        "Hopper-v5",
        "--episodes",
        "4",
        "--policy",
        "random",
        "--timing",
        "uniform:1-7",
        "--seed",
        "0",
        "--workers",
        "2",
        "--max-episode-steps",
        "25",
        "--out",
        str(out),
        "--no-progress",
    )
    d = load_dataset(out)
    assert len(d) == 4 and d.metadata["seed"] == 0
    info = run("dataset", "info", str(out)).stdout
    assert "episodes      4" in info and "dt [s]" in info and "observations (11 dims)" in info
    merged = tmp_path / "m.npz"
    run("dataset", "merge", str(out), str(out), "--out", str(merged))
    assert len(load_dataset(merged)) == 8
    np.testing.assert_array_equal(load_dataset(merged)[4].obs, d[0].obs)


def test_bad_file_gives_one_line_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    proc = run("dataset", "info", str(bad), check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "corrupt" in lines[0]


def test_bad_flag_value_gives_one_line_error(tmp_path):
    proc = run("collect", "--timing", "uniform:7", "--out", str(tmp_path / "x.npz"), check=False)
    assert proc.returncode == 2 and "malformed timing spec" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_on_collected_hopper_data(tmp_path, hopper_file):
    run_dir = tmp_path / "run"
    out = run(
        "train",
        str(hopper_file),
        "--model",
        "mlp-ensemble",
        "--out",
        str(run_dir),
        "--epochs",
        "2",
        "--window",
        "10",
        "--batch-size",
        "8",
        "--no-progress",
        "--no-tensorboard",
        "--net.ensemble-size",
        "2",
        "--net.ensemble-units",
        "32",
    ).stdout
    assert "best val/score" in out
    from worldmodel import load

    model = load(run_dir, env_id="Hopper-v5", obs_dim=11)
    assert model.run_config["train"]["net"]["ensemble_size"] == 2
    proc = run(
        "train", str(hopper_file), "--model", "nope", "--out", str(tmp_path / "x"), check=False
    )
    assert proc.returncode == 2 and "unknown model 'nope'" in proc.stderr
