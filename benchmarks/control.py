"""Control at equal real-env step budgets: model-free SAC vs SAC trained in imagination vs MPC.

    python benchmarks/control.py [--budgets 10000,25000,50000] [--seeds 0,1,2] [--utd 5]
        [--methods sac,sac+imagination,mpc] [--env Hopper-v5] [--timing fixed] [--threads N]
        [--out runs/control]

Methods, each evaluated on the real env (``--env``, Hopper-v5 by default) at every budget (3
deterministic episodes):

- ``sac``: model-free SAC at stable-baselines3's defaults (1 gradient step per real step);
- ``sac+imagination``: ``worldmodel dyna`` (MBPO-style: mlp-ensemble refits, short imagined
  branches in a ring beside the real buffer, ``--utd`` gradient steps per real step);
- ``sac-utd``: ablation, model-free SAC with the same ``--utd`` (is the gain the model's?);
- ``sac-gamma995``: ``sac`` discounting 0.995 per step instead of 0.99, the discount per second
  a self-timed agent (``--self-timed``) has at ~60 decisions a second (is its gain the
  horizon's?); ``sac-gamma98``: ``sac`` at 0.98, with ``--self-timed`` the fixed-step agent's
  discount per second at ~60 decisions a second; ``sac-timed-discount`` (``--self-timed``
  only): ``sac`` discounting each transition by ``0.99 ** (dt / dt0)``, the fixed-step agent's
  discount per second whatever the hold (a semi-MDP; ``DynaConfig.timed_discount``);
- ``sac+latent-ode`` and ``sac+ensemble``: ``worldmodel dyna`` with issue #16's refits and
  MBPO's branch-length schedule (``SCHEDULE_16``), the Latent ODE or the mlp-ensemble as the
  model, all else equal; each run's ``out/model.csv`` logs the model's error on the real
  episodes it had not seen at every refit;
- ``sac+latent-ode+wide``: ``sac+latent-ode`` with MBPO's many short branches (``WIDE``: 100
  imagined branches per real step instead of 20, in a ring of 400,000 transitions, which
  keeps each ~1.33x as long);
- ``sac+latent-ode+batch160``: ``sac+latent-ode`` whose refits draw ``worldmodel train``'s 160
  windows a batch instead of the dyna default's 32 (``BATCH160``: the batch at which the
  Latent ODE leads the world-model benchmark at one step), all else equal;
- ``sac+latent-ode+real50``: ``sac+latent-ode+batch160`` with half of each SAC batch from real
  steps instead of a tenth (``REAL50``: is the imagined share what costs SAC its return?);
- ``sac+latent-ode+states``: ``sac+latent-ode+batch160`` with branches from real states drawn
  uniformly (MBPO's draw) instead of an episode first, and refits clamping imagination to
  their own data's range instead of the first fit's (``STATE_STARTS``: ``DynaConfig``'s
  defaults; the other learners keep the rules their committed runs had, ``COMMITTED_RULES``);
- ``sac+latent-ode+on-top``: ``sac+latent-ode+states`` whose SAC updates take 512
  transitions, half real (``ON_TOP``): model-free SAC's 256 real ones per update, with as many
  imagined ones added rather than put in their place;
- ``sac+latent-ode+ends``: ``sac+latent-ode+states`` whose refits also train on windows cut
  short by their episode's end (``ENDS``: ``TrainConfig.window_starts`` ``any``), so that the
  last steps of an episode, its fall, weigh as much in the refits' loss as the rest;
- ``sac+ensemble+states``: ``sac+latent-ode+states`` with the mlp-ensemble as the model, all
  else equal (issue #16's bar: at least as well as imagination with the ensemble);
- ``crossq``: sb3-contrib's CrossQ in SAC's place (batch-renormalised 1024-wide critics, the
  paper's are 2048; no target networks; ``DynaConfig.agent``) at 1 gradient step per real
  step, model-free: the learner behind issue #16's Walker2d-v5 anchor;
  ``crossq+latent-ode+states``: it in ``sac+latent-ode+states``'s loop (``--utd`` gradient
  steps; its ratio is taken against ``crossq``); ``crossq-qf256`` and
  ``crossq-qf256+latent-ode+states``: the same two with 256-wide critics (``QF256``, SAC's
  width: a CrossQ step costs ~1/6 of the default's on the CPU, benchmarks/sac_step.py);
- ``mpc``: CEM MPC with the model the seed's ``sac+imagination`` run fitted last (its own
  episodes are extra real steps, reported); ``mpc+latent-ode``: the same with the last model of
  the seed's ``sac+latent-ode`` run; ``mpc+latent-ode+value``: that, plus the run's final SAC
  critic as the value of each plan's last state (TD-MPC's terminal value);
  ``mpc+latent-ode+batch160``: CEM MPC with the last model of ``sac+latent-ode+batch160``;
  ``mpc+simulator``: the same CEM with the real simulator, restored to the real env's exact
  state before every plan, as its model (a perfect model: what the planner's settings allow).

Every finished (method, seed) run leaves a summary (learning curve, wall-clock, settings) in
``benchmarks/results/control_runs/`` and is not run again while its settings match, so seeds can
run as parallel processes or in later sessions (``--seeds 1 --methods sac``) and a final call
with all seeds and methods only aggregates; ``--report-only`` aggregates the finished runs and
skips (never starts) the others, so each method reports its own seed count. An interrupted run
resumes from its checkpoint in ``--out``. Prints mean ± std real return over seeds per budget
with wall-clock, appends to ``benchmarks/results/control.csv`` and plots the learning curves to
``benchmarks/results/control_curves.png``.

``--timing`` (e.g. ``uniform:3-5``, physics substeps per action) runs the real env at irregular
control intervals, the agent observing each (issue #16's irregular control in the loop), and
the learners' models imagine at intervals drawn the same way; such runs, summaries, rows and
plots carry the spec in their names (``sac-utd-utd5-uniform_3-5-seed0.json``), so they sit
beside the fixed-step ones. The MPC methods plan at the fixed step only. ``--env`` (e.g.
``Walker2d-v5``) names its runs, summaries, rows and plot the same way
(``sac-utd-utd5-Walker2d-v5-seed0.json``); Hopper-v5's keep the committed names.
``--self-timed LOW-HIGH`` (e.g. ``1-15``) lets every learner choose its own control interval
(:class:`envs.SelfTimed`, issue #16's item 5; returns integrated over the fixed-step episode's
seconds, so they compare with the fixed-step runs'), its summaries also holding the mean
decisions per simulated second over each evaluation's episodes
(``sac-utd1-self_1-15-seed0.json``).
"""

