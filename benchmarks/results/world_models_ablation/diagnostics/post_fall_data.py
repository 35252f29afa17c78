"""Is the mlp-ensemble's long-horizon lead on Walker2d-v5 random episodes a gap in the data?

    python benchmarks/results/world_models_ablation/diagnostics/post_fall_data.py \
        runs/wm/Walker2d-v5/irregular MODEL SEED     # train one model (run it per model)
    python benchmarks/results/world_models_ablation/diagnostics/post_fall_data.py \
        runs/wm/Walker2d-v5/irregular eval SEED

Random episodes end at the fall (the env's unhealthy test), but the benchmark rolls the
simulator on past it (see ``long_horizon_gap.py``). Here the same env, timing (3-5 substeps)
and random policy, with ``terminate_when_unhealthy=False`` and 44-step episodes: 500 episodes,
about the 21,895 observations of the benchmark's 1,000 random ones (mean length 21.9), so the
models see as many states, now including falls and what follows. ``MODEL SEED`` trains
``MODEL`` on them at the benchmark's budget (``world_models.train_run``: 30 x 100 batches).
``eval SEED`` rolls the post-fall models and the benchmark's own seed-SEED runs of the same
models out from the benchmark's test starts (the split, 128 starts, horizon 50, context 5,
random actions, seed 0; errors in the benchmark run's normalised units).
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
torch.set_num_threads(1)

d, what, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
data = d / "random_nofall_500x44.npz"
if not data.exists():
    from worldmodel.collect import CollectConfig, collect

    cfg = CollectConfig(
        env="Walker2d-v5",
        episodes=500,
        timing="uniform:3-5",
        seed=0,
        max_episode_steps=44,
        env_kwargs={"terminate_when_unhealthy": False},
        progress=False,
    )
    collect(cfg).save(data)
if what != "eval":
    from world_models import train_run

    args = argparse.Namespace(epochs=30, steps=100, batch=None, overrides=[])
    train_run(data, d / f"{what}-nofall-s{seed}", what, seed, args)
    sys.exit()

from worldmodel.data import load_dataset  # noqa: E402
from worldmodel.evaluate import ModelPredictor, compare_to_simulator, heldout_split  # noqa: E402
from worldmodel.train import load  # noqa: E402

models = {}
for m in ("latent-ode", "mlp-ensemble"):
    models[f"{m} (benchmark data)"] = load(d / f"{m}-s{seed}")
    models[f"{m} (post-fall data)"] = load(d / f"{m}-nofall-s{seed}")
ref = models["latent-ode (benchmark data)"]
test = heldout_split(ref, load_dataset(ref.run_config["dataset"]["path"]))
res = compare_to_simulator(
    [ModelPredictor(m, k) for k, m in models.items()],
    test,
    ref.normalizer,
    horizon=50,
    starts=128,
    context=5,
    timing="uniform:3-5",
    seed=0,
)
print(f"seed {seed}, h=1 / 5 / 10 / 20 / 30 / 50 at the trained 3-5 substeps")
for k in models:
    errs = [round(float(res.errors[k][:, h - 1].mean()), 4) for h in (1, 5, 10, 20, 30, 50)]
    print(f"  {k:<30} {errs}")
