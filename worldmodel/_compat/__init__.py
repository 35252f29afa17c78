"""Adapters over the private APIs of other libraries: each is read in one module, and
``tests/test_compat.py`` fails, naming the library's version, when a new release changes it.

* :mod:`worldmodel._compat.torchdiffeq`: torchdiffeq's solver table (``torchdiffeq._impl``).
* :mod:`agents._sb3` (stable-baselines3) and :mod:`envs._gymnasium` (Gymnasium's MuJoCo envs)
  sit beside their only users.
"""
