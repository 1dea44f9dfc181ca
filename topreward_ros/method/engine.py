"""One streaming episode: the one-session case of a SessionPool (see sessions.py for the method).

The live node, the offline curves and the bag tools score one episode at a time through this
view; batch workers and vector environments use the pool directly. Both run the same code.
"""

from __future__ import annotations

import numpy as np

from .config import DEFAULT_MAX_FRAMES, ScoringConfig
from .sessions import SessionPool, Update

__all__ = ["StreamingEngine", "Update"]


class StreamingEngine:
    """One episode's state. Not thread-safe: one engine per stream (Qwen3-VL keeps rope state)."""

    def __init__(self, reward_model, config: ScoringConfig, max_frames: int = DEFAULT_MAX_FRAMES,
                 pool: SessionPool | None = None):
        """A pool of its own, or a session of ``pool`` (whose sessions can then be scored together)."""
        self.pool = pool if pool is not None else SessionPool(reward_model, config, max_frames=max_frames, capacity=1)
        self.session_id = self.pool.open()

    @classmethod
    def in_pool(cls, pool: SessionPool) -> "StreamingEngine":
        return cls(pool.reward_model, pool.config, pool.max_frames, pool=pool)

    @property
    def config(self) -> ScoringConfig:
        return self.pool.config

    @property
    def renderer(self):
        return self.pool.renderer

    @property
    def max_frames(self) -> int:
        return self.pool.max_frames

    @property
    def _session(self):
        return self.pool.session(self.session_id)

    @property
    def frames(self) -> list[np.ndarray]:
        return self._session.frames

    @property
    def times(self) -> list[float]:
        return self._session.times

    @property
    def stride(self) -> int:
        return self._session.stride

    @property
    def num_frames(self) -> int:
        return self._session.num_frames

    def reset(self) -> None:
        """Start a new episode (frames, vision features and KV cache are dropped)."""
        self.pool.reset(self.session_id)

    def invalidate(self) -> None:
        """Drop the caches but keep the frames: the next score rebuilds them (after a failed update)."""
        self.pool.invalidate(self.session_id)

    def add_frame(self, frame: np.ndarray, timestamp: float) -> bool:
        """Add an RGB frame taken at ``timestamp`` seconds. Returns False if the stride skips it."""
        return self.pool.add_frame(self.session_id, frame, timestamp)

    def check_task(self, task: str) -> str:
        """The stripped task if every prompt renders with it; else a PromptError or RenderError.
        Touches no episode state, so another thread may call it while this one scores."""
        return self.pool.check_task(task)

    def score(self, task: str) -> Update:
        """Score the episode so far for ``task``."""
        return self.pool.score({self.session_id: task})[self.session_id]