from __future__ import annotations

import argparse
import json
import math
from functools import reduce
from pathlib import Path

import numpy as np
from _results import append_rows

RESULTS = Path(__file__).parent / "results" / "control.csv"
SUMMARIES = RESULTS.parent / "control_runs"
LEARNERS = (
    "sac",
    "sac-gamma995",
    "sac-gamma98",
    "sac-timed-discount",
    "sac+imagination",
    "sac-utd",
    "sac+latent-ode",
    "sac+ensemble",
    "sac+latent-ode+wide",
    "sac+latent-ode+batch160",
    "sac+latent-ode+real50",
    "sac+latent-ode+states",
    "sac+latent-ode+on-top",
    "sac+ensemble+states",
    "sac+latent-ode+ends",
    "crossq",
    "crossq+latent-ode+states",
    "crossq-qf256",
    "crossq-qf256+latent-ode+states",
)
# learners that differ in the model only: (latent-ode, mlp-ensemble)
MODEL_PAIRS = (("sac+latent-ode", "sac+ensemble"), ("sac+latent-ode+states", "sac+ensemble+states"))
# issue #16's refits and branches, shared by sac+latent-ode and sac+ensemble (so that the two
# differ only in the model): refits of 500 batches at the world-model benchmark's learning
# rate and task, and MBPO's Hopper branch-length schedule (1 step, growing from 20k real steps
# to 15 at 100k; MBPO's Walker2d keeps 1, but --env Walker2d-v5 runs this same schedule, so that
# the envs differ in the env only). sac+imagination keeps the settings of the committed runs.
# DynaConfig's defaults before they became sac+latent-ode+states's (2026-11-28): every
# learner starts from these, so that its committed summaries stay its own
COMMITTED_DEFAULTS = {
    "refit_epochs": 2,
    "refit_lr": 1e-3,
    "refit_mode": "both",
    "refit_batch": 32,
    "rollout_length": 3,
    "rollout_length_max": None,
}
# what the committed runs of these learners did (DynaConfig's defaults are now "states" and
# "own"; see STATE_STARTS)
COMMITTED_RULES = {"branch_starts": "episodes", "refit_bounds": "first"}
SCHEDULE_16 = COMMITTED_RULES | {
    "refit_epochs": 10,
    "refit_lr": 3e-3,
    "refit_mode": "extrap",
    "rollout_length": 1,
    "rollout_length_max": 15,
}
# MBPO's many short branches: 100 per real step (MBPO's Hopper: 400) instead of 20, in a ring
# that holds the longest branches of a 100k run (5 x 60k would not); so each imagined
# transition is also kept ~1.33x as many real steps as in sac+latent-ode's 60k ring
WIDE = {"rollouts": 25_000, "imagined_capacity": 400_000}
# refits at worldmodel train's batch (TrainConfig.batch_size): 5x the windows per refit batch
BATCH160 = {"refit_batch": 160}
# branches from real states drawn uniformly (MBPO's draw, DynaConfig's default since
# 2026-11-28) instead of an episode first, and each refit clamping to its own data's range
# instead of the first fit's (both faults of the committed runs; docs/benchmarks/control.md)
STATE_STARTS = {"branch_starts": "states", "refit_bounds": "own"}
# every SAC update sees model-free SAC's 256 real transitions and 256 imagined ones on top (the
# imagined data so far replaced real samples: 26 of 256 per update at real_ratio 0.1)
ON_TOP = {"batch_size": 512, "real_ratio": 0.5}
# refit windows also from within a window of an episode's end, cut short there: with windows
# only where a whole one fits, an episode's last point (a fall) is scored 1/5 as often as a
# mid-episode one (window 10, context 5)
ENDS = {"refit_window_starts": "any"}
# half of each SAC batch from real steps (DynaConfig's default and MBPO's Hopper: a tenth and
# 5 %): with the batch160 refits' model in the loop, does a smaller imagined share pay?
REAL50 = {"real_ratio": 0.5}
MODELS = {
    "sac+imagination": "mlp-ensemble",
    "sac+latent-ode": "latent-ode",
    "sac+ensemble": "mlp-ensemble",
    "sac+latent-ode+wide": "latent-ode",
    "sac+latent-ode+batch160": "latent-ode",
    "sac+latent-ode+real50": "latent-ode",
    "sac+latent-ode+states": "latent-ode",
    "sac+latent-ode+on-top": "latent-ode",
    "sac+ensemble+states": "mlp-ensemble",
    "sac+latent-ode+ends": "latent-ode",
    "crossq+latent-ode+states": "latent-ode",
    "crossq-qf256+latent-ode+states": "latent-ode",
}
# the learners at stable-baselines3's 1 gradient step per real step (the rest take --utd)
UTD1 = {"sac", "sac-gamma995", "sac-gamma98", "sac-timed-discount", "crossq", "crossq-qf256"}
# sb3-contrib's CrossQ in SAC's place (batch-renormalised 1024-wide critics, no target
# networks; the published learner behind the Walker2d-v5 anchor of issue #16, 3,914 at 100k
# real steps at 1 gradient step per real step); a gradient step costs ~10x SAC's here
# (benchmarks/results/sac_step.csv, 2026-11-29)
CROSSQ = {"agent": "crossq"}
# its critics at SAC's 256 x 256: sb3-contrib notes CrossQ already works at that width (wider
# critics were better in the paper); a step is bound by the critics' matrix products
QF256 = CROSSQ | {"critic_units": 256}
# the model-free learner each model learner's ratio is taken against (the rest: sac-utd)
MODEL_FREE_BASE = {
    "crossq+latent-ode+states": "crossq",
    "crossq-qf256+latent-ode+states": "crossq-qf256",
}
# learners that only a self-timed run has (--self-timed)
SELF_TIMED_ONLY = {"sac-timed-discount"}
# learner -> its DynaConfig settings beyond the model (the rest at COMMITTED_DEFAULTS, then at
# DynaConfig's defaults)
SETTINGS = {
    # the self-timed agent's control: its discount per second at the fixed step (0.99 per
    # decision at the ~60 decisions a second it makes is ~0.995 per 8 ms step)
    "sac-gamma995": {"gamma": 0.995},
    # and the other way round, with --self-timed: the fixed-step agent's discount per second
    # (0.99 per 8 ms) at ~60 decisions a second is ~0.98 per decision
    "sac-gamma98": {"gamma": 0.98},
    # the principled form of both: 0.99 per 8 ms of the transition's own interval
    "sac-timed-discount": {"timed_discount": True},
    "sac+latent-ode": SCHEDULE_16,
    "sac+ensemble": SCHEDULE_16,
    "sac+latent-ode+wide": SCHEDULE_16 | WIDE,
    "sac+latent-ode+batch160": SCHEDULE_16 | BATCH160,
    "sac+latent-ode+real50": SCHEDULE_16 | BATCH160 | REAL50,
    "sac+latent-ode+states": SCHEDULE_16 | BATCH160 | STATE_STARTS,
    "sac+latent-ode+on-top": SCHEDULE_16 | BATCH160 | STATE_STARTS | ON_TOP,
    "sac+ensemble+states": SCHEDULE_16 | BATCH160 | STATE_STARTS,
    "sac+latent-ode+ends": SCHEDULE_16 | BATCH160 | STATE_STARTS | ENDS,
    "crossq": CROSSQ,
    "crossq+latent-ode+states": SCHEDULE_16 | BATCH160 | STATE_STARTS | CROSSQ,
    "crossq-qf256": QF256,
    "crossq-qf256+latent-ode+states": SCHEDULE_16 | BATCH160 | STATE_STARTS | QF256,
    # the nearest the code comes to its committed runs of 2026-11-26, which predate the clamp
    # and drew their starts from any state of an episode, terminal ones included
    "sac+imagination": COMMITTED_RULES,
}
# MPC method -> the learner whose last model refit it plans with (None: the real simulator, a
# perfect model), and whether the learner's final SAC critic values each plan's last state
# (TD-MPC's terminal value)
MPC_MODELS = {
    "mpc+simulator": (None, False),
    "mpc": ("sac+imagination", False),
    "mpc+latent-ode": ("sac+latent-ode", False),
    "mpc+latent-ode+value": ("sac+latent-ode", True),
    "mpc+latent-ode+batch160": ("sac+latent-ode+batch160", False),
}


