"""Where the mlp-ensemble's long-horizon lead on Walker2d-v5 random episodes lies.

    python benchmarks/results/world_models_ablation/diagnostics/long_horizon_gap.py \
        runs/wm/Walker2d-v5/irregular

Reads the seed 3 and 4 runs of latent-ode and mlp-ensemble there (``walker_random_seeds3-4``),
rolls them out from the same 128 held-out starts at the trained 3-5 substeps, and prints:
the share of starts whose real walker has fallen (the env's unhealthy test) by h=20 and each
model's error on fallen and upright starts; the error per observation dimension at h=20; the
bias and reach of the predictions on the dimensions where the gap is; and every model again
with the imagination clamp at the training range itself (no 10 % margin).
"""

import sys

import numpy as np
import torch

from worldmodel.data import load_dataset
from worldmodel.evaluate import ModelPredictor, compare_to_simulator, heldout_split
from worldmodel.train import load

torch.set_num_threads(1)
d = sys.argv[1]
models = {f"latent-ode-s{s}": load(f"{d}/latent-ode-s{s}") for s in (3, 4)}
models |= {f"mlp-ensemble-s{s}": load(f"{d}/mlp-ensemble-s{s}") for s in (3, 4)}
first = next(iter(models.values()))
test = heldout_split(first, load_dataset(first.run_config["dataset"]["path"]))
H = (1, 5, 10, 20, 30)


def rollouts():
    preds = [ModelPredictor(m, k) for k, m in models.items()]
    return compare_to_simulator(
        preds, test, first.normalizer, horizon=30, starts=128, timing="uniform:3-5"
    )


res = rollouts()
lode = (res.per_dim["latent-ode-s3"] + res.per_dim["latent-ode-s4"]) / 2  # (starts, h, dim)
ens = (res.per_dim["mlp-ensemble-s3"] + res.per_dim["mlp-ensemble-s4"]) / 2
q = res.real_qpos[:, 19]  # h=20: z height, torso angle
fallen = (q[:, 1] < 0.8) | (q[:, 1] > 2.0) | (np.abs(q[:, 2]) > 1.0)
print(f"real walker fallen by h=20 on {fallen.mean():.0%} of {len(fallen)} starts")
for name, e in (("latent-ode", lode), ("mlp-ensemble", ens)):
    print(
        f"  {name:<13} h=20 error: fallen {e[fallen, 19].mean():.3f}, "
        f"upright {e[~fallen, 19].mean():.3f}"
    )
print("error per observation dimension at h=20 (mean of the two seeds)")
print("  latent-ode  ", np.array2string(lode[:, 19].mean(0), precision=2, max_line_width=200))
print("  mlp-ensemble", np.array2string(ens[:, 19].mean(0), precision=2, max_line_width=200))
print("predictions at h=20 (real units) on the dimensions of the gap; real range over all h")
for dim in (3, 6, 12, 13):
    real = res.real[:, 19, dim]
    for k in ("latent-ode-s3", "mlp-ensemble-s3"):
        p = res.predictions[k][:, 19, dim]
        print(
            f"  dim {dim:>2} {k:<16} reach [{p.min():6.2f}, {p.max():6.2f}] "
            f"(real [{res.real[..., dim].min():6.2f}, {res.real[..., dim].max():6.2f}]) "
            f"mean |error| {np.abs(p - real).mean():.2f}, bias {(p - real).mean():+.2f}"
        )
print("open-loop MSE at h=" + "/".join(map(str, H)))
for k in models:
    print(f"  {k:<16} clamp +10 %: {[round(float(res.errors[k][:, h - 1].mean()), 4) for h in H]}")
for m in models.values():  # the bounds are the training range widened by 10 % each side
    r = (m.obs_high - m.obs_low) / 1.2
    m.set_obs_bounds((m.obs_low + 0.1 * r).numpy(), (m.obs_high - 0.1 * r).numpy())
res = rollouts()
for k in models:
    print(f"  {k:<16} clamp +0 %:  {[round(float(res.errors[k][:, h - 1].mean()), 4) for h in H]}")
