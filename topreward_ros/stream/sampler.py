"""Fixed-rate frame sampling from timestamps, shared by the ROS node and the offline evaluators
so that live (use_sim_time + bag replay) and offline runs see the same frames."""

from __future__ import annotations

import math

SLOT_EPSILON = 1e-6  # a frame stamped a hair before its slot boundary still opens the slot


class FrameSampler:
    """Keeps the first frame of each 1/fps slot, counted from the episode's first frame.

    ``wants(t)`` says, without deciding, whether a frame at ``t`` would be kept, so a caller
    can skip decoding the others; ``offer(t)`` decides: it returns the frame's time relative
    to the episode start if it is kept, else None. Times must not go backwards within an
    episode (``reset()`` starts a new one).
    """

    def __init__(self, fps: float):
        if not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"sample fps must be positive and finite, got {fps}")
        self.fps = fps
        self.reset()

    def reset(self) -> None:
        self.start: float | None = None
        self._last_slot = -1
        self._last_time = -math.inf

    def _slot(self, t: float) -> int:
        return math.floor((t - (t if self.start is None else self.start)) * self.fps + SLOT_EPSILON)

    def wants(self, t: float) -> bool:
        return t >= self._last_time and self._slot(t) > self._last_slot

    def offer(self, t: float) -> float | None:
        if t < self._last_time:
            return None
        self._last_time = t
        if self.start is None:
            self.start = t
        slot = self._slot(t)
        if slot <= self._last_slot:
            return None
        self._last_slot = slot
        return t - self.start