def _settings(cfg) -> dict:
    """The run's settings that decide its result (not its budget, directory or eval cadence)."""
    from agents.dyna_checkpoint import RESUMABLE_CHANGES, config_dict

    return {k: v for k, v in config_dict(cfg).items() if k not in RESUMABLE_CHANGES}


def _same_settings(old: dict, now: dict) -> bool:
    """A summary's settings equal ``now``'s, a setting added since it counting at what the
    code that made it did (:func:`agents.dyna_checkpoint.comparable`; the committed runs
    predate some)."""
    from agents.dyna_checkpoint import comparable

    return comparable(old) == comparable(now) and old.keys() <= now.keys()


DEFAULT_ENV = "Hopper-v5"


def timing_tag(
    timing: str, env: str = DEFAULT_ENV, self_timed: tuple[int, int] | None = None
) -> str:
    """The suffix of a run's names on ``env`` under ``timing``: empty for Hopper-v5 at its fixed
    step (the names the committed runs have), else ``-`` and the env id when it is another
    env, then ``-`` and the spec as :class:`envs.timing.TimingSpec` writes it, ``:`` as ``_``
    (``uniform:3-5`` -> ``-uniform_3-5``; on Walker2d-v5 ``-Walker2d-v5-uniform_3-5``); a
    self-timed agent's (``self_timed=(1, 15)``) end in ``-self_1-15``."""
    from envs.timing import TimingSpec

    spec = str(TimingSpec.parse(timing))
    where = "" if env == DEFAULT_ENV else f"-{env}"
    own = "" if self_timed is None else f"-self_{self_timed[0]}-{self_timed[1]}"
    return where + ("" if spec == "fixed" else "-" + spec.replace(":", "_")) + own


