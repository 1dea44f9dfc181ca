"""Reading an episode from a video file (mp4/avi/...) or a folder of images, sampled at a fixed rate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import TopRewardError
from ..stream.sampler import FrameSampler

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class VideoError(TopRewardError, ValueError):
    """A video or image folder that cannot be read."""


def read_episode(path: str | Path, fps: float | None) -> tuple[list[np.ndarray], list[float]]:
    """RGB frames and their times (seconds from the first frame).

    A video is sampled at ``fps`` from its own frame times (``None``: every frame); every image
    of a folder (in name order) is one frame, ``1/fps`` seconds apart.
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(f"no such file or folder: {path}")
    frames, times = _read_folder(path, fps) if path.is_dir() else _read_video(path, fps)
    if not frames:
        raise VideoError(f"{path}: no frames could be read")
    return frames, times


def _read_video(path: Path, fps: float) -> tuple[list[np.ndarray], list[float]]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: cannot open as a video (unsupported or corrupt file)")
    source_fps = capture.get(cv2.CAP_PROP_FPS)
    if not source_fps or source_fps <= 0 or not np.isfinite(source_fps):
        capture.release()
        raise VideoError(f"{path}: video has no frame rate")
    sampler = FrameSampler(fps) if fps is not None else None
    frames, times = [], []
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            t = index / source_fps if sampler is None else sampler.offer(index / source_fps)
            if t is not None:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                times.append(t)
            index += 1
    finally:
        capture.release()
    return frames, times


def _read_folder(path: Path, fps: float) -> tuple[list[np.ndarray], list[float]]:
    if fps is None or not fps > 0:
        raise VideoError(f"fps must be positive, got {fps}")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    frames = []
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise VideoError(f"{file}: not a readable image")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return frames, [i / fps for i in range(len(frames))]
