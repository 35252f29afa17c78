"""worldmodel: continuous-time world models for MuJoCo locomotion with irregular timing.

The public API (imported lazily, so that ``import worldmodel`` stays light)::

    from worldmodel import load_dataset, CollectConfig, Trainer, TrainConfig, load
    from worldmodel import compare_to_simulator, heldout_error, evaluate_runs

The functions ``collect`` and ``train`` share their names with the submodules that hold them
(``worldmodel.collect``, ``worldmodel.train``), so they are imported from there.

The envs (real, timed and imagined) are in :mod:`envs`, planners and agents in :mod:`agents`.
"""

from __future__ import annotations

from worldmodel._lazy import lazy_getattr

__version__ = "0.1.0"

_PUBLIC = {
    "Dataset": "worldmodel.data",
    "Episode": "worldmodel.data",
    "DatasetError": "worldmodel.data",
    "load_dataset": "worldmodel.data",
    "CollectConfig": "worldmodel.collect",
    "TrainConfig": "worldmodel.config",
    "Trainer": "worldmodel.train",
    "load": "worldmodel.train",
    "MODELS": "worldmodel.models",
    "ModelConfig": "worldmodel.config",
    "make_model": "worldmodel.models",
    "WorldModel": "worldmodel.models",
    "Context": "worldmodel.batching",
    "heldout_error": "worldmodel.evaluate",
    "compare_to_simulator": "worldmodel.evaluate",
    "ModelPredictor": "worldmodel.evaluate",
    "SimulatorPredictor": "worldmodel.evaluate",
    "evaluate_runs": "worldmodel.report",
}

__all__ = sorted(_PUBLIC)
__getattr__ = lazy_getattr(__name__, _PUBLIC)
