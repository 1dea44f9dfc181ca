"""Several cameras as one frame: pair by nearest header stamp within a slop, tile side by side.

Camera 0 leads: each of its messages waits until every other camera has one within
``slop`` seconds of it (the nearest one is taken) or can no longer get one (a newer one
arrived past the slop), in which case it is dropped. The synchronizer pairs opaque items
(messages or frames), so pixels are decoded only for the pairs that are sampled; ``tile``
then puts the decoded frames side by side. Works the same live and on bags.
"""

from __future__ import annotations

import collections
from typing import Any

import cv2
import numpy as np

BUFFER = 30  # items kept per camera while waiting for partners


def tile(frames: list[np.ndarray]) -> np.ndarray:
    """Frames side by side, each scaled to the height of the first."""
    if len(frames) == 1:
        return frames[0]
    height = frames[0].shape[0]
    scaled = [f if f.shape[0] == height else
              cv2.resize(f, (max(1, round(f.shape[1] * height / f.shape[0])), height), interpolation=cv2.INTER_AREA)
              for f in frames]
    return np.ascontiguousarray(np.hstack(scaled))


class CameraSynchronizer:
    def __init__(self, num_cameras: int, slop: float):
        if num_cameras < 1:
            raise ValueError("need at least one camera")
        if not slop >= 0:
            raise ValueError(f"slop must not be negative, got {slop}")
        self.num_cameras = num_cameras
        self.slop = slop
        self.reset()

    def reset(self) -> None:
        self.buffers: list[collections.deque[tuple[float, Any]]] = [
            collections.deque(maxlen=BUFFER) for _ in range(self.num_cameras)]

    def add(self, camera: int, stamp: float, item: Any) -> list[tuple[float, list[Any]]]:
        """Add one camera's item; returns the (lead stamp, one item per camera) groups it completes, oldest first."""
        if self.num_cameras == 1:
            return [(stamp, [item])]
        self.buffers[camera].append((stamp, item))
        done = []
        leads = self.buffers[0]
        while leads:
            stamp0, item0 = leads[0]
            matches, waiting, complete = [item0], False, True
            for other in self.buffers[1:]:
                near = [(abs(s - stamp0), i) for s, i in other if abs(s - stamp0) <= self.slop]
                newest = other[-1][0] if other else -np.inf
                if newest < stamp0 + self.slop:
                    waiting = True  # a nearer one may still come
                    break
                if not near:
                    complete = False
                    break
                matches.append(min(near, key=lambda pair: pair[0])[1])
            if waiting:
                break
            leads.popleft()
            if complete:
                done.append((stamp0, matches))
        return done
