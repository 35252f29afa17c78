"""The configs: one source per setting, and model settings a model would ignore refused."""

import ast
import inspect
import json
import re
from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from agents.config import PlanConfig, PlannerConfig
from tests.synthetic import linear_dataset
from worldmodel.batching import Normalizer, make_batch, sample_windows
from worldmodel.config import (
    FIELD_USERS,
    MODEL_NAMES,
    EvaluateConfig,
    ModelConfig,
    TrainConfig,
    unused_settings,
)
from worldmodel.models import make_model

# a value other than the default for every field, each one the models reading it notice
CHANGED = dict(
    latent_dim=7,
    carry_obs=False,
    noise_horizons=3,
    obs_noise="shared",
    one_step_weight=0.5,
    field_activation="tanh",
    field_dropout=0.3,
    input_noise=0.3,
    rec_dim=13,
    rec_layers=2,
    units=25,
    layers=2,
    dec_units=5,
    solver="euler",
    max_step=0.3,
    rtol=1e-6,
    atol=1e-7,
    adjoint=True,
    encoder="rnn",
    samples=3,
    iwae=True,
    obs_std=0.1,
    min_std=0.5,
    time_unit=0.5,
    ensemble_size=2,
    ensemble_units=20,
    ensemble_layers=1,
)
SMALL = ModelConfig(
    latent_dim=6,
    rec_dim=12,
    units=24,
    layers=1,
    time_unit=1.0,
    ensemble_size=3,
    ensemble_units=32,
    ensemble_layers=2,
    max_step=None,
)


@pytest.mark.parametrize(
    "config, error, message",
    [
        (TrainConfig(epochs="1"), TypeError, "--epochs must be an integer, got '1'"),
        (TrainConfig(batch_size=4.5), TypeError, "--batch-size must be an integer"),
        (TrainConfig(lr=0.0), ValueError, "--lr must be > 0"),
        (TrainConfig(grad_clip=float("nan")), ValueError, "--grad-clip must be > 0 and finite"),
        (TrainConfig(grad_clip=-1.0), ValueError, "--grad-clip must be > 0"),
        (TrainConfig(weight_decay=-1.0), ValueError, "--weight-decay must be >= 0"),
        (TrainConfig(context_fraction=1.5), ValueError, "--context-fraction must be in \\(0, 1\\)"),
        (TrainConfig(context_fraction=0.0), ValueError, "--context-fraction"),
        (TrainConfig(steps_per_epoch=0), ValueError, "--steps-per-epoch must be >= 1"),
        (TrainConfig(net=ModelConfig(min_std=-1.0)), ValueError, "--net.min-std must be > 0"),
        (TrainConfig(net=ModelConfig(time_unit=0.0)), ValueError, "--net.time-unit must be > 0"),
        (TrainConfig(net=ModelConfig(max_step=-1.0)), ValueError, "--net.max-step must be > 0"),
        (TrainConfig(net=ModelConfig(rtol=-1.0)), ValueError, "--net.rtol must be > 0"),
        (TrainConfig(net=ModelConfig(units=0)), ValueError, "--net.units must be >= 1"),
        (TrainConfig(net=ModelConfig(field_dropout=1.0)), ValueError, "--net.field-dropout"),
        (TrainConfig(net=ModelConfig(carry_obs=1)), TypeError, "--net.carry-obs must be a bool"),
    ],
)
def test_a_setting_of_the_wrong_kind_or_range_is_named(config, error, message):
    with pytest.raises(error, match=message):
        config.check()


def test_the_defaults_and_their_other_choices_pass_the_checks():
    TrainConfig().check()
    for net in (
        ModelConfig(max_step=None),
        ModelConfig(max_step="env-dt"),
        ModelConfig(latent_dim=8),
    ):
        TrainConfig(net=net, steps_per_epoch=None).check()
    PlanConfig().check()
    EvaluateConfig().check()


@pytest.mark.parametrize(
    "config, message",
    [
        (PlanConfig(particles=0), "--particles must be >= 1"),
        (PlanConfig(elites=0), "--elites must be >= 1"),
        (PlanConfig(population=1), "--population must be >= 2"),
        (PlanConfig(temperature=0.0), "--temperature must be > 0"),
        (PlanConfig(init_std=float("nan")), "--init-std must be > 0"),
        (PlanConfig(momentum=2.0), "--momentum must be in \\[0, 1\\)"),
        (PlanConfig(episodes=0), "--episodes must be >= 1"),
        (PlanConfig(context=0), "--context must be >= 1"),
        (EvaluateConfig(horizon=0), "--horizon must be >= 1"),
        (EvaluateConfig(starts=-3), "--starts must be >= 1"),
        (EvaluateConfig(context=0), "--context must be >= 1"),
        (EvaluateConfig(observed=(0.5, float("nan"))), "--observed fractions must be in"),
    ],
)
def test_plan_and_evaluate_settings_out_of_range_are_named(config, message):
    with pytest.raises(ValueError, match=message):
        config.check()


def test_plan_config_is_the_planner_config_plus_the_episodes():
    assert issubclass(PlanConfig, PlannerConfig)
    shared = {f.name for f in fields(PlannerConfig)}
    assert shared < {f.name for f in fields(PlanConfig)}
    # the defaults the committed MPC results (benchmarks/control.py) were produced with
    plan = PlanConfig()
    assert (plan.horizon, plan.population, plan.iterations, plan.elites) == (10, 128, 3, 16)
    assert all(getattr(plan, n) == getattr(PlannerConfig(), n) for n in shared)
    # the old import paths still give the same classes
    from agents.planners import PlannerConfig as from_planners
    from worldmodel.config import DynaConfig
    from worldmodel.config import PlanConfig as from_config

    assert from_planners is PlannerConfig and from_config is PlanConfig
    assert DynaConfig.__module__ == "agents.config"