def _learner(
    name: str,
    seed: int,
    budgets: list[int],
    utd: int,
    out: Path,
    run: bool = True,
    timing: str = "fixed",
    env: str = DEFAULT_ENV,
    self_timed: tuple[int, int] | None = None,
) -> dict | None:
    """Run (or reuse) one learner for one seed on ``env``, the real env under ``timing`` (and
    the model imagining at its intervals), or choosing its own intervals of ``self_timed``
    substeps; returns {"curve": {steps: return}, "wall_s"} (a self-timed run also
    "decisions_per_s": {steps: rate}), or None when ``run`` is False and no finished summary
    with these settings is here."""
    from agents.dyna import run_dyna
    from worldmodel.config import DynaConfig
    from worldmodel.io import atomic_write_text

    if name in SELF_TIMED_ONLY and self_timed is None:
        raise ValueError(f"{name} is a self-timed learner: it needs self_timed")
    tag = timing_tag(timing, env, self_timed)
    cfg = DynaConfig(
        env=env,
        steps=budgets[-1],
        use_model=name in MODELS,
        model=MODELS.get(name, "mlp-ensemble"),
        seed=seed,
        gradient_steps=1 if name in UTD1 else utd,
        eval_every=reduce(math.gcd, budgets),
        out=out / f"{name}{tag}-seed{seed}",
        timing=timing,
        self_timed=self_timed,
        **(COMMITTED_DEFAULTS | SETTINGS.get(name, {})),
    )
    summary = SUMMARIES / f"{name}-utd{cfg.gradient_steps}{tag}-seed{seed}.json"
    if summary.exists():
        old = json.loads(summary.read_text())
        if _same_settings(old.get("settings", {}), _settings(cfg)) and all(
            str(b) in old["curve"] for b in budgets
        ):
            return old
    if not run:
        return None
    res = run_dyna(cfg)
    result = {
        "curve": {str(s): r for s, r, _ in res["curve"]},
        "wall_s": res["wall_s"],
        "gradient_steps": cfg.gradient_steps,
        "imagined": res["imagined_transitions"],
        "settings": _settings(cfg),
    }
    if self_timed is not None:
        steps = [s for s, _, _ in res["curve"]]
        # an evaluation from before a resumed checkpoint kept its rate: null, never a bare NaN
        rates = [None if math.isnan(r) else r for r in res["decision_rates"]]
        result["decisions_per_s"] = dict(zip(map(str, steps), rates, strict=True))
    summary.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(summary, json.dumps(result, indent=1) + "\n")
    return result


