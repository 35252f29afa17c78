import sys
from pathlib import Path

import numpy as np
import torch

from worldmodel.data import load_dataset
from worldmodel.evaluate import ModelPredictor, heldout_split, recorded_plan, sample_starts
from worldmodel.train import load

torch.set_num_threads(1)

env, regime, dataname = sys.argv[1:4]
root = Path(f"runs/world_models/{env}/{regime}")
ds = load_dataset(root.parent / "irregular" / dataname)
names = sys.argv[4].split(",")
models = {n: load(root / n) for n in names}
first = models[names[0]]
for split in ("train", "test"):
    eps = list(heldout_split(first, ds, split).episodes)
    st = sample_starts(eps, 1024, 5, 0, after=1)
    a, dts, tgt = recorded_plan(eps, st, 1)
    ctx = [s.context for s in st]
    sub = np.round(dts[:, 0] / 0.002).astype(int)
    for n, m in models.items():
        p = ModelPredictor(m, n).predict(ctx, a, dts)
        e = (((p - tgt) / first.normalizer.std) ** 2).mean((1, 2))
        print(
            split,
            f"{n:24s}",
            f"all {e.mean():.5f}",
            " ".join(f"{k}:{e[sub == k].mean():.5f}" for k in sorted(set(sub))),
        )
