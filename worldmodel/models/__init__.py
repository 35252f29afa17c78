"""World models by name: ``latent-ode``, ``ode-rnn``, ``gru-dt``, ``rnn-vae``, ``mlp-ensemble``,
``mlp-delta``."""

from __future__ import annotations

from worldmodel.models.base import ModelConfig, Prediction, WorldModel
from worldmodel.models.ensemble import MLPDelta, MLPEnsemble
from worldmodel.models.filters import ODERNN, GRUDelta
from worldmodel.models.latent import RNNVAE, LatentModel

MODELS: dict[str, type[WorldModel]] = {
    cls.name: cls for cls in (LatentModel, ODERNN, GRUDelta, RNNVAE, MLPEnsemble, MLPDelta)
}


def make_model(
    name: str, obs_dim: int, act_dim: int, config: ModelConfig | None = None
) -> WorldModel:
    """Build a model by name; an unknown name raises ``ValueError`` listing the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](obs_dim, act_dim, config or ModelConfig())


__all__ = ["MODELS", "ModelConfig", "Prediction", "WorldModel", "make_model"]
