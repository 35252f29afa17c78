"""stable-baselines3's internals that the agents read or write, in one place.

* the off-policy algorithm's private step counters ``_n_updates`` and ``_episode_num`` (a
  resumed Dyna run restores them; SB3 has no public setter);
* the replay buffer's array attributes (a checkpoint saves their filled part);
* the layout of an SB3 ``.zip`` (its JSON ``data`` entry: the policy class as SB3 serialises it,
  spaces with a private ``_shape``, ``":serialized:"`` marking cloudpickled values), read
  without unpickling.

``tests/test_compat.py`` checks each against the installed stable-baselines3 (written against
2.3-2.9) and fails naming its version when a release changes one.
"""

from __future__ import annotations

import re
from typing import Any

#: the arrays of ``stable_baselines3.common.buffers.ReplayBuffer`` a checkpoint saves
REPLAY_BUFFER_ARRAYS = (
    "observations",
    "next_observations",
    "actions",
    "rewards",
    "dones",
    "timeouts",
)
#: the zip entries: the JSON settings, and the policy's weights (a torch state dict)
DATA_ENTRY, POLICY_ENTRY = "data", "policy.pth"
#: the zip entry holding the stable-baselines3 version that wrote it
VERSION_ENTRY = "_stable_baselines3_version"
#: the key SB3 puts in a JSON value that holds a cloudpickled object
SERIALIZED = ":serialized:"


def counters(agent: Any) -> dict[str, int]:
    """The algorithm's private counters: gradient updates and finished episodes."""
    return {"n_updates": agent._n_updates, "episode_num": agent._episode_num}


def set_counters(agent: Any, n_updates: int, episode_num: int) -> None:
    """Restore what :func:`counters` read."""
    agent._n_updates = n_updates
    agent._episode_num = episode_num


def policy_class(data: dict[str, Any]) -> tuple[str, str]:
    """``(module, class name)`` of the policy in a zip's ``data`` (``"?"``: not found). SB3 stores
    the class as a dict of its attributes, whose ``__init__`` reads
    ``<function NAME.__init__ at 0x...>``."""
    info = data.get("policy_class", {})
    match = re.match(r"<function (\w+)\.__init__", str(info.get("__init__", "")))
    return info.get("__module__", ""), match.group(1) if match else "?"


def space_shape(data: dict[str, Any], key: str) -> tuple[int, ...]:
    """The shape of the space ``key`` (``"observation_space"``, ``"action_space"``) in a zip's
    ``data`` (``()`` when absent)."""
    return tuple(data.get(key, {}).get("_shape", ()))


def holds_pickles(kwargs: Any) -> bool:
    """Whether ``policy_kwargs`` from a zip's ``data`` is not plain JSON (a cloudpickled value,
    e.g. a custom activation)."""
    return (
        not isinstance(kwargs, dict)
        or SERIALIZED in kwargs
        or any(isinstance(v, dict) and SERIALIZED in v for v in kwargs.values())
    )


__all__ = [
    "DATA_ENTRY",
    "POLICY_ENTRY",
    "REPLAY_BUFFER_ARRAYS",
    "SERIALIZED",
    "VERSION_ENTRY",
    "counters",
    "holds_pickles",
    "policy_class",
    "set_counters",
    "space_shape",
]