def _mpc(
    seed: int, out: Path, run: bool = True, method: str = "mpc", env: str = DEFAULT_ENV
) -> dict | None:
    """CEM MPC with the last refit model of the seed's run of ``MPC_MODELS[method]`` on ``env``
    (``env`` names the summary and the learner's run; the real env it plans in is the model's
    own), or with the real simulator from the real env's exact state (``mpc+simulator``: the
    planner's ceiling, a perfect model); None when neither its model nor a summary is here (or,
    with ``run`` False, when no summary is)."""
    from agents.dyna import refit_runs
    from agents.mpc import run_mpc
    from worldmodel.config import PlanConfig
    from worldmodel.train import load

    tag = timing_tag("fixed", env)
    done = SUMMARIES / f"{method}{tag}-seed{seed}.json"
    old = json.loads(done.read_text()) if done.exists() else None
    learner, valued = MPC_MODELS[method]
    if learner is None:  # the planner's ceiling: the real simulator as its model
        if old is not None or not run:
            return old
        from envs import EnvSpec

        cfg = PlanConfig(planner="cem", episodes=3, seed=seed, dynamics="simulator")
        res = run_mpc(None, cfg, spec=EnvSpec(env))
        return _mpc_summary(done, res, "simulator")
    refits = refit_runs(out / f"{learner}{tag}-seed{seed}")
    if not run or not refits:  # its run was in another session or directory
        return old
    model_dir = refits[max(refits)]  # by number: refit_1000 after refit_999
    if old is not None and Path(old["model"]).resolve() == model_dir.resolve():
        return old  # the same model, however the summary spelled its path
    value = out / f"{learner}{tag}-seed{seed}" / "agent.zip" if valued else None
    cfg = PlanConfig(run=model_dir, planner="cem", episodes=3, seed=seed, value=value)
    return _mpc_summary(done, run_mpc(load(model_dir), cfg), str(model_dir))


