"""The ``worldmodel`` command: ``collect``, ``train``, ``evaluate``, ``demo``, ``plan``, ``dyna``,
``dataset info|merge`` and ``benchmark paper-hopper``.

Flags come from the config dataclasses (``tyro``), so the library and the CLI share one
definition. Expected failures (bad input, bad files) print one line on stderr and exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated

import tyro

from worldmodel.collect import CollectConfig, collect_to_file
from worldmodel.config import (
    DemoConfig,
    DynaConfig,
    EvaluateConfig,
    PaperConfig,
    PlanConfig,
    TrainConfig,
)
from worldmodel.errors import TrainingError


@dataclass
class CollectArgs(CollectConfig):
    """Collect irregularly timed rollouts into a dataset file."""

    out: Path = Path("data/hopper.npz")
    """Dataset file to write (atomically)."""


def _collect(args: CollectArgs) -> None:
    from worldmodel.summary import describe

    dataset = collect_to_file(args, args.out)
    print(describe(dataset, title=str(args.out), full=False))
    print(f"wrote {args.out}")


def dataset_info(path: Annotated[Path, tyro.conf.Positional]) -> None:
    """Episodes, steps, dt histogram and per-dimension statistics of a dataset file."""
    from worldmodel.data import load_dataset
    from worldmodel.summary import describe

    print(describe(load_dataset(path), title=str(path)))


def dataset_merge(inputs: Annotated[tuple[Path, ...], tyro.conf.Positional], out: Path) -> None:
    """Merge dataset files of the same env into one."""
    from worldmodel.data import Dataset, load_dataset

    merged = Dataset.merge([load_dataset(p) for p in inputs])
    merged.save(out)
    print(f"wrote {out}: {len(merged)} episodes, {merged.num_steps} steps")


@dataclass
class TrainArgs(TrainConfig):
    """Train a world model on a dataset file into a run directory."""

    dataset: Annotated[Path, tyro.conf.Positional] = Path("data/hopper.npz")
    """Dataset file (from ``worldmodel collect``)."""
    out: Path = Path("runs/latest")
    """Run directory (config, checkpoints, metrics)."""
    resume: bool = False
    """Continue the run in ``out`` from its last checkpoint (its saved settings, these epochs)."""


def _train(args: TrainArgs) -> None:
    from worldmodel.data import load_dataset
    from worldmodel.train import Trainer

    config = TrainConfig.from_dict({f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    trainer = Trainer(
        config, load_dataset(args.dataset), args.out, resume=args.resume, dataset_path=args.dataset
    )
    last = trainer.fit()
    s = trainer.state
    print(
        f"{trainer.config.model}: best val/score {s['best']:.5g} at epoch {s['best_epoch']} "
        f"(last epoch {s['epoch']}: val/interp_mse {last.get('val/interp_mse', float('nan')):.5g}, "
        f"val/extrap_mse {last.get('val/extrap_mse', float('nan')):.5g})"
    )
    print(f"wrote {args.out}/model.safetensors")


@dataclass
class EvaluateArgs(EvaluateConfig):
    """Hold trained runs against the real simulator and write a report."""

    runs: Annotated[tuple[Path, ...], tyro.conf.Positional] = ()
    """Run directories (same env)."""
    out: Path = Path("reports/latest")
    """Report directory."""


def _evaluate(args: EvaluateArgs) -> None:
    from worldmodel.report import evaluate_runs

    config = EvaluateConfig(**{f.name: getattr(args, f.name) for f in fields(EvaluateConfig)})
    print(f"wrote {evaluate_runs(args.runs, args.out, config)}")


def _demo(args: DemoConfig) -> None:
    from worldmodel.demo import run_demo

    run_demo(args)


def _plan(args: PlanConfig) -> None:
    from agents.mpc import run_mpc
    from worldmodel.train import load

    res = run_mpc(load(args.run), args)
    print(
        f"{args.planner} MPC on the real env, {args.episodes} episodes: "
        f"mean return {res['mean_return']:.1f} (std {res['std_return']:.1f}), "
        f"{res['ms_per_action']:.1f} ms per action (median), {res['steps']} steps"
    )


def _dyna(args: DynaConfig) -> None:
    from agents.dyna import dyna_summary, run_dyna

    print(dyna_summary(run_dyna(args), args))


# command name -> (argument dataclass, function taking it)
COMMANDS: dict[str, tuple[type, Callable]] = {
    "collect": (CollectArgs, _collect),
    "train": (TrainArgs, _train),
    "evaluate": (EvaluateArgs, _evaluate),
    "demo": (DemoConfig, _demo),
    "plan": (PlanConfig, _plan),
    "dyna": (DynaConfig, _dyna),
}


def _paper_hopper(args: PaperConfig) -> None:
    from worldmodel.paper import run_benchmark

    run_benchmark(args)


def _run(argv: Sequence[str]) -> None:
    argv = list(argv)
    if argv and argv[0] == "benchmark":
        commands = {"paper-hopper": (PaperConfig, _paper_hopper)}
        if len(argv) < 2 or argv[1] not in commands:
            raise ValueError(f"worldmodel benchmark takes one of: {', '.join(commands)}")
        arg_type, fn = commands[argv[1]]
        fn(tyro.cli(arg_type, prog=f"worldmodel benchmark {argv[1]}", args=argv[2:]))
        return
    if argv and argv[0] == "dataset":
        tyro.extras.subcommand_cli_from_dict(
            {"info": dataset_info, "merge": dataset_merge},
            prog="worldmodel dataset",
            args=argv[1:],
        )
        return
    commands = COMMANDS
    if not argv or argv[0] not in commands:
        names = [*commands, "dataset", "benchmark"]
        if argv and not argv[0].startswith("-"):
            raise ValueError(f"unknown command {argv[0]!r}; commands: {', '.join(names)}")
        print("usage: worldmodel {" + ",".join(names) + "} ...   (worldmodel COMMAND --help)")
        return
    arg_type, fn = commands[argv[0]]
    fn(tyro.cli(arg_type, prog=f"worldmodel {argv[0]}", args=argv[1:]))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``worldmodel`` console script."""
    try:
        _run(sys.argv[1:] if argv is None else argv)
    except (ValueError, OSError, TrainingError) as err:  # DatasetError, CheckpointError, ...
        print(f"worldmodel: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("worldmodel: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
