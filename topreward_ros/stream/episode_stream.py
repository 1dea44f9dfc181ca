"""Camera messages -> the frames of an episode, the same way live (node) and offline (bags).

Pairs several cameras by stamp, samples at a fixed rate by header stamp, and only then
decodes the sampled messages (``convert``), so a 30 Hz camera costs decoding only for the
frames that are scored. A new episode starts when stamps go back by more than
``stamp_tolerance`` seconds (a bag looped, a new recording) or jump forward by more than
``max_gap`` seconds (a stalled camera, a new recording): the model is never shown a time the
episode did not last. A stamp at most ``stamp_tolerance`` seconds before the previous one is a
late message (best-effort transport reorders, multi-camera drivers jitter by tens of ms): it is
dropped and counted, and the episode goes on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import TopRewardError
from .camera_sync import CameraSynchronizer, tile
from .sampler import FrameSampler

DEFAULT_SAMPLE_FPS = 2.0    # frames per second taken into an episode (the published 2 fps schedule)
DEFAULT_CAMERA_SLOP = 0.05  # seconds between the stamps of paired cameras
DEFAULT_MAX_GAP = 10.0      # seconds of silence in the stamps that start a new episode
# The values the node's parameters and the tools' options accept (from, to).
SAMPLE_FPS_RANGE = (0.1, 30.0)
CAMERA_SLOP_RANGE = (0.0, 1.0)
MAX_GAP_RANGE = (0.1, 3600.0)
# Seconds a stamp may lie before the previous one and be dropped as late instead of starting an
# episode: ten times the tens of ms of transport reordering and camera jitter, and well below the
# seconds a loop or a new recording goes back.
DEFAULT_STAMP_TOLERANCE = 0.5
STAMP_TOLERANCE_RANGE = (0.0, 60.0)


@dataclasses.dataclass(frozen=True)
class SampledFrame:
    time: float          # seconds since the episode's first frame
    stamp: float         # header stamp, seconds
    frame: np.ndarray
    new_episode: bool    # the stream restarted at this frame (stamps went back or jumped)


@dataclasses.dataclass
class Added:
    """What one message did: frames sampled from it, messages whose conversion failed, and camera
    groups dropped as late (stamped within the tolerance before the previous one)."""

    sampled: list[SampledFrame] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    restarted: bool = False
    late: int = 0


class EpisodeStream:
    """``convert(items) -> frame`` turns one message per camera into one RGB frame; it is called
    only for sampled groups and may raise TopRewardError (the slot then stays open)."""

    def __init__(self, num_cameras: int, convert: Callable[[list[Any]], np.ndarray],
                 sample_fps: float = DEFAULT_SAMPLE_FPS, slop: float = DEFAULT_CAMERA_SLOP,
                 max_gap: float | None = DEFAULT_MAX_GAP, stamp_tolerance: float = DEFAULT_STAMP_TOLERANCE):
        if max_gap is not None and not max_gap > 0:
            raise ValueError(f"max_gap must be positive, got {max_gap}")
        if not STAMP_TOLERANCE_RANGE[0] <= stamp_tolerance <= STAMP_TOLERANCE_RANGE[1]:
            raise ValueError("stamp_tolerance must be from {:g} to {:g}, got {}".format(*STAMP_TOLERANCE_RANGE,
                                                                                       stamp_tolerance))
        self.sync = CameraSynchronizer(num_cameras, slop)
        self.sampler = FrameSampler(sample_fps)
        self.convert = convert
        self.max_gap = max_gap
        self.stamp_tolerance = stamp_tolerance
        self.reset()

    def reset(self) -> None:
        """Start a new episode with the next frame."""
        self.sync.reset()
        self.sampler.reset()
        self._last_stamp = -math.inf
        self._restart_pending = False

    def add(self, camera: int, stamp: float, item: Any) -> Added:
        added = Added()
        for synced_stamp, items in self.sync.add(camera, stamp, item):
            back = self._last_stamp - synced_stamp
            if 0 < back <= self.stamp_tolerance:
                added.late += 1
                continue
            started = self._last_stamp > -math.inf
            went_back = back > 0
            jumped = started and self.max_gap is not None and synced_stamp - self._last_stamp > self.max_gap
            if went_back or jumped:
                self.sampler.reset()
                self._restart_pending = added.restarted = True
            self._last_stamp = synced_stamp
            if not self.sampler.wants(synced_stamp):
                self.sampler.offer(synced_stamp)
                continue
            try:
                frame = self.convert(items)
            except TopRewardError as exc:
                added.errors.append(str(exc))
                continue
            t = self.sampler.offer(synced_stamp)
            assert t is not None  # the sampler wants this stamp
            added.sampled.append(SampledFrame(t, synced_stamp, frame, self._restart_pending))
            self._restart_pending = False
        return added


def tiled(convert_one: Callable[[Any], np.ndarray]) -> Callable[[list[Any]], np.ndarray]:
    """A group converter from a one-message converter: each camera's frame, side by side."""
    return lambda items: tile([convert_one(item) for item in items])
