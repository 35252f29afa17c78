import sys

import numpy as np

from worldmodel.train import load

for r in sys.argv[1:]:
    m = load(r)
    print(r, "per-dim noise", np.round(m.log_std.detach().exp().numpy(), 4).tolist())
