"""A trained world model behind the Gymnasium API: ``ImaginedEnv``, ``ImaginedVectorEnv`` and
an adapter that stable-baselines3 accepts as a ``VecEnv``.

All three sit on one batched core (:mod:`envs.imagined.core`): :class:`ImaginationCore` (after
mbrl-lib's ``ModelEnv``) encodes real context windows into model states, steps the model under
held actions for ``dt`` seconds, and scores each step with the task's reward and termination
functions (:mod:`envs.tasks`), on torch (CPU or GPU); :class:`ImaginedBatch` keeps ``N``
episodes on it (starts, dt, time, positions). ``ImaginedEnv`` is a batch of one row,
``ImaginedVectorEnv`` a batch of ``num_envs``, so a step is written once.

==========================  ====================================================================
module                      holds
==========================  ====================================================================
``core``                    ``ImaginationCore``, ``ImaginedBatch``, ``RealStarts``, ``load_model``
``checks``                  the input checks (actions, dt, reset options)
``single``                  ``ImaginedEnv``, the Gymnasium env
``vector``                  ``ImaginedVectorEnv``, the Gymnasium vector env
``sb3``                     ``SB3VecEnv``, the stable-baselines3 adapter
==========================  ====================================================================

``ImaginedEnv`` (registered as ``worldmodel/Imagined-v0``):

==========================  ====================================================================
observation / action space  the real env's (same shapes, bounds and dtypes)
``reset(seed, options)``    resets a real env with a seed drawn from ``np_random`` and encodes its
                            initial observation; ``options={"context": {"t", "obs", "actions"}}``
                            starts from a given real context window instead (``t (T,)`` seconds,
                            ``obs (T, obs_dim)``, ``actions (T-1, act_dim)``; optional ``"x"``: the
                            x position at the last observation, for rendering)
``step(action)``            advances ``dt`` seconds: the real env's dt, or drawn per step from
                            ``timing`` (a :class:`envs.TimingSpec`, like ``IrregularTiming``)
``step_dt(action, dt)``     advances a given ``dt`` seconds (> 0, at most 1,000 control steps)
reward, terminated          :mod:`envs.tasks` (the real env's formulas, with the env kwargs the
                            data was collected with, e.g. ``terminate_when_unhealthy=False``);
                            truncation by ``TimeLimit``; ``info["inexact_terms"]`` names the
                            reward terms that are estimates
latent sampling             a torch generator seeded from ``reset(seed)``; ``deterministic=True``
                            uses the belief's mean
actions                     clipped into the action space (``clip_actions=False``: an error)
a non-finite model state    ends the episode: ``terminated=True``, ``info["model_diverged"]``, and
                            the last finite observation is returned (never NaN)
``render()``                ``rgb_array``: the predicted qpos/qvel drawn by MuJoCo, the x position
                            integrated from the predicted x velocity
==========================  ====================================================================

The env is the one the model's data came from (:func:`envs.factory.env_spec_of`: the dataset
metadata copied into the run's ``config.json``): its ``gym.make`` kwargs and wrappers
(``Incline``, ``ResetNoise``) make the real start states, the spaces and the task. Only envs
with a task in :mod:`envs.tasks` are accepted (a ``ValueError`` lists them).
"""

from envs.imagined.core import (
    ImaginationCore,
    ImaginedBatch,
    RealStarts,
    Transition,
    load_model,
)
from envs.imagined.sb3 import SB3VecEnv
from envs.imagined.single import ImaginedEnv
from envs.imagined.vector import ImaginedVectorEnv

__all__ = [
    "ImaginationCore",
    "ImaginedBatch",
    "ImaginedEnv",
    "ImaginedVectorEnv",
    "RealStarts",
    "SB3VecEnv",
    "Transition",
    "load_model",
]
