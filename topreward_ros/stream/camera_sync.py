"""Several cameras as one frame: pair by nearest header stamp within a slop, tile side by side.

Camera 0 leads: each of its frames waits until every other camera has a frame within
``slop`` seconds of it (the nearest one is taken) or can no longer get one (a newer frame
arrived past the slop), in which case it is dropped. Works the same live and on bags.
"""

from __future__ import annotations

import collections

import cv2
import numpy as np

BUFFER = 30  # frames kept per camera while waiting for partners


def tile(frames: list[np.ndarray]) -> np.ndarray:
    """Frames side by side, each scaled to the height of the first."""
    height = frames[0].shape[0]
    scaled = [f if f.shape[0] == height else
              cv2.resize(f, (max(1, round(f.shape[1] * height / f.shape[0])), height), interpolation=cv2.INTER_AREA)
              for f in frames]
    return np.ascontiguousarray(np.hstack(scaled))


class CameraSynchronizer:
    def __init__(self, num_cameras: int, slop: float):
        if num_cameras < 1:
            raise ValueError("need at least one camera")
        if slop < 0:
            raise ValueError(f"slop must not be negative, got {slop}")
        self.num_cameras = num_cameras
        self.slop = slop
        self.reset()

    def reset(self) -> None:
        self.buffers = [collections.deque(maxlen=BUFFER) for _ in range(self.num_cameras)]

    def add(self, camera: int, stamp: float, frame: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """Add one camera frame; returns the (stamp, tiled frame) pairs completed by it, oldest first."""
        if self.num_cameras == 1:
            return [(stamp, frame)]
        self.buffers[camera].append((stamp, frame))
        done = []
        leads = self.buffers[0]
        while leads:
            stamp0, frame0 = leads[0]
            matches, waiting = [frame0], False
            for other in self.buffers[1:]:
                near = [(abs(s - stamp0), f) for s, f in other if abs(s - stamp0) <= self.slop]
                newest = other[-1][0] if other else -np.inf
                if newest < stamp0 + self.slop:
                    waiting = True  # a nearer frame may still come
                    break
                if not near:
                    matches = None
                    break
                matches.append(min(near, key=lambda item: item[0])[1])
            if waiting:
                break
            leads.popleft()
            if matches is not None:
                done.append((stamp0, tile(matches)))
        return done
