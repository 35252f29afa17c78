import sys
from pathlib import Path

import numpy as np
import torch

from worldmodel.batching import context_batch
from worldmodel.data import load_dataset
from worldmodel.evaluate import heldout_split, sample_starts
from worldmodel.train import load

torch.set_num_threads(1)

r = Path(sys.argv[1])
m = load(r)
ds = load_dataset(Path(sys.argv[2]))
eps = list(heldout_split(m, ds, "train").episodes)
st = sample_starts(eps, 256, 5, 0)
b = context_batch([s.context for s in st], m.normalizer)
q = m.posterior(b)
sc = q.scale[:, m.obs_dim :]
mu = q.loc[:, m.obs_dim :]
print(
    "posterior std per aug dim (median over starts):",
    np.round(sc.median(0).values.detach().numpy(), 3),
)
print(
    "posterior mean spread per aug dim (std over starts):", np.round(mu.std(0).detach().numpy(), 3)
)
