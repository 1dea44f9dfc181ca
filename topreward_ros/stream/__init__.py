"""The stream layer: sampling, camera pairing, the reward stream (what the node publishes, reused
offline), online progress and success.

Its public names are imported on first use (exports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .camera_sync import CameraSynchronizer
    from .episode import Episode
    from .episode_stream import EpisodeStream, SampledFrame
    from .online import CausalProgress, SuccessDetector
    from .reward_stream import RewardStream, RewardStreamError, run_episode, run_episodes, session_pool, update_streams
    from .sampler import FrameSampler
    from .settings import RewardSettings, SettingsError
    from .update import RewardUpdate, UpdateRecordError

_MODULE_OF = {"CameraSynchronizer": "camera_sync", "Episode": "episode", "EpisodeStream": "episode_stream",
              "SampledFrame": "episode_stream", "CausalProgress": "online", "SuccessDetector": "online",
              "RewardStream": "reward_stream", "RewardStreamError": "reward_stream", "run_episode": "reward_stream",
              "run_episodes": "reward_stream", "update_streams": "reward_stream", "session_pool": "reward_stream",
              "FrameSampler": "sampler", "RewardSettings": "settings", "SettingsError": "settings",
              "RewardUpdate": "update", "UpdateRecordError": "update"}
__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
