"""What one SAC gradient step costs, and what makes it cheaper (issue #16: affordable runs).

    python benchmarks/sac_step.py [--steps 2000] [--threads 1] [--repeats 3] [--profile]
        [--variants default,crossq,crossq-qf256]

stable-baselines3's SAC on Hopper-v5 at its defaults (two 256x256 critics and actor, batch
256), its replay buffer filled with 10,000 random real steps; then ``SAC.train(gradient_steps=
--steps)`` timed for each variant, the variants interleaved ``--repeats`` times (the machine is
noisy: the median of each is reported, and its ratio to the default measured in the same run):

* ``default``: Adam as SB3 builds it (on the CPU torch's per-tensor loop);
* ``foreach``: Adam with ``foreach=True`` (one multi-tensor kernel per update);
* ``fused``: Adam with ``fused=True`` (torch's fused CPU kernel), these two passed to SB3 as
  ``policy_kwargs={"optimizer_kwargs": ...}``;
* ``bf16``: the default under ``torch.autocast("cpu", torch.bfloat16)`` (matrix products in
  bfloat16; this changes the numerics, so its losses are not checked and its effect on
  returns would have to be measured before any run used it);
* ``crossq``: not SAC but sb3-contrib's CrossQ at its defaults (``worldmodel dyna --agent
  crossq``: two batch-renormalised critics of 1024 x 1024, sb3-contrib's default (the paper's
  are 2048), fed the batch's states and next states together, actor every third step), to price
  a run of it against SAC's;
* ``crossq-qf256``: that with critics of 256 x 256 (SAC's width; ``--critic-units 256``).

Every variant starts from the same weights and buffer; the optimiser variants must reach the
same losses to float rounding (checked): they change speed, not the algorithm.
``--profile`` prints where the default's time goes. Appends to ``benchmarks/results/sac_step.csv``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from _results import append_rows
from stable_baselines3 import SAC

from agents.dyna import critic_kwargs, learner_class

RESULTS = Path(__file__).parent / "results" / "sac_step.csv"
VARIANTS = {
    "default": {},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
    "bf16": {},
    "crossq": None,  # its own policy's optimiser settings
    "crossq-qf256": None,
}
CRITIC_UNITS = {"crossq-qf256": 256}  # CrossQ variants' critic widths (others: its default)
EXACT = ("default", "foreach", "fused")  # variants that must compute what the default does


def make_agent(
    optimizer_kwargs: dict | None,
    seed: int = 0,
    fill: int = 10_000,
    critic_units: int | None = None,
) -> SAC:
    """SAC on Hopper-v5 with ``optimizer_kwargs`` (None: CrossQ at its defaults but for
    ``critic_units``), its buffer holding ``fill`` random steps (the same steps and initial
    weights for every variant)."""
    env = gym.make("Hopper-v5")
    if optimizer_kwargs is None:
        agent = learner_class("crossq")(
            "MlpPolicy", env, seed=seed, device="cpu", **critic_kwargs(critic_units)
        )
    else:
        agent = SAC(
            "MlpPolicy",
            env,
            seed=seed,
            device="cpu",
            policy_kwargs={"optimizer_kwargs": optimizer_kwargs},
        )
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(fill):
        a = rng.uniform(-1, 1, 3).astype(np.float32)
        nxt, r, term, trunc, info = env.step(a)
        agent.replay_buffer.add(
            obs[None], nxt[None], a[None], np.array([r]), np.array([term]), [info]
        )
        obs = env.reset()[0] if term or trunc else nxt
    agent._setup_learn(total_timesteps=1)  # the logger SAC.train writes to
    return agent


def timed_train(agent: SAC, steps: int, bf16: bool = False) -> tuple[float, float]:
    """Milliseconds per gradient step over ``steps`` of ``agent.train`` (under bfloat16
    autocast with ``bf16``), and the critic's last loss (to check that the variants compute
    the same thing)."""
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        agent.train(gradient_steps=steps, batch_size=256)
    ms = (time.perf_counter() - start) / steps * 1000
    return ms, float(agent.logger.name_to_value["train/critic_loss"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="gradient steps per timing")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument(
        "--variants", default=",".join(VARIANTS), help="which to time (default among them)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    chosen = args.variants.split(",")
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown or "default" not in chosen:
        raise SystemExit(f"--variants: unknown {unknown} or no 'default'; from {list(VARIANTS)}")

    times: dict[str, list[float]] = {k: [] for k in VARIANTS if k in chosen}
    losses: dict[str, float] = {}
    for r in range(args.repeats):
        for name in times:
            agent = make_agent(VARIANTS[name], critic_units=CRITIC_UNITS.get(name))
            ms, loss = timed_train(agent, args.steps, bf16=name == "bf16")
            times[name].append(ms)
            losses.setdefault(name, loss)
            print(f"repeat {r} {name:<8} {ms:6.2f} ms/step  (critic loss {loss:.6g})")
    base = float(np.median(times["default"]))
    for name in (n for n in EXACT if n in losses):
        loss = losses[name]
        if not np.isclose(loss, losses["default"], rtol=1e-3):
            raise SystemExit(
                f"{name}: critic loss {loss} differs from default's {losses['default']}"
            )
    rows = []
    print(f"\nSAC gradient step, Hopper-v5, {args.threads} thread(s), median of {args.repeats}:")
    for name, ts in times.items():
        ms = float(np.median(ts))
        print(f"  {name:<8} {ms:6.2f} ms   {base / ms:5.2f}x the default's speed")
        rows.append((name, args.threads, args.steps, f"{ms:.3f}", f"{base / ms:.3f}"))
    append_rows(RESULTS, ["variant", "threads", "steps", "ms_per_step", "speedup"], rows)
    if args.profile:
        agent = make_agent({})
        prof = cProfile.Profile()
        prof.runcall(agent.train, gradient_steps=args.steps, batch_size=256)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
