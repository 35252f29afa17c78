import sys
from pathlib import Path

import numpy as np
import torch

from worldmodel.batching import context_batch
from worldmodel.data import load_dataset
from worldmodel.evaluate import ModelPredictor, compare_to_simulator, heldout_split
from worldmodel.train import load

torch.set_num_threads(1)


class ZeroAug(ModelPredictor):
    @torch.no_grad()
    def predict(self, contexts, actions, dts):
        m = self.model
        p = next(m.parameters())
        batch = context_batch(contexts, m.normalizer).to(p.device)
        state = m.encode(batch, 1, mean=True).clone()
        state[..., m.obs_dim :] = 0
        pred = m.rollout(
            state, torch.as_tensor(actions, dtype=p.dtype), torch.as_tensor(dts, dtype=p.dtype)
        )
        return m.denormalize(pred.mean).mean(0).double().cpu().numpy()


env, regime, dataname = sys.argv[1:4]
root = Path(f"runs/world_models/{env}/{regime}")
lat = load(root / "latent-ode-s0")
ens = load(root / "mlp-ensemble-s0")
dm = load(root / "mlp-delta-s0")
ds = load_dataset(root.parent / "irregular" / dataname)
test = heldout_split(lat, ds)
preds = [
    ModelPredictor(lat, "lat"),
    ZeroAug(lat, "lat-zeroaug", samples=1),
    ModelPredictor(ens, "ens"),
    ModelPredictor(dm, "delta"),
]
res = compare_to_simulator(preds, test, lat.normalizer, horizon=3, starts=128, context=5, seed=0)
np.set_printoptions(linewidth=200)
for k in ("lat", "lat-zeroaug", "ens", "delta"):
    print(k, round(float(res.errors[k][:, 0].mean()), 5), np.round(res.per_dim[k][:, 0].mean(0), 4))
