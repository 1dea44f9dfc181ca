"""What the node publishes beside the raw score, computed online: causal progress and latched success."""

from __future__ import annotations

import math

DEFAULT_SUCCESS_THRESHOLD = round(math.log(0.5), 3)  # P(True) = 0.5; calibrate per setup (topreward-calibrate)
DEFAULT_SUCCESS_CONSECUTIVE = 3
# The values the node's parameters and the tools' options accept (from, to).
SUCCESS_THRESHOLD_RANGE = (-1000.0, 1000.0)
SUCCESS_CONSECUTIVE_RANGE = (1, 1000)


class CausalProgress:
    """Online min-max normalisation: (r - min so far) / (max so far - min so far), 0 while the span is 0.

    Uses only past and present scores, so it can be published live; at the end of an
    episode its last value equals the offline min-max progress of the last score.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.low = math.inf
        self.high = -math.inf

    def update(self, score: float) -> float:
        self.low = min(self.low, score)
        self.high = max(self.high, score)
        span = self.high - self.low
        return 0.0 if span == 0 else (score - self.low) / span


class SuccessDetector:
    """Success once the raw score is at or above ``threshold`` for ``consecutive`` updates in a row;
    latched until ``reset()`` (a new episode)."""

    def __init__(self, threshold: float = DEFAULT_SUCCESS_THRESHOLD, consecutive: int = DEFAULT_SUCCESS_CONSECUTIVE):
        if consecutive < 1:
            raise ValueError(f"consecutive must be at least 1, got {consecutive}")
        self.threshold = threshold
        self.consecutive = consecutive
        self.reset()

    def reset(self) -> None:
        self.streak = 0
        self.success = False

    def update(self, score: float) -> bool:
        self.streak = self.streak + 1 if score >= self.threshold else 0
        self.success = self.success or self.streak >= self.consecutive
        return self.success
