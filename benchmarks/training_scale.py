"""Training throughput at 1 and 2 processes (torchrun, DDP), with the batch pipeline off and on.

    python benchmarks/training_scale.py [--models latent-ode mlp-ensemble] [--steps 12]

For each model and each configuration (processes x loader workers per process), a fresh run of
:class:`~worldmodel.train.Trainer` times ``--steps`` training steps (batch building, forward,
backward, gradient all-reduce, Adam step) after ``--warmup`` steps; the global batch is 32
windows of 50 observations whatever the number of processes. Throughput is global windows (and
steps) per second; every figure is also given as a ratio to the 1-process synchronous run of the
same model measured in this run. On the CPU every process runs one torch thread
(``OMP_NUM_THREADS=1``, torchrun's default), so 2 processes use 2 cores where 1 uses one. On a
GPU (when torch sees one) the processes use ``cuda:LOCAL_RANK``; 2 processes need 2 GPUs.

The data: synthetic Hopper-shaped episodes (11 observation dims, 3 actions, 40 episodes of 400
steps, 1-7 physics steps of 8 ms per action, ``default_dt`` 8 ms); throughput does not depend
on what the numbers are. Prints a table; nothing is appended to a CSV.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ((1, 0), (1, 1), (2, 0), (2, 1))  # (processes, loader workers per process)
BATCH, WINDOW = 32, 50


def make_data(path: Path) -> None:
    import numpy as np

    from worldmodel.data import Dataset, Episode

    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(40):
        n = 400
        t = np.concatenate([[0.0], np.cumsum(rng.integers(1, 8, size=n) * 0.008)])
        episodes.append(
            Episode(
                t=t,
                obs=np.cumsum(rng.normal(0, 0.1, size=(n + 1, 11)), 0),
                actions=rng.uniform(-1, 1, (n, 3)).astype(np.float32),
                rewards=np.zeros(n),
                qpos=np.zeros((n + 1, 0)),
                qvel=np.zeros((n + 1, 0)),
            )
        )
    Dataset(episodes, {"env_id": "Synthetic-v0", "default_dt": 0.008}).save(path)


def worker(args: argparse.Namespace) -> None:
    """One process of a configuration: time the training steps; rank 0 prints a JSON line."""
    import torch

    from worldmodel.data import load_dataset
    from worldmodel.train import TrainConfig, Trainer

    config = TrainConfig(
        model=args.model,
        batch_size=BATCH,
        window=WINDOW,
        epochs=1,
        steps_per_epoch=args.warmup + args.steps,
        loader_workers=args.loader_workers,
        device=args.device,
        progress=False,
        tensorboard=False,
    )
    trainer = Trainer(config, load_dataset(args.data), args.out)

    def steps(n: int) -> None:
        for _ in range(n):
            trainer.train_step(trainer._train_batch())
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)

    steps(args.warmup)
    trainer.processes.agree(True)  # every rank starts the clock together
    start = time.perf_counter()
    steps(args.steps)
    seconds = trainer.processes.gather(time.perf_counter() - start)
    if trainer.processes.main:
        print(json.dumps({"seconds": max(seconds), "device": str(trainer.device)}))
    if trainer._prefetched is not None:
        trainer._prefetched.close()
    trainer.processes.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_config(
    data: Path, out: Path, model: str, procs: int, workers: int, args: argparse.Namespace
) -> dict:
    flags = [
        "--worker",
        "--data",
        str(data),
        "--out",
        str(out),
        "--model",
        model,
        "--loader-workers",
        str(workers),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--device",
        args.device,
    ]
    if procs == 1:
        cmd = [sys.executable, __file__, *flags]
    else:
        launch = ["-m", "torch.distributed.run", f"--nproc_per_node={procs}"]
        port = ["--master-addr=127.0.0.1", f"--master-port={free_port()}"]
        cmd = [sys.executable, *launch, *port, __file__, *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if res.returncode:
        raise RuntimeError(f"{cmd} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["latent-ode", "mlp-ensemble"])
    p.add_argument("--steps", type=int, default=12, help="timed steps (latent-ode; x4 for MLPs)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--loader-workers", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    gpus = torch.cuda.device_count() if args.device in ("auto", "cuda") else 0
    cpus = len(os.sched_getaffinity(0))
    print(
        f"training throughput: global batch {BATCH} windows x {WINDOW} observations, "
        f"torch {torch.__version__}, {cpus} CPU cores"
        + (f", {gpus} GPU(s): {torch.cuda.get_device_name(0)}" if gpus else "")
    )
    if not gpus:
        print(
            "CPU: one torch thread per process. On a 2-core machine the 2-process and the"
            " loader-worker figures share the cores with each other (and with anything else"
            " running: during the committed run another benchmark held one core), so they are"
            " pessimistic."
        )
    header = f"{'model':<13} {'device':<7} {'procs':>5} {'loader':>6} {'steps/s':>8} "
    header += f"{'windows/s':>10} {'ratio':>6}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        make_data(data)
        for model in args.models:
            steps = args.steps if model in ("latent-ode", "ode-rnn", "rnn-vae") else 4 * args.steps
            run_args = argparse.Namespace(**{**vars(args), "steps": steps})
            base = None
            for i, (procs, workers) in enumerate(CONFIGS):
                if gpus and procs > gpus:
                    print(f"{model:<13} {'cuda':<7} {procs:>5} {workers:>6}  skipped: {gpus} GPU")
                    continue
                res = run_config(data, Path(tmp) / f"{model}-{i}", model, procs, workers, run_args)
                rate = steps / res["seconds"]
                base = base or rate
                device = res["device"].split(":")[0]
                print(
                    f"{model:<13} {device:<7} {procs:>5} {workers:>6} {rate:>8.2f} "
                    f"{rate * BATCH:>10.1f} {rate / base:>6.2f}",
                    flush=True,
                )
    print(
        "ratio: to the 1-process run without loader workers (first row of each model). "
        "loader: worker processes per training process building batches ahead."
    )


if __name__ == "__main__":
    main()
