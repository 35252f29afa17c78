"""Settings of the ``worldmodel`` jobs: the model (:class:`ModelConfig`) and its training
(:class:`TrainConfig`), ``evaluate``, ``demo`` and ``benchmark paper-hopper``.

No torch import: the CLI builds its flags on these. The other configs live beside what they
configure: ``CollectConfig`` in :mod:`worldmodel.collect`, ``PlannerConfig``, ``PlanConfig``
and ``DynaConfig`` in :mod:`agents.config` (the last two also importable from here, as before).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from worldmodel._lazy import lazy_getattr

# the registry in worldmodel.models maps these names to classes (a test keeps them in step)
MODEL_NAMES = ("latent-ode", "ode-rnn", "gru-dt", "rnn-vae", "mlp-ensemble", "mlp-delta")


@dataclass
class ModelConfig:
    """Architecture and objective settings of every model. Each field's help starts with the
    models that read it; ``worldmodel train`` refuses a field set (changed from its default)
    for a model that would ignore it (:meth:`check_for`)."""

    latent_dim: int | None = None
    """[latent-ode, rnn-vae, ode-rnn, gru-dt] Size of the learned state: latent-ode, the
    augmented dimensions beside the carried observation (the whole latent state without
    carry_obs); rnn-vae, the latent state; ode-rnn and gru-dt, the filter's hidden state. None:
    ``auto_latent_dim(obs_dim)`` = max(16, obs_dim), never smaller than what it describes."""
    carry_obs: bool = True
    """[latent-ode] The state is the normalised observation itself plus ``latent_dim``
    augmented dimensions inferred by the encoder (horizon 0 is exact, no decoder: the
    observation part is read). False: a purely latent state with an MLP decoder, as in the
    paper."""
    noise_horizons: int = 50
    """[latent-ode, rnn-vae; with a learned obs_std] The observation noise also depends on how
    many intervals the point lies past the anchor, one learned log-factor per interval up to
    this many (0: one noise for every horizon). Open-loop errors grow with the horizon; a single
    noise level is set by the long horizons and so gives the short ones almost no weight."""
    obs_noise: Literal["dim", "shared"] = "dim"
    """[latent-ode, rnn-vae; with a learned obs_std] ``dim``: one learned noise level per
    observation dimension; ``shared``: one for all dimensions (in normalised units). The
    likelihood weighs each dimension's squared error by its inverse noise variance, so per-dim
    levels give the hardest dimensions (fast angular velocities) the least weight, while
    open-loop error is scored with every normalised dimension alike."""
    one_step_weight: float = 10.0
    """[latent-ode, with carry_obs] Weight of a teacher-forced one-step term added to the
    open-loop loss: each scored point predicted one interval ahead from the previous
    observation (and the open-loop augmented state there), as a one-step model is trained.
    0: open loop only (runs saved before this setting existed load with 0, as they trained)."""
    field_activation: Literal["tanh", "silu"] = "silu"
    """[latent-ode] Activation of the dynamics network (the paper's: tanh)."""
    field_dropout: float | None = None
    """[latent-ode] Dropout probability after each hidden layer of the dynamics network, in
    training only (each evaluation of the field draws its own mask; imagination and evaluation
    run without it). 0: none. None: the trainer picks it from the dataset's env,
    ``auto_field_dropout`` (0.05 on Walker2d-v5, 0 elsewhere; a model built outside a trainer
    takes 0)."""
    input_noise: float = 0.0
    """[latent-ode, with carry_obs] Std (normalised units) of Gaussian noise added, in training
    only, to the observations the model predicts from (the observation part of each window's
    initial state, and the start of every one-step term); the targets stay clean. The model
    learns to predict from states a little off the data, as an open-loop rollout's own states
    are (the noise of learned simulators, Sanchez-Gonzalez et al. 2020). 0: none."""
    rec_dim: int = 40
    """[latent-ode, rnn-vae] Hidden size of the recognition (encoder) RNN."""
    rec_layers: int = 1
    """[latent-ode, unless its encoder is rnn] Hidden layers of the encoder's ODE network, of
    ``units`` each (the paper's Hopper: 3)."""
    units: int = 200
    """[latent-ode, rnn-vae, ode-rnn] Hidden units per layer of the dynamics network
    (latent-ode, ode-rnn; the paper's Hopper: 300; the ensembles' members: 200) and of the
    encoder's networks (latent-ode, rnn-vae)."""
    layers: int = 3
    """[latent-ode, ode-rnn] Hidden layers of the dynamics network (the paper's Hopper: 3)."""
    dec_units: int = 100
    """[latent-ode without carry_obs, rnn-vae, ode-rnn, gru-dt] Hidden units of the decoder's
    one hidden layer (0: a linear decoder, as in the paper)."""
    solver: str = "midpoint"
    """[latent-ode, ode-rnn] torchdiffeq method for the dynamics ODE (``midpoint``, ``rk4``,
    ``euler``, ``dopri5``, ...). The learned field is fitted through its integrator: with one
    step per training interval (``max_step="data"``) the explicit midpoint rule did as well as
    RK4 in open loop, at half the evaluations of the field."""
    max_step: float | Literal["data", "env-dt"] | None = "data"
    """[latent-ode, ode-rnn] Fixed-step solvers: largest step in seconds (None: one step per
    control interval). ``data``: the longest control interval in the training dataset, so
    that every interval seen in training is one step and one longer than any seen is
    integrated in more steps no longer than seen ones, not in one larger step; ``env-dt``: the
    env's own control step (the dataset's ``default_dt``). Both are filled in by the trainer
    (a model built without a dataset: None)."""
    rtol: float = 1e-3
    """[latent-ode, ode-rnn] Adaptive solvers: relative tolerance."""
    atol: float = 1e-4
    """[latent-ode, ode-rnn] Adaptive solvers: absolute tolerance."""
    adjoint: bool = False
    """[latent-ode] Backpropagate with the adjoint method (O(1) memory in time, slower)."""
    encoder: str = "ode-rnn"
    """[latent-ode] ``ode-rnn`` (the paper's ODE encoder) or ``rnn`` (the "RNN enc." variant;
    rnn-vae always has it)."""
    samples: int = 1
    """[latent-ode, rnn-vae] Latent samples per window during training (the paper's Hopper:
    3)."""
    iwae: bool = False
    """[latent-ode, rnn-vae] Use the multi-sample importance-weighted bound instead of the
    ELBO."""
    obs_std: float | None = None
    """[latent-ode, rnn-vae, ode-rnn, gru-dt] Fixed observation std in normalised units (None:
    learned: per dimension in the latent models, per point in ode-rnn and gru-dt)."""
    min_std: float = 1e-3
    """[all models] Floor of every predicted standard deviation (normalised units)."""
    time_unit: float = 0.1
    """[all models] Seconds per model time unit (ODEs are integrated, dt inputs given, in
    these units)."""
    ensemble_size: int = 5
    """[mlp-ensemble] Members (mlp-delta is one member)."""
    ensemble_units: int = 200
    """[mlp-ensemble, mlp-delta] Hidden units per layer."""
    ensemble_layers: int = 3
    """[mlp-ensemble, mlp-delta] Hidden layers."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """``TypeError`` or ``ValueError`` naming the first setting of the wrong kind or out of
        its range (``--net.`` flags)."""
        check_kinds(self, "net.")
        check_ranges(
            self,
            "net.",
            at_least_1=(
                "latent_dim",
                "rec_dim",
                "units",
                "samples",
                "ensemble_size",
                "ensemble_units",
            ),
            positive=("min_std", "time_unit", "rtol", "atol", "obs_std", "max_step"),
            # 0 layers or decoder units: a linear map
            non_negative=(
                "noise_horizons",
                "one_step_weight",
                "input_noise",
                "rec_layers",
                "layers",
                "dec_units",
                "ensemble_layers",
            ),
            below_1=("field_dropout",),
        )

    def check_for(self, model: str) -> None:
        """Refuse a setting ``model`` would ignore: ``ValueError`` naming the first field that
        differs from its default and that :func:`unused_settings` lists for ``model``. For a
        user's new settings only: a saved run's config.json stores every field and loads
        without this check."""
        unused = unused_settings(model, self)
        default = ModelConfig()
        for f in fields(self):
            if f.name in unused and getattr(self, f.name) != getattr(default, f.name):
                flag = "--net." + f.name.replace("_", "-")
                raise ValueError(
                    f"{flag} is not used by model {model!r} ({unused[f.name]}); "
                    "leave it at its default"
                )


def _flag(prefix: str, name: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def check_kinds(config: Any, prefix: str = "") -> None:
    """``TypeError`` naming the first field of the dataclass ``config`` whose value is not of
    its default's kind: a bool, an integer or a number (an integer passes for a number; None
    where the annotation allows it). Fields whose default is None, text or a container are
    left to the range checks."""
    for f in fields(config):
        default, value = f.default, getattr(config, f.name)
        if value is None and "None" in str(f.type):
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            continue
        if not ok:
            kind = {bool: "a bool", int: "an integer", float: "a number"}[type(default)]
            raise TypeError(f"{_flag(prefix, f.name)} must be {kind}, got {value!r}")


def check_ranges(
    config: Any,
    prefix: str = "",
    *,
    at_least_1: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
    below_1: tuple[str, ...] = (),
) -> None:
    """``ValueError`` naming the first numeric field of ``config`` out of its range: ``>= 1``,
    ``> 0`` and finite, ``>= 0`` and finite, or in ``[0, 1)``. None and text values (a field's
    other choices, such as ``max_step="data"``) are not numbers and pass."""
    rules = (
        (at_least_1, lambda v: v >= 1, ">= 1"),
        (positive, lambda v: 0 < v < math.inf, "> 0 and finite"),
        (non_negative, lambda v: 0 <= v < math.inf, ">= 0 and finite"),
        (below_1, lambda v: 0 <= v < 1, "in [0, 1)"),
    )
    for names, ok, says in rules:
        for name in names:
            value = getattr(config, name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not ok(value):
                raise ValueError(f"{_flag(prefix, name)} must be {says}, got {value!r}")


LATENT_MODELS = ("latent-ode", "rnn-vae")
FILTER_MODELS = ("ode-rnn", "gru-dt")
ODE_MODELS = ("latent-ode", "ode-rnn")
ENSEMBLE_MODELS = ("mlp-ensemble", "mlp-delta")

# ModelConfig field -> the models that read it (the same as the bracket that starts each
# field's help; tests/test_config.py checks both against what the built models do)
FIELD_USERS: dict[str, tuple[str, ...]] = {
    "latent_dim": LATENT_MODELS + FILTER_MODELS,
    "carry_obs": ("latent-ode",),
    "noise_horizons": LATENT_MODELS,
    "obs_noise": LATENT_MODELS,
    "one_step_weight": ("latent-ode",),
    "field_activation": ("latent-ode",),
    "field_dropout": ("latent-ode",),
    "input_noise": ("latent-ode",),
    "rec_dim": LATENT_MODELS,
    "rec_layers": ("latent-ode",),
    "units": (*LATENT_MODELS, "ode-rnn"),
    "layers": ODE_MODELS,
    "dec_units": LATENT_MODELS + FILTER_MODELS,
    "solver": ODE_MODELS,
    "max_step": ODE_MODELS,
    "rtol": ODE_MODELS,
    "atol": ODE_MODELS,
    "adjoint": ("latent-ode",),
    "encoder": ("latent-ode",),
    "samples": LATENT_MODELS,
    "iwae": LATENT_MODELS,
    "obs_std": LATENT_MODELS + FILTER_MODELS,
    "min_std": MODEL_NAMES,
    "time_unit": MODEL_NAMES,
    "ensemble_size": ("mlp-ensemble",),
    "ensemble_units": ENSEMBLE_MODELS,
    "ensemble_layers": ENSEMBLE_MODELS,
}


def unused_settings(model: str, net: ModelConfig) -> dict[str, str]:
    """The :class:`ModelConfig` fields that ``model`` does not read with the settings ``net``,
    each with the reason (for the error message)."""
    unused = {
        name: "used by " + ", ".join(users)
        for name, users in FIELD_USERS.items()
        if model not in users
    }
    if model == "latent-ode" and net.carry_obs:
        unused["dec_units"] = "no decoder with carry_obs: add --net.no-carry-obs"
    if model == "latent-ode" and not net.carry_obs:
        unused["one_step_weight"] = "the one-step term starts from an observation: needs carry_obs"
        unused["input_noise"] = "it goes on the observation part of the state: needs carry_obs"
    if model == "latent-ode" and net.encoder == "rnn":
        unused["rec_layers"] = "the rnn encoder has no ODE network"
    if model in LATENT_MODELS and net.obs_std is not None:
        unused["noise_horizons"] = "a fixed obs_std has no learned noise to scale"
        unused["obs_noise"] = "a fixed obs_std has no learned noise to share"
    return unused


def auto_latent_dim(obs_dim: int) -> int:
    """Default latent size for observations of ``obs_dim`` dims (see ``ModelConfig.latent_dim``)."""
    return max(16, obs_dim)


# env id -> the latent-ode's field dropout when ``ModelConfig.field_dropout`` is None, chosen on
# benchmarks/world_models.py (docs/benchmarks/world_models.md, "Field dropout"): on Walker2d-v5
# 0.05 is below the ensemble at every horizon to 30 on random, expert and mixed episodes; on
# Hopper-v5 it loses the expert episodes from h=5, so there it stays off
FIELD_DROPOUT_BY_ENV: dict[str, float] = {"Walker2d-v5": 0.05}


def auto_field_dropout(model: str, env_id: str) -> float:
    """Default field dropout of ``model`` on data of ``env_id`` (``ModelConfig.field_dropout``
    None): :data:`FIELD_DROPOUT_BY_ENV` for the latent-ode, 0 for every other model."""
    return FIELD_DROPOUT_BY_ENV.get(env_id, 0.0) if model == "latent-ode" else 0.0


@dataclass
class TrainConfig:
    """Settings of one training run (saved as ``config.json`` in the run directory)."""

    model: str = "latent-ode"
    """Model name: latent-ode, ode-rnn, gru-dt, rnn-vae, mlp-ensemble or mlp-delta."""
    net: ModelConfig = field(default_factory=ModelConfig)
    """Architecture and objective of the model (each flag names the models that read it;
    ``worldmodel train`` refuses one set for a model that ignores it)."""
    epochs: int = 30
    """Epochs to train (on resume: the new total)."""
    steps_per_epoch: int | None = 100
    """Batches per epoch (None: about one pass over the training transitions)."""
    batch_size: int = 160
    """Windows per batch."""
    window: int = 10
    """Observations per training window. 10 (5 of context and 5 open-loop intervals to
    predict in extrapolation), 160 to a batch, against 50 and 32 before (the same 1,600
    observations a batch): over 3 seeds the latent-ode's h=1 error is 1.3-3.2x lower on every
    data set of both envs and it leads the mlp-ensemble at every horizon to 30 on the mixed
    policy data, at some cost at long horizons on random episodes; the mlp models change
    little (``docs/benchmarks/world_models.md``)."""
    window_starts: Literal["whole", "any"] = "whole"
    """Where training windows start. ``whole``: only where a whole window fits in its episode,
    so the points near an episode's end, its fall included, are scored in fewer windows than
    mid-episode ones (the last point in one for every five, at a window of 10 in
    extrapolation). ``any``: also nearer the end, the window cut short there but keeping a
    whole window's context points and at least one target, each start drawn in proportion to
    its targets, so that in extrapolation every point past an episode's first ``window - 1``
    weighs the same in the loss (as MBPO samples transitions uniformly). Validation windows
    are unchanged."""
    long_window: int | None = None
    """Also train on windows of this many observations, ``long_share`` of the batches (each of
    ``batch_size`` windows), their context as many points as a ``window``'s, so that the rest,
    a longer open loop, is scored: long horizons in the loss without giving up the short
    windows' one-step accuracy. None: every batch of ``window`` observations. ``steps_per_epoch``
    None still counts ``window``-long batches (an epoch then covers more transitions)."""
    long_share: float = 0.25
    """Share of the training batches drawn at ``long_window`` (with ``long_window`` only)."""
    lr: float = 3e-3
    """Peak learning rate (Adam). 3e-3 was better than 1e-3 on validation for latent-ode,
    mlp-ensemble and mlp-delta alike (benchmarks/world_models.py, seed 0)."""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """Learning-rate schedule over all steps (cosine decays to 5 % of the peak)."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    ema_decay: float | None = None
    """Keep an exponential moving average of the weights with this decay per step (e.g.
    0.995: about the last 200 steps), validate it and save it as the model; the raw weights
    go on training. None: no average."""
    grad_clip: float = 10.0
    """Clip the global gradient norm to this."""
    mode: Literal["interp", "extrap", "both"] = "extrap"
    """Training task; ``both`` draws one per batch. ``extrap`` (predict the rest of each window
    open loop from its first part) is the job of a world model."""
    observed_min: float = 0.2
    """Smallest observed fraction drawn for a training batch."""
    observed_max: float = 1.0
    """Largest observed fraction drawn for a training batch."""
    context_fraction: float = 0.5
    """Extrapolation: share of each window's points that is context."""
    normalize_obs: bool = True
    """Standardise observations with training-split statistics (False: use them as they are)."""
    eval_observed: float = 0.5
    """Observed fraction of the validation batches (fixed by ``eval_seed``)."""
    eval_windows: int = 256
    """Most validation windows per mode."""
    eval_window: int | None = None
    """Observations per validation window (None: ``window``). A longer one makes the best
    checkpoint and early stopping follow a longer open-loop horizon than training scores (the
    context is ``context_fraction`` of it, so it grows too)."""
    eval_seed: int = 1234
    """Seed of the validation windows' observation masks."""
    horizon_start: int | None = None
    """Horizon schedule of the open-loop models (not mlp-ensemble, mlp-delta): each training
    window is scored only on its first ``horizon_start`` targets past its anchor at the first
    step (the later points dropped, so shorter windows also train faster), a horizon that grows
    linearly to the whole window over the first ``horizon_ramp`` of the steps. None: the whole
    window throughout. Validation always scores whole windows."""
    horizon_ramp: float = 0.5
    """Share of the training steps over which the scored horizon grows to the whole window."""
    kl_warmup_steps: int = 300
    """KL weight rises linearly from 0 to ``kl_beta`` over these steps (latent models)."""
    kl_beta: float = 1.0
    """KL weight after the warm-up (the beta of a beta-VAE; 1: the ELBO). Above 1 presses the
    posterior of the initial state towards the prior, so it stays wider."""
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """Train/val/test fractions of episodes."""
    split_seed: int = 0
    """Seed of the episode split."""
    patience: int = 10
    """Stop after this many epochs without a better validation score (0: never)."""
    max_bad_batches: int = 20
    """Stop after this many consecutive non-finite batches."""
    seed: int = 0
    """Seed of initialisation, batches and latent samples."""
    device: str = "auto"
    """``auto``, ``cpu`` or ``cuda``."""
    tensorboard: bool = True
    """Also write TensorBoard events under ``tb/``."""
    progress: bool = True
    """Show a progress bar with the live loss."""
    loader_workers: int = 0
    """Worker processes that build the training batches ahead (0: built in the training loop,
    from one stream). With workers the batch of step k is drawn from the seed and k alone: the
    same for any number of workers or processes, but not the 0-worker sequence."""
    step_log: bool = False
    """Also append every step's training metrics (averaged over the processes) to
    ``steps.csv`` in the run directory."""

    def check(self) -> None:
        """``TypeError`` or ``ValueError`` naming the first setting of the wrong kind, out of
        its range or contradicting another (the net's settings included)."""
        if self.model not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.model!r}; expected one of {sorted(MODEL_NAMES)}")
        check_kinds(self)
        self.net.check()
        check_ranges(
            self,
            at_least_1=("steps_per_epoch",),
            positive=("lr", "grad_clip"),
            non_negative=("weight_decay", "kl_warmup_steps", "patience", "max_bad_batches"),
        )
        if not 0 < self.context_fraction < 1:  # NaN too
            raise ValueError(f"--context-fraction must be in (0, 1), got {self.context_fraction}")
        if not 0 < self.eval_observed <= 1:
            raise ValueError(f"--eval-observed must be in (0, 1], got {self.eval_observed}")
        if self.mode not in ("interp", "extrap", "both"):
            raise ValueError(f"unknown mode {self.mode!r}; expected interp, extrap or both")
        if not 0 < self.observed_min <= self.observed_max <= 1:
            raise ValueError(
                "need 0 < observed_min <= observed_max <= 1, "
                f"got {self.observed_min}, {self.observed_max}"
            )
        for name in ("epochs", "batch_size", "eval_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.window < 3:
            raise ValueError(f"window must be >= 3 observations, got {self.window}")
        if self.window_starts not in ("whole", "any"):
            raise ValueError(
                f"unknown window_starts {self.window_starts!r}; expected 'whole' or 'any'"
            )
        if self.long_window is not None:
            if self.long_window <= self.window:
                raise ValueError(
                    f"long_window ({self.long_window}) must be longer than window ({self.window})"
                )
            if not 0 < self.long_share <= 1:
                raise ValueError(f"long_share must be in (0, 1], got {self.long_share}")
            if self.horizon_start is not None:
                raise ValueError("long_window and a horizon schedule (horizon_start) do not mix")
        elif self.long_share != type(self).long_share:
            raise ValueError("long_share is used only with a long_window")
        if not self.kl_beta >= 0:  # NaN too
            raise ValueError(f"kl_beta must be >= 0, got {self.kl_beta}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.eval_window is not None and self.eval_window < 3:
            raise ValueError(f"eval_window must be >= 3 observations, got {self.eval_window}")
        if self.horizon_start is not None:
            if self.horizon_start < 1:
                raise ValueError(f"horizon_start must be >= 1, got {self.horizon_start}")
            if self.model in ENSEMBLE_MODELS:
                raise ValueError(
                    f"horizon_start: {self.model} is a one-step model with no open-loop horizon"
                )
        elif self.horizon_ramp != type(self).horizon_ramp:
            raise ValueError("horizon_ramp is used only with a horizon_start")
        if not 0 < self.horizon_ramp <= 1:
            raise ValueError(f"horizon_ramp must be in (0, 1], got {self.horizon_ramp}")
        if self.loader_workers < 0:
            raise ValueError(f"loader_workers must be >= 0, got {self.loader_workers}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}")
        net = d.get("net", {})
        if isinstance(net, ModelConfig):
            net = asdict(net)
        # runs saved before these settings existed had a purely latent tanh latent-ode with one
        # noise level per dimension for every horizon (without these, their weights would not
        # fit the model built to load them)
        net = {
            "carry_obs": False,
            "field_activation": "tanh",
            "noise_horizons": 0,
            "one_step_weight": 0.0,
            "obs_noise": "dim",
            **net,
        }
        net_known = {f.name for f in fields(ModelConfig)}
        if set(net) - net_known:
            raise ValueError(f"unknown model settings {sorted(set(net) - net_known)}")
        out = {**d, "net": ModelConfig(**net)}
        if "split" in out:
            out["split"] = tuple(out["split"])
        return cls(**out)


@dataclass
class EvaluateConfig:
    """Settings of ``worldmodel evaluate``."""

    dataset: Path | None = None
    """Dataset whose held-out test episodes are used (default: the first run's)."""
    horizon: int = 30
    """Open-loop steps after each start state."""
    starts: int = 32
    """Recorded start states (from the test episodes)."""
    context: int = 5
    """Observations before each start that the models see."""
    policy: str = "random"
    """Actions of the open-loop rollouts: random, zero, or recorded (the actions and dts the
    data took next: a policy's own trajectories)."""
    observed: tuple[float, ...] = (0.1, 0.3, 0.5, 1.0)
    """Observed fractions of the held-out accuracy table."""
    video: bool = True
    """Render the side-by-side videos (needs MUJOCO_GL=egl without a display)."""
    seed: int = 0
    """Seed of start states, actions, dts and masks."""

    def check(self) -> None:
        """``TypeError`` or ``ValueError`` naming the first setting of the wrong kind or out
        of its range."""
        check_kinds(self)
        check_ranges(self, at_least_1=("horizon", "starts", "context"))
        for fraction in self.observed:
            if not 0 < fraction <= 1:  # NaN too
                raise ValueError(f"--observed fractions must be in (0, 1], got {fraction}")


DEMO_MODELS = ("latent-ode", "mlp-ensemble")


@dataclass
class DemoConfig:
    """Settings of the demo (defaults: a few minutes on 2 CPU cores)."""

    out: Path = Path("demo")
    """Directory for the data, the runs and the report."""
    env: str = "Hopper-v5"
    """Gymnasium MuJoCo env id."""
    episodes: int = 600
    """Random-policy episodes to collect."""
    timing: str = "uniform:1-7"
    """Physics substeps per action (see worldmodel collect)."""
    workers: int = 2
    """Collection worker processes."""
    epochs: int = 15
    """Training epochs of each model (``worldmodel train``'s default is 30)."""
    steps_per_epoch: int = 60
    """Batches per epoch (``worldmodel train``'s default is 100)."""
    window: int = 10
    """Observations per training window (``worldmodel train``'s default)."""
    horizon: int = 30
    """Open-loop steps in the evaluation."""
    starts: int = 32
    """Start states in the evaluation."""
    video: bool = True
    """Render the videos."""
    seed: int = 0
    """Seed of everything."""
    progress: bool = True
    """Progress bars."""


@dataclass
class PaperConfig:
    """Settings of ``worldmodel benchmark paper-hopper`` (the Latent ODE paper's Hopper table)."""

    model: str = "latent-ode"
    """Model name (the paper's rows: latent-ode, ode-rnn, gru-dt, rnn-vae; and mlp-ensemble)."""
    mode: Literal["interp", "extrap"] = "interp"
    """Interpolation or extrapolation."""
    observed: float = 0.3
    """Observed fraction p (0.1, 0.2, 0.3 or 0.5 in the paper)."""
    all: bool = False
    """Every cell of the model's row instead of one."""
    profile: Literal["quick", "full"] = "quick"
    """quick: 2,000 trajectories, 8 epochs (CPU, minutes); full: the protocol's 10,000, \
100 epochs."""
    trajectories: int | None = None
    """Override the profile's number of trajectories."""
    epochs: int | None = None
    """Override the profile's epochs."""
    minutes: float | None = None
    """Stop a cell's training after this many minutes (checked after each epoch)."""
    batch_size: int = 50
    """Trajectories per batch (the paper's 50)."""
    lr: float = 3e-3
    """Peak learning rate (cosine schedule)."""
    obs_std: float | None = 1e-3
    """Fixed observation std of the latent models, as the original code fixes for Hopper (None:
    learned per dimension, which weighs each dimension's error by its own noise and so
    optimises a geometric rather than the protocol's arithmetic mean of errors)."""
    seed: int = 0
    """Seed of training and test masks (the data always uses the protocol's seed 123)."""
    device: str = "auto"
    """auto, cpu or cuda."""
    cache: Path = Path("data/paper_hopper.npz")
    """Dataset cache (the trajectory count is added to the name)."""
    runs: Annotated[Path, tyro.conf.arg(name="out", aliases=("--runs",))] = Path(
        "runs/paper_hopper"
    )
    """Where each cell's run directory goes (a rerun resumes it)."""
    csv: Path = Path("benchmarks/results/paper_hopper.csv")
    """Results file (rows appended)."""
    progress: bool = True
    """Progress bars."""
    trace_test: bool = False
    """After every epoch, score the current weights on the test split and append it to the run's
    ``test_trace.csv`` with the training time so far (for time-to-accuracy; not for selection)."""


# the agents' configs under their old import path (``from worldmodel.config import
# PlanConfig``): they live in agents.config, imported on first use so that this core module
# never loads ``agents`` itself
__getattr__ = lazy_getattr(
    __name__, dict.fromkeys(("PlanConfig", "DynaConfig", "PlannerConfig"), "agents.config")
)
