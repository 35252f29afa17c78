import sys
from pathlib import Path

import numpy as np
import torch

from worldmodel.batching import context_batch
from worldmodel.data import load_dataset
from worldmodel.evaluate import ModelPredictor, compare_to_simulator, heldout_split
from worldmodel.train import load

torch.set_num_threads(1)


class MeanPredictor(ModelPredictor):
    @torch.no_grad()
    def predict(self, contexts, actions, dts):
        m = self.model
        p = next(m.parameters())
        batch = context_batch(contexts, m.normalizer).to(p.device)
        state = m.encode(batch, 1, mean=True)
        pred = m.rollout(
            state, torch.as_tensor(actions, dtype=p.dtype), torch.as_tensor(dts, dtype=p.dtype)
        )
        return m.denormalize(pred.mean).mean(0).double().cpu().numpy()


env, regime = sys.argv[1], sys.argv[2]
root = Path(f"runs/world_models/{env}/{regime}")
data = root / sys.argv[3]
lat = load(root / "latent-ode-s0")
ens = load(root / "mlp-ensemble-s0")
dm = load(root / "mlp-delta-s0")
ds = load_dataset(data)
test = heldout_split(lat, ds)
preds = [
    ModelPredictor(lat, "lat8"),
    ModelPredictor(lat, "lat64", samples=64),
    MeanPredictor(lat, "latmean", samples=1),
    ModelPredictor(ens, "ens"),
    ModelPredictor(dm, "delta"),
]
for ctx in (5, 10):
    res = compare_to_simulator(
        preds, test, lat.normalizer, horizon=5, starts=128, context=ctx, seed=0
    )
    for k, v in res.errors.items():
        a = np.asarray(v)
        print(ctx, k, a.shape, np.round(a.mean(0)[[0, 1, 4]] if a.ndim == 2 else a[[0, 1, 4]], 5))