def test_field_users_cover_every_field_and_model():
    assert set(FIELD_USERS) == {f.name for f in fields(ModelConfig)}
    assert all(set(users) <= set(MODEL_NAMES) for users in FIELD_USERS.values())


def _field_docs() -> dict[str, str]:
    tree = ast.parse(inspect.getsource(ModelConfig))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr):
            docs[node.target.id] = nxt.value.value
    return docs


def test_each_field_help_names_the_models_that_read_it():
    docs = _field_docs()
    assert set(docs) == set(FIELD_USERS)
    for name, doc in docs.items():
        bracket = re.match(r"\[([^\]]+)\]", doc)
        assert bracket, f"{name}: its help does not start with [models]"
        said = set(MODEL_NAMES) if bracket.group(1) == "all models" else set()
        said |= {m for m in MODEL_NAMES if re.search(rf"(?<![\w-]){m}(?![\w-])", bracket.group(1))}
        assert said == set(FIELD_USERS[name]), (name, bracket.group(1))


@pytest.fixture(scope="module")
def batch():
    d = linear_dataset(30, 20, seed=0)
    norm = Normalizer.fit(d.episodes)
    rng = np.random.default_rng(99)
    windows = sample_windows(d.episodes, 4, 10, rng)
    return make_batch(d.episodes, windows, norm, mode="extrap", observed=0.7, rng=rng), norm


def _fingerprint(name: str, net: ModelConfig, batch) -> tuple:
    """Parameter shapes and seeded loss, predictions and rollout of a model built from ``net``."""
    b, norm = batch
    torch.manual_seed(0)
    model = make_model(name, 2, 1, net)
    model.set_normalizer(norm)
    with torch.no_grad():
        torch.manual_seed(1)
        loss = float(model.loss(b)[0])
        torch.manual_seed(2)
        pred = model.predict(b, 2)
        state = model.encode(b, 2)
        roll = model.rollout(state, b.actions[:, :4], torch.full((b.size, 4), 0.7))
    shapes = tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())
    sums = (pred.mean.sum(), pred.std.sum(), roll.mean.sum(), roll.std.sum())
    return shapes, loss, *(float(s) for s in sums)


BASES = {
    "default": SMALL,
    "no-carry": replace(SMALL, carry_obs=False),
    "rnn-encoder": replace(SMALL, encoder="rnn"),
    "fixed-std": replace(SMALL, obs_std=0.2),
}
CASES = [(name, "default") for name in MODEL_NAMES] + [
    ("latent-ode", "no-carry"),
    ("latent-ode", "rnn-encoder"),
    ("latent-ode", "fixed-std"),
    ("rnn-vae", "fixed-std"),
]


@pytest.mark.parametrize(("name", "base"), CASES)
def test_the_settings_listed_as_unused_change_nothing_in_the_model(name, base, batch):
    """What the table says a model ignores, it does ignore (so refusing it loses nothing):
    all of it changed at once leaves the parameters and every output as they were."""
    net = BASES[base]
    unused = unused_settings(name, net)
    changed = replace(net, **{field: CHANGED[field] for field in unused})
    assert _fingerprint(name, changed, batch) == _fingerprint(name, net, batch), sorted(unused)


def test_a_setting_the_model_ignores_is_refused():
    with pytest.raises(ValueError, match=r"--net.ensemble-size .*'latent-ode'.*mlp-ensemble"):
        ModelConfig(ensemble_size=3).check_for("latent-ode")
    with pytest.raises(ValueError, match=r"--net.encoder .*'rnn-vae'"):
        ModelConfig(encoder="rnn").check_for("rnn-vae")
    with pytest.raises(ValueError, match=r"--net.ensemble-size .*'mlp-delta'"):
        ModelConfig(ensemble_size=1).check_for("mlp-delta")
    with pytest.raises(ValueError, match=r"--net.dec-units .*carry_obs"):
        ModelConfig(dec_units=0).check_for("latent-ode")
    with pytest.raises(ValueError, match=r"--net.latent-dim .*'mlp-ensemble'"):
        ModelConfig(latent_dim=8).check_for("mlp-ensemble")
    # what each model reads passes, and so does a field left at its default
    ModelConfig(dec_units=0, carry_obs=False, encoder="rnn").check_for("latent-ode")
    ModelConfig(ensemble_size=3, ensemble_units=64).check_for("mlp-ensemble")
    ModelConfig(latent_dim=20, units=50).check_for("ode-rnn")
    for name in MODEL_NAMES:
        ModelConfig().check_for(name)


def test_the_paper_protocol_sets_fields_some_rows_ignore():
    """net_for gives every row one config (the ensemble's sizes with the latent models'): it
    is not checked, so the protocol runs as before (tests/test_paper.py runs its cells)."""
    from worldmodel.paper import net_for

    with pytest.raises(ValueError, match="--net.ensemble-units"):
        net_for("latent-ode").check_for("latent-ode")


def test_a_legacy_config_json_with_every_field_still_loads(tiny_run, tmp_path):
    """A run's config.json stores every ModelConfig field, ignored ones included (here the
    ensemble's with a latent-ode and the latent sizes with an ensemble); it loads as before."""
    from worldmodel.train import load

    for name in ("latent-ode", "mlp-ensemble"):
        run = tiny_run(name)
        saved = json.loads((run / "config.json").read_text())
        assert set(saved["train"]["net"]) == {f.name for f in fields(ModelConfig)}
        net = TrainConfig.from_dict(saved["train"]).net
        with pytest.raises(ValueError, match="is not used by model"):
            net.check_for(name)  # a user could not ask for this today...
        model = load(run)  # ...but the saved run loads
        assert model.name == name
