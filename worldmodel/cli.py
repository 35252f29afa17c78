"""The ``worldmodel`` command: one tyro CLI whose subcommands are the jobs.

``worldmodel --help`` lists them with a line each; ``worldmodel COMMAND --help`` gives a
command's flags, which come from its config dataclass (the library and the CLI share one
definition); ``worldmodel --version`` prints the version. Flags mean the same everywhere: a
command that writes takes ``--out``, one that makes an env ``--env``, a random one ``--seed``.
Expected failures (bad input, bad files) print one line on stderr and exit 2; a malformed
command line gets tyro's message and exits 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, TypeVar

import tyro
from tyro.extras import SubcommandApp

from agents.config import DynaConfig, PlanConfig
from worldmodel import __version__
from worldmodel.collect import CollectConfig, collect_to_file
from worldmodel.config import DemoConfig, EvaluateConfig, PaperConfig, TrainConfig
from worldmodel.errors import TrainingError

T = TypeVar("T")
# a config dataclass whose fields are the command's flags (``--env``, not ``--args.env``)
Flags = Annotated[T, tyro.conf.arg(name="")]


@dataclass
class CollectArgs(CollectConfig):
    """Collect irregularly timed rollouts into a dataset file."""

    out: Path = Path("data/hopper.npz")
    """Dataset file to write (atomically), or with ``--shard-size`` a directory of shards."""
    shard_size: int = 0
    """Episodes per shard; > 0 collects into the directory ``--out`` this process's shards
    (rank and world size from ``RANK``/``WORLD_SIZE``, as torchrun sets them), keeping the
    shards already there: rerun to complete a killed run, or with more ``--episodes`` to grow it."""


@dataclass
class TrainArgs(TrainConfig):
    """Train a world model on a dataset file into a run directory."""

    dataset: Annotated[Path, tyro.conf.Positional] = Path("data/hopper.npz")
    """Dataset file or shard directory (from ``worldmodel collect``)."""
    out: Path = Path("runs/latest")
    """Run directory (config, checkpoints, metrics)."""
    resume: bool = False
    """Continue the run in ``out`` from its last checkpoint: its saved settings with these
    epochs (and progress, tensorboard, device, loader workers, step log); any other flag set
    to a value other than the saved one is refused by name."""


@dataclass
class EvaluateArgs(EvaluateConfig):
    """Hold trained runs against the real simulator and write a report."""

    runs: Annotated[tuple[Path, ...], tyro.conf.Positional] = ()
    """Run directories (same env)."""
    out: Path = Path("reports/latest")
    """Report directory."""


def _only(config_type: type[T], args: object) -> T:
    """The ``config_type`` part of a command's arguments (the command's own flags dropped)."""
    return config_type(**{f.name: getattr(args, f.name) for f in fields(config_type)})


APP = SubcommandApp()


@APP.command(help="Collect irregularly timed rollouts into a dataset file.")
def collect(args: Flags[CollectArgs]) -> None:
    from worldmodel.summary import describe

    if args.shard_size:
        _collect_shards(args)
        return
    dataset = collect_to_file(args, args.out)
    print(describe(dataset, title=str(args.out), full=False))
    print(f"wrote {args.out}")


def _collect_shards(args: CollectArgs) -> None:
    from worldmodel.collect_shards import collect_shards, rank_and_world
    from worldmodel.data import DatasetError, load_dataset
    from worldmodel.summary import describe

    written = collect_shards(_only(CollectConfig, args), args.out, args.shard_size)
    rank, world = rank_and_world()
    print(f"rank {rank} of {world}: wrote {len(written)} shards into {args.out}")
    try:
        dataset = load_dataset(args.out)
    except DatasetError as err:  # other ranks still at work
        print(f"not complete yet: {err}")
        return
    print(describe(dataset, title=str(args.out), full=False))


DATASET = SubcommandApp()


@DATASET.command(name="info")
def dataset_info(path: Annotated[Path, tyro.conf.Positional]) -> None:
    """Episodes, steps, dt histogram and per-dimension statistics of a dataset file or
    shard directory."""
    from worldmodel.data import load_dataset
    from worldmodel.summary import describe

    print(describe(load_dataset(path), title=str(path)))


@DATASET.command(name="merge")
def dataset_merge(
    inputs: Annotated[tuple[Path, ...], tyro.conf.Positional], out: Path, shard_size: int = 0
) -> None:
    """Merge dataset files or shard directories of the same env into one file, or with
    ``--shard-size N`` into a new directory of shards of N episodes (one shard in memory)."""
    from worldmodel.data import Dataset, load_dataset
    from worldmodel.shards import write_shards

    merged = Dataset.merge([load_dataset(p) for p in inputs])
    if shard_size:
        write_shards(merged, out, shard_size)
    else:
        merged.save(out)
    print(f"wrote {out}: {len(merged)} episodes, {merged.num_steps} steps")


APP.command(DATASET, name="dataset", help="Inspect or merge dataset files (info, merge).")


@APP.command(help="Train a world model on a dataset file into a run directory.")
def train(args: Flags[TrainArgs]) -> None:
    from worldmodel.data import load_dataset
    from worldmodel.train import Trainer

    config = TrainConfig.from_dict(_only(TrainConfig, args).to_dict())
    if not args.resume:  # a resumed run trains with its saved settings
        config.check()
        config.net.check_for(config.model)
    trainer = Trainer(
        config, load_dataset(args.dataset), args.out, resume=args.resume, dataset_path=args.dataset
    )
    last = trainer.fit()
    s = trainer.state
    scores = [f"{k} {v:.5g}" for k, v in last.items() if k.startswith("val/") and "mse" in k]
    if not scores:  # a resume with no epoch left
        print(f"{args.out}: all {trainer.config.epochs} epochs were trained already; nothing to do")
        return
    print(
        f"{trainer.config.model}: best val/score {s['best']:.5g} at epoch {s['best_epoch']} "
        f"(last epoch {s['epoch']}: {', '.join(scores)})"
    )
    print(f"wrote {args.out}/model.safetensors")


@APP.command(help="Hold trained runs against the real simulator and write a report.")
def evaluate(args: Flags[EvaluateArgs]) -> None:
    from worldmodel.report import evaluate_runs

    print(f"wrote {evaluate_runs(args.runs, args.out, _only(EvaluateConfig, args))}")


@APP.command(help="The whole chain at small scale: collect, train two models, evaluate.")
def demo(args: Flags[DemoConfig]) -> None:
    from worldmodel.demo import run_demo

    run_demo(args)


@APP.command(help="Model-predictive control (CEM or MPPI) with a trained model on the real env.")
def plan(args: Flags[PlanConfig]) -> None:
    from agents.mpc import run_mpc
    from worldmodel.train import load

    res = run_mpc(load(args.run), args)
    print(
        f"{args.planner} MPC on the real env, {args.episodes} episodes: "
        f"mean return {res['mean_return']:.1f} (std {res['std_return']:.1f}), "
        f"{res['ms_per_action']:.1f} ms per action (median), {res['steps']} steps"
    )


@APP.command(help="SAC on real and imagined transitions (MBPO-style), or plain SAC.")
def dyna(args: Flags[DynaConfig]) -> None:
    from agents.dyna import dyna_summary, run_dyna

    print(dyna_summary(run_dyna(args), args))


BENCHMARK = SubcommandApp()


@BENCHMARK.command(name="paper-hopper")
def paper_hopper(args: Flags[PaperConfig]) -> None:
    """The Latent ODE paper's Hopper table: one cell, or a model's row with --all."""
    from worldmodel.paper import run_benchmark

    run_benchmark(args)


APP.command(BENCHMARK, name="benchmark", help="Published benchmarks (paper-hopper).")

DESCRIPTION = (
    "Continuous-time world models for MuJoCo locomotion with irregular timing. "
    "`worldmodel COMMAND --help` gives a command's flags; `worldmodel --version` the version."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``worldmodel`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # tyro has no version action; the one flag outside the parser
        print(f"worldmodel {__version__}")
        return 0
    try:
        APP.cli(prog="worldmodel", description=DESCRIPTION, args=args or ["--help"])
    except (ValueError, OSError, TrainingError) as err:  # DatasetError, CheckpointError, ...
        print(f"worldmodel: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("worldmodel: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
