"""One subprocess smoke test per CLI command."""

import json
import re
import shutil
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


def _plain(text: str) -> str:
    """Help text without the boxes and line breaks of its rich layout."""
    return " ".join(re.sub(r"[│╭╮╰╯─•]", " ", text).split())


def test_help_lists_every_command_with_its_description():
    from worldmodel.cli import APP, BENCHMARK, DATASET

    proc = run("--help")
    top = _plain(proc.stdout)
    for group, prefix in ((APP, ()), (DATASET, ("dataset",)), (BENCHMARK, ("benchmark",))):
        text = top if not prefix else _plain(run(*prefix, "--help").stdout)
        for name, spec in group._subcommands.items():
            help_line = spec.help or spec.target.__doc__.strip().splitlines()[0]
            assert f"{name} {_plain(help_line)}" in text, (prefix, name)
    assert {"collect", "train", "evaluate", "demo", "plan", "dyna", "dataset", "benchmark"} == set(
        APP._subcommands
    )
    assert run().stdout == proc.stdout  # no command: the same help, exit 0


def test_version():
    from worldmodel import __version__

    assert run("--version").stdout.strip() == f"worldmodel {__version__}"


def test_out_env_and_seed_mean_the_same_in_every_command():
    for command, flags in {
        ("collect",): ("--env", "--out", "--seed"),
        ("train",): ("--out", "--seed"),
        ("evaluate",): ("--out", "--seed"),
        ("demo",): ("--env", "--out", "--seed"),
        ("plan",): ("--seed",),
        ("dyna",): ("--env", "--out", "--seed"),
        ("dataset", "merge"): ("--out",),
        ("benchmark", "paper-hopper"): ("--out", "--runs", "--seed"),  # --runs: its old name
    }.items():
        text = run(*command, "--help").stdout
        for flag in flags:
            assert re.search(rf"{flag}(?![\w-])", text), (command, flag)


def test_a_model_setting_the_model_ignores_is_refused(tmp_path, hopper_file):
    out = tmp_path / "x"
    for args, flag in (
        (("--model", "latent-ode", "--net.ensemble-size", "3"), "--net.ensemble-size"),
        (("--model", "rnn-vae", "--net.encoder", "rnn"), "--net.encoder"),
    ):
        proc = run("train", str(hopper_file), *args, "--out", str(out), check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and flag in lines[0] and args[1] in lines[0], lines
        assert not out.exists()  # refused before anything is written


def test_a_saved_run_with_every_field_in_its_config_resumes(tmp_path, tiny_run, hopper_file):
    """Its config.json holds fields the model ignores (every run's does): resuming reads it
    and does not check it as new settings."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run("mlp-ensemble"), run_dir)
    saved = json.loads((run_dir / "config.json").read_text())["train"]
    assert saved["net"]["latent_dim"] == 6  # not used by mlp-ensemble
    epochs = saved["epochs"] + 1
    out = run(
        "train",
        str(hopper_file),
        "--out",
        str(run_dir),
        "--resume",
        "--epochs",
        str(epochs),
        "--no-progress",
    ).stdout
    assert "mlp-ensemble: best val/score" in out and f"last epoch {epochs}" in out
    assert "val/interp_mse nan" not in out  # a mode the run does not score is not printed
    again = run(
        "train", str(hopper_file), "--out", str(run_dir), "--resume", "--epochs", str(epochs)
    ).stdout
    assert f"all {epochs} epochs were trained already; nothing to do" in again
