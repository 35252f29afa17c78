"""The field-dropout latent-odes of the dropout ablation with dropout kept on in prediction
(Monte Carlo dropout: each of 8 samples draws its own masks at every field evaluation; the
prediction is their mean), against the same runs as trained (dropout off).

    python benchmarks/results/world_models_ablation/diagnostics/mc_dropout.py SEED

Reads ``runs/wm/Walker2d-v5/irregular/latent-ode-fd0.1-sSEED`` (made by the command of
``walker_random_field_dropout0.1_3seeds.txt``) and rolls out as ``benchmarks/world_models.py``
does (128 held-out starts, horizon 50, context 5, random actions at 3-5 substeps, seed 0), so
the dropout-off row reproduces that file's per-seed figures.
"""

import sys

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.data import load_dataset
from worldmodel.evaluate import ModelPredictor, compare_to_simulator, heldout_split
from worldmodel.train import load

torch.set_num_threads(1)
torch.manual_seed(0)  # the dropout masks


class AlwaysDrop(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=True)


run = f"runs/wm/Walker2d-v5/irregular/latent-ode-fd0.1-s{int(sys.argv[1])}"
plain, mc = load(run), load(run)
for i, mod in enumerate(mc.field.net):
    if isinstance(mod, nn.Dropout):
        mc.field.net[i] = AlwaysDrop(mod.p)
test = heldout_split(plain, load_dataset(plain.run_config["dataset"]["path"]))
res = compare_to_simulator(
    [ModelPredictor(plain, "dropout off"), ModelPredictor(mc, "MC dropout, 8 samples", samples=8)],
    test,
    plain.normalizer,
    horizon=50,
    starts=128,
    context=5,
    timing="uniform:3-5",
    seed=0,
)
for k in ("dropout off", "MC dropout, 8 samples"):
    errs = [round(float(res.errors[k][:, h - 1].mean()), 4) for h in (1, 5, 10, 20, 30, 50)]
    print(f"seed {sys.argv[1]}  {k:<22} h=1/5/10/20/30/50 {errs}")
