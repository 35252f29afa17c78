"""Configuration dataclasses of models and training (no torch import: the CLI builds on them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

# the registry in worldmodel.models maps these names to classes (a test keeps them in step)
MODEL_NAMES = ("latent-ode", "ode-rnn", "gru-dt", "rnn-vae", "mlp-ensemble", "mlp-delta")


@dataclass
class ModelConfig:
    """Architecture and objective settings (one flat set; each model reads the fields it uses)."""

    latent_dim: int | None = None
    """Latent state size (latent-ode: the augmented dimensions beside the carried observation;
    rnn-vae) or hidden size of the filters (ode-rnn, gru-dt). None: ``auto_latent_dim(obs_dim)``
    = max(16, obs_dim), so that the state is never smaller than what it must describe."""
    carry_obs: bool = True
    """latent-ode: the state is the normalised observation itself plus ``latent_dim`` augmented
    dimensions inferred by the encoder (horizon 0 is exact, the decoder reads the observation
    part). False: a purely latent state with an MLP decoder, as in the paper."""
    noise_horizons: int = 50
    """latent-ode with a learned observation noise: it also depends on how many intervals the
    point lies past the anchor, one learned log-factor per interval up to this many (0: one
    noise for every horizon). Open-loop errors grow with the horizon; a single noise level is
    set by the long horizons and so gives the short ones almost no weight in the loss."""
    field_activation: Literal["tanh", "silu"] = "silu"
    """Activation of the latent-ode's dynamics network (the paper's: tanh)."""
    rec_dim: int = 40
    """Hidden size of the recognition (encoder) RNN."""
    rec_layers: int = 1
    """Hidden layers of the encoder's ODE network (the paper's Hopper: 3, of ``units``)."""
    units: int = 100
    """Hidden units per layer of the dynamics network (the paper's Hopper: 300)."""
    layers: int = 2
    """Hidden layers of the dynamics network (the paper's Hopper: 3)."""
    dec_units: int = 100
    """Hidden units of the decoder MLP (0: a linear decoder, as in the paper)."""
    solver: str = "rk4"
    """torchdiffeq method for the dynamics ODE (``rk4``, ``euler``, ``midpoint``, \
``dopri5``, ...)."""
    max_step: float | Literal["env-dt"] | None = "env-dt"
    """Fixed-step solvers: largest step in seconds (None: one step per control interval).
    ``env-dt``: the env's own control step (the dataset's ``default_dt``), filled in by the
    trainer, so that an interval longer than any seen in training is integrated in more steps
    of a familiar size rather than one larger one (a model built without a dataset: None)."""
    rtol: float = 1e-3
    """Adaptive solvers: relative tolerance."""
    atol: float = 1e-4
    """Adaptive solvers: absolute tolerance."""
    adjoint: bool = False
    """Backpropagate with the adjoint method (O(1) memory in time, slower)."""
    encoder: str = "ode-rnn"
    """Latent models: ``ode-rnn`` (the paper's ODE encoder) or ``rnn`` (the "RNN enc." variant)."""
    samples: int = 1
    """Latent samples per window during training (the paper's Hopper: 3)."""
    iwae: bool = False
    """Use the multi-sample importance-weighted bound instead of the ELBO."""
    obs_std: float | None = None
    """Fixed observation std in normalised units (None: learned: per dimension in the latent
    models, per point in ode-rnn and gru-dt). Not used by mlp-ensemble."""
    min_std: float = 1e-3
    """Floor of every predicted standard deviation (normalised units)."""
    time_unit: float = 0.1
    """Seconds per model time unit (the ODE is integrated in these units)."""
    ensemble_size: int = 5
    """mlp-ensemble: members."""
    ensemble_units: int = 200
    """mlp-ensemble: hidden units per layer."""
    ensemble_layers: int = 3
    """mlp-ensemble: hidden layers."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auto_latent_dim(obs_dim: int) -> int:
    """Default latent size for observations of ``obs_dim`` dims (see ``ModelConfig.latent_dim``)."""
    return max(16, obs_dim)


@dataclass
class TrainConfig:
    """Settings of one training run (saved as ``config.json`` in the run directory)."""

    model: str = "latent-ode"
    """Model name: latent-ode, ode-rnn, gru-dt, rnn-vae, mlp-ensemble or mlp-delta."""
    net: ModelConfig = field(default_factory=ModelConfig)
    """Architecture and objective of the model."""
    epochs: int = 30
    """Epochs to train (on resume: the new total)."""
    steps_per_epoch: int | None = 100
    """Batches per epoch (None: about one pass over the training transitions)."""
    batch_size: int = 32
    """Windows per batch."""
    window: int = 50
    """Observations per training window."""
    lr: float = 3e-3
    """Peak learning rate (Adam). 3e-3 was better than 1e-3 on validation for latent-ode,
    mlp-ensemble and mlp-delta alike (benchmarks/world_models.py, seed 0)."""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """Learning-rate schedule over all steps (cosine decays to 5 % of the peak)."""
    weight_decay: float = 0.0
    """Adam weight decay."""
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
    eval_seed: int = 1234
    """Seed of the validation windows' observation masks."""
    kl_warmup_steps: int = 300
    """KL weight rises linearly from 0 to 1 over these steps (latent models)."""
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

    def check(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.model!r}; expected one of {sorted(MODEL_NAMES)}")
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
        # noise level (without these, their weights would not fit the model built to load them)
        net = {"carry_obs": False, "field_activation": "tanh", "noise_horizons": 0, **net}
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
    """Actions of the open-loop rollouts: random or zero."""
    observed: tuple[float, ...] = (0.1, 0.3, 0.5, 1.0)
    """Observed fractions of the held-out accuracy table."""
    video: bool = True
    """Render the side-by-side videos (needs MUJOCO_GL=egl without a display)."""
    seed: int = 0
    """Seed of start states, actions, dts and masks."""


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
    window: int = 50
    """Observations per training window."""
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
    runs: Path = Path("runs/paper_hopper")
    """Where each cell's run directory goes (a rerun resumes it)."""
    csv: Path = Path("benchmarks/results/paper_hopper.csv")
    """Results file (rows appended)."""
    progress: bool = True
    """Progress bars."""
    trace_test: bool = False
    """After every epoch, score the current weights on the test split and append it to the run's
    ``test_trace.csv`` with the training time so far (for time-to-accuracy; not for selection)."""


@dataclass
class PlanConfig:
    """Settings of ``worldmodel plan``: model-predictive control on the real env."""

    run: Annotated[Path, tyro.conf.Positional] = Path("runs/latest")
    """Run directory of the world model."""
    planner: str = "cem"
    """cem or mppi."""
    episodes: int = 5
    """Real episodes."""
    horizon: int = 10
    """Planned steps ahead."""
    population: int = 128
    """Candidates per iteration."""
    iterations: int = 3
    """Refinements per action."""
    elites: int = 16
    """CEM elites."""
    particles: int = 1
    """Latent samples per candidate."""
    context: int = 5
    """Recent real observations re-encoded before every action."""
    timing: str = "fixed"
    """Real control intervals (the planner assumes the env's default dt)."""
    max_episode_steps: int | None = None
    """Time limit of the real episodes (default: the env's)."""
    seed: int = 0
    """Seed of the real resets and the planner."""


@dataclass
class DynaConfig:
    """Settings of ``worldmodel dyna``: SAC trained on real and imagined transitions \
(MBPO-style)."""

    env: str = "Hopper-v5"
    """Gymnasium MuJoCo env id (one of those with a task in ``envs.tasks``)."""
    steps: int = 50_000
    """Real env steps in total (the budget every method is compared at)."""
    out: Path = Path("runs/dyna")
    """Directory for the agent, the model refits and the learning curve."""
    use_model: bool = True
    """False: plain model-free SAC with the same settings (the baseline)."""
    model: str = "mlp-ensemble"
    """World model name."""
    timing: str = "fixed"
    """Real control intervals."""
    init_steps: int = 2_000
    """Random real steps before SAC learns and the model is first fitted."""
    refit_every: int = 1_000
    """Real steps between model refits (each followed by new imagined rollouts)."""
    refit_epochs: int = 2
    """Epochs per refit (warm-started from the previous fit)."""
    refit_steps_per_epoch: int = 50
    """Batches per refit epoch."""
    window: int = 10
    """Training window (observations)."""
    imagine_every: int = 250
    """Real steps between batches of imagined rollouts (with the current policy and model)."""
    rollouts: int = 5_000
    """Imagined branches per batch, each from a random real state."""
    rollout_length: int = 3
    """Imagined steps per branch."""
    imagined_capacity: int = 60_000
    """Imagined transitions kept (FIFO); older ones fall out as new batches arrive."""
    real_ratio: float = 0.1
    """Fraction of each SAC batch drawn from real steps (the rest from imagined ones)."""
    context: int = 5
    """Real observations encoded before each branch."""
    gradient_steps: int = 1
    """SAC updates per real step."""
    eval_every: int = 2_500
    """Real steps between evaluations on the real env."""
    eval_episodes: int = 3
    """Real episodes per evaluation (deterministic policy)."""
    seed: int = 0
    """Seed of SAC, the envs and the model."""

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        for name in (
            "steps",
            "refit_every",
            "refit_epochs",
            "refit_steps_per_epoch",
            "imagine_every",
            "rollouts",
            "rollout_length",
            "imagined_capacity",
            "context",
            "gradient_steps",
            "eval_every",
            "eval_episodes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"dyna: {name} must be >= 1, got {getattr(self, name)}")
        if self.init_steps < 0:
            raise ValueError(f"dyna: init_steps must be >= 0, got {self.init_steps}")
        if not 0.0 <= self.real_ratio <= 1.0:
            raise ValueError(f"dyna: real_ratio must be in [0, 1], got {self.real_ratio}")
        if self.window < 3:
            raise ValueError(f"dyna: window must be >= 3 observations, got {self.window}")
