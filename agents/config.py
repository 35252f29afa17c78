"""Settings of the agents: the planners (:class:`PlannerConfig`), ``worldmodel plan``
(:class:`PlanConfig`, the planner's settings plus the real episodes') and ``worldmodel dyna``
(:class:`DynaConfig`).

No torch import: the CLI builds its flags on these. ``worldmodel.config`` still gives
``PlanConfig`` and ``DynaConfig`` to old imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from worldmodel.config import MODEL_NAMES, check_kinds, check_ranges


@dataclass
class PlannerConfig:
    """Settings shared by the planners (:mod:`agents.planners`). The defaults are the ones
    ``worldmodel plan`` and the committed MPC results in ``benchmarks/results/control.csv``
    were produced with."""

    horizon: int = 10
    """Steps planned ahead."""
    population: int = 128
    """Candidate action sequences per iteration."""
    iterations: int = 3
    """Refinements per planning call."""
    elites: int = 16
    """CEM: candidates the distribution is refitted to."""
    temperature: float = 0.5
    """MPPI: softmax temperature on returns (lower: greedier)."""
    init_std: float = 0.5
    """Initial std of the sampling distribution, as a fraction of the action half-range."""
    momentum: float = 0.1
    """Weight of the previous distribution when refitting (0: none)."""
    warm_start: bool = True
    """Start each call from the previous plan shifted by one step."""
    particles: int = 1
    """Latent samples per candidate (model_objective averages the returns)."""

    def check(self) -> None:
        """``TypeError`` or ``ValueError`` naming the first setting of the wrong kind or out
        of its range."""
        check_kinds(self)
        check_ranges(
            self,
            at_least_1=("horizon", "iterations", "elites", "particles"),
            positive=("temperature", "init_std"),
            below_1=("momentum",),
        )
        if not 2 <= self.population:
            raise ValueError(f"--population must be >= 2, got {self.population}")


@dataclass
class PlanConfig(PlannerConfig):
    """Settings of ``worldmodel plan``: model-predictive control on the real env (the
    planner's settings, then the real episodes')."""

    run: Annotated[Path, tyro.conf.Positional] = Path("runs/latest")
    """Run directory of the world model."""
    planner: str = "cem"
    """cem or mppi."""
    episodes: int = 5
    """Real episodes."""
    context: int = 5
    """Recent real observations re-encoded before every action."""
    timing: str = "fixed"
    """Real control intervals (the planner assumes the env's default dt)."""
    max_episode_steps: int | None = None
    """Time limit of the real episodes (default: the env's)."""
    seed: int = 0
    """Seed of the real resets and the planner."""
    value: Path | None = None
    """A SAC, TD3 or CrossQ agent zip (e.g. ``worldmodel dyna``'s ``out/agent.zip``) whose
    critic values each candidate's last predicted state, added to its return times
    ``value_discount ** horizon`` (TD-MPC's terminal value; None: returns over the horizon
    only)."""
    value_discount: float = 0.99
    """Discount of the terminal value (the agent's own gamma)."""
    policy_prior: bool = False
    """With ``value`` and the model: start every plan's search from the value agent's actor
    (its mean action) rolled through the model from the current state, instead of the shifted
    previous plan (TD-MPC plans around its policy too); that sequence is always scored."""
    dynamics: Literal["model", "simulator"] = "model"
    """What the planner predicts with: the world model, or the real simulator from the real
    env's exact state (a perfect model: the ceiling of the planner at these settings; the
    model then only names the env)."""

    def check(self) -> None:
        """:meth:`PlannerConfig.check`, and the real episodes' settings."""
        super().check()
        check_ranges(self, at_least_1=("episodes", "context", "max_episode_steps"))
        if not 0.0 < self.value_discount <= 1.0:
            raise ValueError(f"--value-discount must be in (0, 1], got {self.value_discount}")
        if self.dynamics not in ("model", "simulator"):
            raise ValueError(f"unknown dynamics {self.dynamics!r}; expected 'model' or 'simulator'")
        if self.policy_prior and (self.value is None or self.dynamics != "model"):
            raise ValueError("--policy-prior needs --value (the agent) and dynamics 'model'")


@dataclass
class DynaConfig:
    """Settings of ``worldmodel dyna``: SAC trained on real and imagined transitions \
(MBPO-style).

    The defaults are ``benchmarks/control.py``'s ``sac+latent-ode+states``: the Latent ODE
    refitted every 1,000 real steps for 500 batches of 160 windows at 3e-3 on open-loop
    prediction, MBPO's branch schedule (1 step, growing from 20k real steps to 15 at 100k),
    branches from real states drawn uniformly, 5 SAC updates per real step, a tenth of each
    batch real (``docs/benchmarks/control.md``)."""

    env: str = "Hopper-v5"
    """Gymnasium MuJoCo env id (one of those with a task in ``envs.tasks``)."""
    steps: int = 50_000
    """Real env steps in total (the budget every method is compared at)."""
    out: Path = Path("runs/dyna")
    """Directory for the agent, the model refits and the learning curve."""
    use_model: bool = True
    """False: plain model-free SAC with the same settings (the baseline)."""
    model: str = "latent-ode"
    """World model name."""
    timing: str = "fixed"
    """Real control intervals."""
    self_timed: tuple[int, int] | None = None
    """The agent chooses its own control intervals: its action gains a component that holds
    the rest for ``low`` to ``high`` physics substeps (:class:`envs.SelfTimed`: episodes of
    the fixed-step env's span in seconds, the reward integrated over time), in the real env
    and in imagination alike. None: the intervals come from ``timing``. Needs ``timing``
    ``fixed``."""
    decision_cost: float = 0.0
    """With ``self_timed``: subtracted from the reward of every decision (a price on control
    frequency)."""
    timed_discount: bool = False
    """With ``self_timed``: discount each transition by ``gamma ** (dt / dt0)`` (a semi-MDP;
    :class:`agents.replay.TimedReplayBuffer`), so that ``gamma`` is per fixed step of time
    (``dt0``, the env's own step) rather than per decision. Needs stable-baselines3 >= 2.7."""
    init_steps: int = 2_000
    """Random real steps before SAC learns and the model is first fitted."""
    refit_every: int = 1_000
    """Real steps between model refits (each followed by new imagined rollouts)."""
    refit_epochs: int = 10
    """Epochs per refit (warm-started from the previous fit)."""
    refit_steps_per_epoch: int = 50
    """Batches per refit epoch."""
    refit_batch: int = 160
    """Windows of ``window`` observations per refit batch (``worldmodel train``'s; the control
    runs before ``sac+latent-ode+batch160`` drew 32)."""
    refit_lr: float = 3e-3
    """Peak learning rate of each refit (cosine over the refit's batches)."""
    refit_mode: Literal["interp", "extrap", "both"] = "extrap"
    """Training task of the refits (``TrainConfig.mode``; ``extrap``, open-loop prediction
    from a context, is what imagination asks of the model)."""
    refit_window_starts: Literal["whole", "any"] = "whole"
    """Where the refits' training windows start (``TrainConfig.window_starts``): with
    ``refit_mode`` ``extrap``, ``any`` weighs an episode's last points, its fall, as much as
    the rest."""
    window: int = 10
    """Training window (observations)."""
    imagine_every: int = 250
    """Real steps between batches of imagined rollouts (with the current policy and model)."""
    rollouts: int = 5_000
    """Imagined branches per batch, each from a random real state."""
    branch_starts: Literal["states", "episodes"] = "states"
    """How a branch's real start state is drawn: ``states``, uniformly over every state with
    a future (MBPO's uniform draw over real transitions); ``episodes``, an episode first,
    then a state in it (the rule of the control runs made from 2026-11-27 to 2026-11-28, which
    gives the short episodes of the first random steps most of the branches)."""
    rollout_length: int = 1
    """Imagined steps per branch (at the start of ``rollout_ramp`` when
    ``rollout_length_max`` is set)."""
    rollout_length_max: int | None = 15
    """MBPO's schedule: the branch length grows linearly from ``rollout_length`` to this
    over ``rollout_ramp`` (None: ``rollout_length`` throughout)."""
    rollout_ramp: tuple[int, int] = (20_000, 100_000)
    """Real steps at which the branch length starts and stops growing (MBPO's Hopper: 20 to
    100 epochs of 1,000 steps)."""
    max_spread: float | None = None
    """End a branch at a step whose ensemble members disagree by more than this (the std over
    members of the predicted next observation, normalised units, mean over dimensions;
    ``MLPEnsemble.member_spread``), dropping that step (None: never; a model without members
    refuses it)."""
    refit_bounds: Literal["own", "first"] = "own"
    """The range each refit clamps imagined observations to: ``own``, its own data's; ``first``,
    the first fit's normalised bounds carried by every warm start (a fault of the control runs
    made from 2026-11-27 to 2026-11-28, kept only to reproduce them)."""
    imagined_capacity: int = 60_000
    """Imagined transitions kept (FIFO); older ones fall out as new batches arrive. The ring
    grows to hold one batch of branches (``rollouts`` x the branch length) where a longer
    branch length would not fit (at the defaults: branches of 13 from 88,572 real steps, so
    the first batch after, at 88,750)."""
    real_ratio: float = 0.1
    """Fraction of each SAC batch drawn from real steps (the rest from imagined ones)."""
    context: int = 5
    """Real observations encoded before each branch."""
    gradient_steps: int = 5
    """SAC updates per real step (stable-baselines3's default is 1; model-free SAC at 5 is the
    baseline imagination must beat at equal updates)."""
    batch_size: int = 256
    """Transitions per SAC update (stable-baselines3's default), ``real_ratio`` of them real:
    at 512 and ``real_ratio`` 0.5 each update sees model-free SAC's 256 real transitions
    and as many imagined ones on top."""
    target_entropy: float | None = None
    """SAC's entropy target (None: stable-baselines3's ``-dim(action)``; MBPO's Hopper: -1)."""
    gamma: float = 0.99
    """SAC's discount per real step (stable-baselines3's default; per decision when
    self-timed, unless ``timed_discount``)."""
    agent: Literal["sac", "crossq"] = "sac"
    """The off-policy learner: stable-baselines3's SAC, or sb3-contrib's CrossQ (SAC with
    batch-renormalised critics and no target networks, at its own defaults for the rest:
    1024-wide critics (the paper's are 2048), learning rate 1e-3, actor updated every third
    step; Bhatt et al., ICLR 2024). Both take the same buffer, ``gradient_steps``,
    ``batch_size``, ``target_entropy``, ``gamma`` and ``critic_units``."""
    critic_units: int | None = None
    """Width of both hidden layers of each critic (the actor keeps its 256 x 256). None: the
    learner's default (SAC 256, CrossQ 1024). A CrossQ step on the CPU is bound by its
    critics' matrix products, so its cost falls about with the square of this width."""
    eval_every: int = 2_500
    """Real steps between evaluations on the real env."""
    eval_episodes: int = 3
    """Real episodes per evaluation (deterministic policy)."""
    seed: int = 0
    """Seed of SAC, the envs and the model."""
    keep_agents: bool = False
    """Also keep the agent of every evaluation as ``agents/step_NNNNNNN.zip`` under ``out``
    (policies of several qualities, e.g. to collect data with; see
    :func:`agents.policies.export_policy`)."""

    def branch_length(self, real_steps: int) -> int:
        """Imagined steps per branch after ``real_steps`` real steps (MBPO's linear schedule
        when ``rollout_length_max`` is set)."""
        if self.rollout_length_max is None:
            return self.rollout_length
        a, b = self.rollout_ramp
        frac = min(max((real_steps - a) / (b - a), 0.0), 1.0)
        span = self.rollout_length_max - self.rollout_length
        return int(self.rollout_length + frac * span)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        if self.use_model and self.model not in MODEL_NAMES:
            raise ValueError(
                f"dyna: unknown model {self.model!r}; expected one of {sorted(MODEL_NAMES)}"
            )
        for name in (
            "steps",
            "refit_every",
            "refit_epochs",
            "refit_steps_per_epoch",
            "refit_batch",
            "imagine_every",
            "rollouts",
            "rollout_length",
            "imagined_capacity",
            "context",
            "gradient_steps",
            "batch_size",
            "eval_every",
            "eval_episodes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"dyna: {name} must be >= 1, got {getattr(self, name)}")
        if self.init_steps < 0:
            raise ValueError(f"dyna: init_steps must be >= 0, got {self.init_steps}")
        if self.self_timed is not None:
            low, high = self.self_timed
            if not all(isinstance(v, int) for v in self.self_timed) or not 1 <= low <= high:
                raise ValueError(
                    f"dyna: self_timed must be (low, high) substeps with 1 <= low <= high, "
                    f"got {self.self_timed}"
                )
            if self.timing != "fixed":
                raise ValueError(
                    f"dyna: a self-timed agent picks its own intervals; timing must be 'fixed', "
                    f"got {self.timing!r}"
                )
            if not math.isfinite(self.decision_cost):
                raise ValueError(f"dyna: decision_cost must be finite, got {self.decision_cost}")
        elif self.decision_cost or self.timed_discount:
            names = [n for n in ("decision_cost", "timed_discount") if getattr(self, n)]
            verb = "are" if len(names) > 1 else "is"
            raise ValueError(f"dyna: {' and '.join(names)} {verb} used only with self_timed")
        if self.critic_units is not None and self.critic_units < 1:
            raise ValueError(f"dyna: critic_units must be >= 1, got {self.critic_units}")
        if self.agent not in ("sac", "crossq"):
            raise ValueError(f"dyna: agent must be 'sac' or 'crossq', got {self.agent!r}")
        if self.refit_bounds not in ("own", "first"):
            raise ValueError(
                f"dyna: refit_bounds must be 'own' or 'first', got {self.refit_bounds!r}"
            )
        if self.refit_window_starts not in ("whole", "any"):
            raise ValueError(
                "dyna: refit_window_starts must be 'whole' or 'any', "
                f"got {self.refit_window_starts!r}"
            )
        if self.branch_starts not in ("states", "episodes"):
            raise ValueError(
                f"dyna: branch_starts must be 'states' or 'episodes', got {self.branch_starts!r}"
            )
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise ValueError(f"dyna: target_entropy must be finite, got {self.target_entropy}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"dyna: gamma must be in (0, 1], got {self.gamma}")
        if not 0.0 <= self.real_ratio <= 1.0:
            raise ValueError(f"dyna: real_ratio must be in [0, 1], got {self.real_ratio}")
        if self.rollout_length_max is not None and self.rollout_length_max < self.rollout_length:
            raise ValueError(
                f"dyna: rollout_length_max ({self.rollout_length_max}) must be >= "
                f"rollout_length ({self.rollout_length})"
            )
        if not 0 <= self.rollout_ramp[0] < self.rollout_ramp[1]:
            raise ValueError(
                f"dyna: rollout_ramp must be (start, end) real steps with 0 <= start < end, "
                f"got {self.rollout_ramp}"
            )
        if self.max_spread is not None and not self.max_spread > 0:
            raise ValueError(f"dyna: max_spread must be > 0, got {self.max_spread}")
        if self.max_spread is not None and self.model != "mlp-ensemble":
            raise ValueError(
                f"dyna: max_spread needs a model with members (mlp-ensemble), not {self.model!r}"
            )
        if not self.refit_lr > 0:
            raise ValueError(f"dyna: refit_lr must be > 0, got {self.refit_lr}")
        if self.window < 3:
            raise ValueError(f"dyna: window must be >= 3 observations, got {self.window}")
