"""Camera messages -> the frames of an episode, the same way live (node) and offline (bags).

Pairs several cameras by stamp, samples at a fixed rate by header stamp, and starts a new
episode when stamps go backwards (a bag looped, a new recording) or, optionally, jump
forward by more than ``max_gap`` seconds.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .camera_sync import CameraSynchronizer
from .sampler import FrameSampler


@dataclasses.dataclass(frozen=True)
class SampledFrame:
    time: float          # seconds since the episode's first frame
    stamp: float         # header stamp, seconds
    frame: np.ndarray
    new_episode: bool    # the stream restarted at this frame (stamps went back or jumped)


class EpisodeStream:
    def __init__(self, num_cameras: int, sample_fps: float, slop: float = 0.05, max_gap: float | None = None):
        self.sync = CameraSynchronizer(num_cameras, slop)
        self.sampler = FrameSampler(sample_fps)
        self.max_gap = max_gap
        self._last_stamp = -math.inf

    def reset(self) -> None:
        """Start a new episode with the next frame."""
        self.sync.reset()
        self.sampler.reset()
        self._last_stamp = -math.inf

    def add(self, camera: int, stamp: float, frame: np.ndarray) -> list[SampledFrame]:
        sampled = []
        for synced_stamp, synced in self.sync.add(camera, stamp, frame):
            jumped = self.max_gap is not None and synced_stamp - self._last_stamp > self.max_gap
            restart = synced_stamp < self._last_stamp or (jumped and self._last_stamp > -math.inf)
            if restart:
                self.sampler.reset()
            self._last_stamp = synced_stamp
            t = self.sampler.offer(synced_stamp)
            if t is not None:
                sampled.append(SampledFrame(t, synced_stamp, synced, restart))
        return sampled
