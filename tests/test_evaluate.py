"""Model vs simulator: the harness, plots, video and report."""

import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest

from worldmodel.batching import Normalizer
from worldmodel.config import EvaluateConfig
from worldmodel.evaluate import (
    CEILING,
    FLOOR,
    MeanPredictor,
    ModelPredictor,
    SimulatorPredictor,
    compare_to_simulator,
    heldout_error,
)
from worldmodel.report import SECTIONS, evaluate_runs
from worldmodel.train import load


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run("latent-ode")


def test_the_simulator_itself_has_zero_error_at_every_horizon(hopper_dataset):
    norm = Normalizer.fit(hopper_dataset.episodes)
    res = compare_to_simulator(
        [SimulatorPredictor("Hopper-v5")], hopper_dataset, norm, horizon=15, starts=6, context=3
    )
    assert res.errors["simulator"].shape == (6, 15)
    assert res.errors["simulator"].max() < 1e-10
    # the references: a 1e-6 perturbation stays tiny here; holding the last observation does not
    assert res.errors[FLOOR].mean() < 1e-6 < res.errors[CEILING].mean()
    assert (res.errors[FLOOR].mean(0) < res.errors[CEILING].mean(0)).all()


def test_recorded_policy_replays_what_the_data_did_next(hopper_dataset):
    norm = Normalizer.fit(hopper_dataset.episodes)
    res = compare_to_simulator(
        [SimulatorPredictor("Hopper-v5")],
        hopper_dataset,
        norm,
        horizon=6,
        starts=8,
        context=3,
        policy="recorded",
    )
    assert res.settings["timing"] == "recorded"
    for i, s in enumerate(res.starts):
        ep = hopper_dataset[s.episode]
        np.testing.assert_array_equal(res.actions[i], ep.actions[s.index : s.index + 6])
        np.testing.assert_allclose(res.dts[i], np.diff(ep.t[s.index : s.index + 7]))
        # the simulator from the recorded state under the recorded actions is the recording
        np.testing.assert_allclose(res.real[i], ep.obs[s.index + 1 : s.index + 7], atol=1e-6)
    with pytest.raises(ValueError, match="and 60 steps after it"):
        compare_to_simulator([], hopper_dataset, norm, horizon=60, policy="recorded")
    with pytest.raises(ValueError, match="'random', 'zero' or 'recorded'"):
        compare_to_simulator([], hopper_dataset, norm, policy="recordd")


def test_model_rollouts_and_heldout_table(run, hopper_dataset):
    model = load(run)
    res = compare_to_simulator(
        [ModelPredictor(model, "m")], hopper_dataset, model.normalizer, horizon=8, starts=4
    )
    assert np.isfinite(res.errors["m"]).all() and res.errors["m"].mean() > 0
    rows = heldout_error(model, hopper_dataset, observed=(0.5, 1.0), window=10)
    assert {(r["mode"], r["observed"]) for r in rows} == {
        ("interp", 0.5),
        ("interp", 1.0),
        ("extrap", 0.5),
        ("extrap", 1.0),
    }
    assert all(r["mse"] > 0 and r["points"] > 0 for r in rows)


def test_report_plots_and_video(run, hopper_file, tmp_path):
    report = evaluate_runs(
        [run], tmp_path / "rep", EvaluateConfig(dataset=hopper_file, horizon=8, starts=4, context=3)
    )
    text = report.read_text()
    assert all(section in text for section in SECTIONS)
    assert "worldmodel collect --env Hopper-v5" in text and "worldmodel evaluate" in text
    for png in ("horizon.png", "trajectories.png"):
        img = imageio.imread(tmp_path / "rep" / png)
        assert img.std() > 10  # not blank
    frames = imageio.mimread(tmp_path / "rep" / "video_latent-ode.gif")
    assert len(frames) == 3 + 8  # context, then the horizon
    assert np.asarray(frames[0]).std() > 5
    assert not np.array_equal(frames[3], frames[-1])  # the imagined hopper moves
    mp4 = imageio.get_reader(tmp_path / "rep" / "video_latent-ode.mp4")
    assert mp4.count_frames() == 11
    with pytest.raises(ValueError, match="Walker2d-v5"):
        from worldmodel.data import Dataset, load_dataset

        d = load_dataset(hopper_file)
        other = tmp_path / "walker.npz"
        Dataset(d.episodes, {**d.metadata, "env_id": "Walker2d-v5"}).save(other)
        evaluate_runs([run], tmp_path / "x", EvaluateConfig(dataset=other, video=False))


def test_evaluate_and_demo_commands(run, hopper_file, tmp_path):
    def cli(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "worldmodel.cli", *args],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    out = cli(
        "evaluate",
        str(run),
        "--dataset",
        str(hopper_file),
        "--out",
        str(tmp_path / "r"),
        "--horizon",
        "5",
        "--starts",
        "3",
        "--context",
        "3",
        "--no-video",
    )
    assert "report.md" in out and (tmp_path / "r" / "results.json").exists()
    out = cli(
        "demo",
        "--out",
        str(tmp_path / "demo"),
        "--episodes",
        "16",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--window",
        "10",
        "--horizon",
        "5",
        "--starts",
        "3",
        "--no-progress",
        "--no-video",
    )
    assert (
        "open-loop MSE vs horizon" in out and (tmp_path / "demo" / "report" / "report.md").exists()
    )


class _Exact:
    """Predicts the linear system's true next states along the recorded actions and dts."""

    name = "exact"

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def predict(self, contexts, actions, dts):
        from tests.synthetic import zoh_step

        out = np.zeros((*actions.shape[:2], 2))
        for i, c in enumerate(contexts):
            s = c.obs[-1]
            for k in range(actions.shape[1]):
                s = zoh_step(s, actions[i, k], dts[i, k])
                out[i, k] = s
        return out + self.offset


def test_recorded_error_scores_along_the_recorded_actions_against_holding():
    from tests.synthetic import linear_dataset
    from worldmodel.evaluate import recorded_error

    data = linear_dataset(episodes=6, steps=12)
    norm = Normalizer(np.zeros(2), np.full(2, 0.5))
    exact = recorded_error(_Exact(), data.episodes, norm, horizon=4, starts=50)
    assert exact["model"].shape == exact["hold"].shape == (4,)
    np.testing.assert_allclose(exact["model"], 0.0, atol=1e-12)  # float32 actions
    assert np.all(np.diff(exact["hold"]) > 0)  # holding drifts further with the horizon
    off = recorded_error(_Exact(0.1), data.episodes, norm, horizon=4, starts=50)
    np.testing.assert_allclose(off["model"], (0.1 / 0.5) ** 2)  # normalised units
    np.testing.assert_allclose(off["hold"], exact["hold"])  # same starts for the same seed
    assert recorded_error(_Exact(), data.episodes, norm, horizon=9, context=5) is None


def test_mean_predictor_averages_its_members_and_needs_one():
    class Const:
        def __init__(self, value, name):
            self.value, self.name = value, name

        def predict(self, contexts, actions, dts):
            return np.full((len(contexts), actions.shape[1], 2), self.value)

    mean = MeanPredictor([Const(1.0, "a"), Const(4.0, "b")], "ab")
    out = mean.predict([None, None, None], np.zeros((3, 5, 1)), np.ones((3, 5)))
    assert mean.name == "ab" and out.shape == (3, 5, 2) and np.all(out == 2.5)
    with pytest.raises(ValueError, match="at least one"):
        MeanPredictor([], "none")
