"""Frames at one fixed resolution, grouped into the pairs Qwen3-VL encodes together."""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np

from ..errors import TopRewardError

FRAME_MULTIPLE = 32  # one LM token covers 32x32 pixels (patch 16, 2x2 merge)
DEFAULT_RESOLUTION = (512, 384)
MAX_FRAME_SIDE = 2048  # pixels a side at most (the node's resolution_width/height range)


class FrameError(TopRewardError, ValueError):
    """Frames that cannot be scored."""


def parse_resolution(text: str) -> tuple[int, int]:
    """'WIDTHxHEIGHT' -> (width, height); both positive multiples of 32."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise FrameError(f"resolution must look like 512x384, got {text!r}") from exc
    check_resolution((width, height))
    return width, height


def check_resolution(resolution: tuple[int, int]) -> None:
    width, height = resolution
    if not all(0 < side <= MAX_FRAME_SIDE and side % FRAME_MULTIPLE == 0 for side in (width, height)):
        raise FrameError(f"resolution {width}x{height}: width and height must be multiples of {FRAME_MULTIPLE} "
                         f"from {FRAME_MULTIPLE} to {MAX_FRAME_SIDE}")


def check_frame(frame: Any, what: str = "frame") -> np.ndarray:
    """``frame`` if it is a non-empty HxWx3 uint8 RGB array; else a FrameError naming ``what`` and what it is."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"{what} must be an HxWx3 uint8 RGB image, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise FrameError(f"{what} must be an HxWx3 uint8 RGB image, got shape {frame.shape} {frame.dtype}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"{what} has zero size (shape {frame.shape})")
    return frame


def resize_frame(frame: np.ndarray, resolution: tuple[int, int]) -> np.ndarray:
    """An RGB uint8 frame resized to (width, height); all frames of an episode share one size."""
    check_frame(frame)
    width, height = resolution
    if frame.shape[:2] == (height, width):
        return np.ascontiguousarray(frame)
    interpolation = cv2.INTER_AREA if frame.shape[1] > width else cv2.INTER_LINEAR
    return cv2.resize(frame, (width, height), interpolation=interpolation)


@dataclasses.dataclass(frozen=True)
class FramePair:
    """Two consecutive frames (2, H, W, 3) and the timestamp Qwen3-VL shows for them (their mean time)."""

    frames: np.ndarray
    timestamp: float


def pair_frames(frames: list[np.ndarray], times: list[float]) -> list[FramePair]:
    """Consecutive pairs; an odd last frame is paired with itself, as the processor pads a video."""
    if len(frames) != len(times):
        raise FrameError(f"{len(frames)} frames but {len(times)} timestamps")
    if not frames:
        raise FrameError("no frames to score")
    pairs = []
    for i in range(0, len(frames), 2):
        j = min(i + 1, len(frames) - 1)
        pairs.append(FramePair(np.stack([frames[i], frames[j]]), (times[i] + times[j]) / 2))
    return pairs
