"""The stream layer: sampling, camera pairing, the reward stream (what the node publishes, reused
offline), online progress and success.

Its public names, each imported from its module on first use (PEP 562), so that importing this package (or
any one module of it) loads no other module and no heavy dependency.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .camera_sync import CameraSynchronizer
    from .episode_stream import EpisodeStream, SampledFrame
    from .online import CausalProgress, SuccessDetector
    from .reward_stream import RewardStream, RewardStreamError, RewardUpdate, update_streams
    from .sampler import FrameSampler

_MODULE_OF = {
    "CameraSynchronizer": "camera_sync",
    "EpisodeStream": "episode_stream",
    "SampledFrame": "episode_stream",
    "CausalProgress": "online",
    "SuccessDetector": "online",
    "RewardStream": "reward_stream",
    "RewardStreamError": "reward_stream",
    "RewardUpdate": "reward_stream",
    "update_streams": "reward_stream",
    "FrameSampler": "sampler",
}

__all__ = [
    "CameraSynchronizer",
    "CausalProgress",
    "EpisodeStream",
    "FrameSampler",
    "RewardStream",
    "RewardStreamError",
    "RewardUpdate",
    "SampledFrame",
    "SuccessDetector",
    "update_streams",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