def _mpc_summary(path: Path, res: dict, model: str) -> dict:
    """Write (atomically) and return the summary of an MPC run ``res`` that planned with
    ``model`` (a run directory, or ``"simulator"``)."""
    from worldmodel.io import atomic_write_text

    result = {
        "mean_return": res["mean_return"],
        "ms_per_action": res["ms_per_action"],
        "steps": res["steps"],
        "model": model,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="10000,25000,50000")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="sac,sac+imagination,mpc")
    ap.add_argument("--utd", type=int, default=5, help="gradient steps per real step (imagination)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--no-report", action="store_true", help="run only; no table, CSV or plot")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: aggregate the finished runs' summaries, skipping the rest",
    )
    ap.add_argument(
        "--timing",
        default="fixed",
        help="the real env's control intervals (worldmodel collect's --timing, e.g. uniform:3-5; "
        "the learners imagine at the same ones); runs and summaries are named after it",
    )
    ap.add_argument(
        "--self-timed",
        default=None,
        metavar="LOW-HIGH",
        help="the learners choose their own control intervals, LOW to HIGH physics substeps "
        "per decision (envs.SelfTimed: one more action component; needs --timing fixed); "
        "runs and summaries are named after it",
    )
    ap.add_argument(
        "--env",
        default=DEFAULT_ENV,
        help="the real env (one with a task in envs.tasks, e.g. Walker2d-v5); runs and "
        "summaries of an env other than Hopper-v5 are named after it",
    )
    ap.add_argument("--out", type=Path, default=Path("runs/control"))
    args = ap.parse_args()
    budgets = sorted(int(b) for b in args.budgets.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    unknown = set(methods) - {*LEARNERS, *MPC_MODELS}
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; expected {[*LEARNERS, *MPC_MODELS]}")
    from envs.tasks import check_env_id
    from envs.timing import TimingSpec

    args.timing = str(TimingSpec.parse(args.timing))  # a bad spec fails before any run starts
    try:  # so does an env without a task
        check_env_id(args.env)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    if args.self_timed is not None:
        try:
            low, high = (int(v) for v in args.self_timed.split("-"))
        except ValueError:
            raise SystemExit(
                f"--self-timed: expected LOW-HIGH substeps, got {args.self_timed!r}"
            ) from None
        if not 1 <= low <= high or args.timing != "fixed":
            raise SystemExit(
                f"--self-timed {args.self_timed}: need 1 <= LOW <= HIGH and --timing fixed"
            )
        args.self_timed = (low, high)
    if args.self_timed is None and set(methods) & SELF_TIMED_ONLY:
        raise SystemExit(
            f"{sorted(set(methods) & SELF_TIMED_ONLY)}: a self-timed learner; pass --self-timed"
        )
    if (args.timing != "fixed" or args.self_timed) and set(methods) & set(MPC_MODELS):
        raise SystemExit(
            "--timing, --self-timed: the MPC methods plan at the env's fixed step only; "
            f"pass --methods without {sorted(set(methods) & set(MPC_MODELS))}"
        )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    curves: dict[str, list[dict]] = {m: [] for m in LEARNERS if m in methods}
    wall: dict[str, list[float]] = {m: [] for m in methods}
    seeds_of: dict[str, list[int]] = {}  # the seeds of each learner's curves, in order
    rates: dict[str, list[dict]] = {}  # self-timed learners: decisions per second per budget
    mpc: dict[str, list[dict]] = {m: [] for m in MPC_MODELS if m in methods}
    for seed in seeds:
        for name in curves:
            res = _learner(
                name,
                seed,
                budgets,
                args.utd,
                args.out,
                not args.report_only,
                args.timing,
                args.env,
                args.self_timed,
            )
            if res is None:
                print(f"seed {seed} {name}: skipped, no finished run with these settings")
                continue
            curves[name].append({int(s): r for s, r in res["curve"].items()})
            seeds_of.setdefault(name, []).append(seed)
            wall[name].append(res["wall_s"])
            if "decisions_per_s" in res:
                rates.setdefault(name, []).append(res["decisions_per_s"])
            print(
                f"seed {seed} {name} ({res['wall_s']:.0f} s): "
                + ", ".join(f"{s}: {r:.1f}" for s, r in res["curve"].items())
            )
            if "decisions_per_s" in res:
                print(
                    "  decisions per simulated second: "
                    + ", ".join(f"{s}: {r:.1f}" for s, r in res["decisions_per_s"].items())
                )
        for name in mpc:
            res = _mpc(seed, args.out, run=not args.report_only, method=name, env=args.env)
            if res is None:
                print(f"seed {seed} {name}: skipped, no model under {args.out} and no summary")
                continue
            res["seed"] = seed
            mpc[name].append(res)
            wall[name].append(res["ms_per_action"] * res["steps"] / 1000)
            print(
                f"seed {seed} {name}: {res['mean_return']:.1f}, "
                f"{res['ms_per_action']:.0f} ms/action"
            )
    if args.no_report:
        return

    rows = []
    curves = {name: cs for name, cs in curves.items() if cs}
    where = "" if args.timing == "fixed" else f", control intervals {args.timing}"
    if args.self_timed is not None:
        where += f", self-timed {args.self_timed[0]}-{args.self_timed[1]} substeps"
    # MPC runs only at the fixed step: its tag too
    tag = timing_tag(args.timing, args.env, args.self_timed)
    print(f"\nmean real return (std over seeds), {args.env}{where}")
    print(
        f"  {'method':<24}"
        + "".join(f"{b:>16}" for b in budgets)
        + f"{'seeds':>7}{'wall s/run':>12}"
    )
    for name, cs in curves.items():
        vals = [[c[b] for c in cs] for b in budgets]
        label = (name if name in UTD1 else f"{name} (utd {args.utd})") + tag
        print(
            f"  {label:<24}"
            + "".join(f"{np.mean(v):>9.1f} ({np.std(v):>4.1f})" for v in vals)
            + f"{len(cs):>7}{np.mean(wall[name]):>12.0f}"
        )
        rows += [
            (
                label,
                b,
                f"{np.mean(v):.2f}",
                f"{np.std(v):.2f}",
                len(cs),
                f"{np.mean(wall[name]):.0f}",
            )
            for b, v in zip(budgets, vals)
        ]
    for name, rs in rates.items():  # what the self-timed return cost in decisions
        print(
            f"  {name}: decisions per simulated second (mean over seeds; the fixed step's "
            "1 / dt): "
            + ", ".join(
                f"{b}: {np.mean([r[str(b)] for r in rs if r[str(b)] is not None]):.1f}"
                for b in budgets
            )
        )
    top = budgets[-1]

    def ratio_line(name: str, base: str, bar: str) -> None:
        """``name``'s mean return at ``top`` over ``base``'s, on the seeds both have (so that
        a seed's luck is in both or neither)."""
        theirs = dict(zip(seeds_of.get(base, []), curves.get(base, [])))
        mine = dict(zip(seeds_of.get(name, []), curves.get(name, [])))
        both = [s for s in mine if s in theirs]
        if both:
            ratio = np.mean([mine[s][top] for s in both]) / np.mean([theirs[s][top] for s in both])
            print(f"  {name} / {base} at {top} real steps, seeds {both}: {ratio:.2f}x ({bar})")

    for name in MODELS:  # the bar of issue #16: the model's value beyond the update ratio
        ratio_line(name, MODEL_FREE_BASE.get(name, "sac-utd"), "bar: 1.3x over 3 seeds")
    for latent, ensemble in MODEL_PAIRS:  # ... and beyond the ensemble's in the same loop
        ratio_line(latent, ensemble, "bar: 1.0x over 3 seeds")
    for name, runs in mpc.items():
        if not runs:
            continue
        m = [r["mean_return"] for r in runs]
        extra = int(np.mean([r["steps"] for r in runs]))
        ms = np.mean([r["ms_per_action"] for r in runs])
        label = name.replace("mpc", "mpc (cem)") + tag
        source = (
            "the real simulator"
            if MPC_MODELS[name][0] is None
            else f"the model of {budgets[-1]} real steps"
        )
        print(
            f"  {label:<24}{np.mean(m):>9.1f} ({np.std(m):>4.1f}) with {source} "
            f"(+{extra} real steps of its own), {ms:.0f} ms/action, "
            f"seeds {[r['seed'] for r in runs]}"
        )
        rows.append(
            (
                name.replace("mpc", "mpc-cem") + tag,
                budgets[-1],
                f"{np.mean(m):.2f}",
                f"{np.std(m):.2f}",
                len(runs),
                f"{np.mean(wall[name]):.0f}",
            )
        )
    append_rows(
        RESULTS,
        ["method", "real_steps", "mean_return", "std_return", "seeds", "wall_s_per_run"],
        rows,
        skip_recorded=True,
    )
    _plot(curves, mpc, budgets, args.utd, args.timing, args.env, args.self_timed)


def _plot(
    curves: dict[str, list[dict]],
    mpc: dict[str, list[dict]],
    budgets: list[int],
    utd: int,
    timing: str = "fixed",
    env: str = DEFAULT_ENV,
    self_timed: tuple[int, int] | None = None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, cs in curves.items():
        steps = sorted(cs[0])
        vals = np.array([[c[s] for s in steps] for c in cs])
        label = (name if name in UTD1 else f"{name} (utd {utd})") + f", {len(cs)} seeds"
        ax.plot(steps, vals.mean(0), marker="o", label=label)
        ax.fill_between(steps, vals.min(0), vals.max(0), alpha=0.2)
    for (name, runs), color in zip(mpc.items(), ("k", "m", "c", "y", "r"), strict=False):
        if runs:
            m = np.mean([r["mean_return"] for r in runs])
            label = f"{name.replace('mpc', 'mpc (cem)')}, {len(runs)} seeds"
            ax.scatter([budgets[-1]], [m], marker="*", s=120, color=color, label=label)
    ax.set(
        xlabel="real env steps",
        ylabel="mean real return (min-max over seeds)",
        title=f"{env}, real-env evaluation"
        + ("" if timing == "fixed" else f", control intervals {timing}")
        + ("" if self_timed is None else f", self-timed {self_timed[0]}-{self_timed[1]} substeps"),
    )
    ax.legend()
    fig.tight_layout()
    # a report past the default budgets (the moonshot's 100k) gets its own plot beside the
    # comparison at 50k, which has methods that never ran that far
    reach = "" if budgets[-1] == 50_000 else f"-{budgets[-1] // 1000}k"
    path = RESULTS.parent / f"control_curves{timing_tag(timing, env, self_timed)}{reach}.png"
    fig.savefig(path, dpi=90)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
