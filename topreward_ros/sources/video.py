"""Reading an episode from a video file (mp4/avi/...) or a folder of images, and the one video decoder, which
the LeRobot reader uses too.

Videos are decoded with PyAV, whose wheel bundles dav1d: LeRobot records AV1 by default, which OpenCV's
FFmpeg build cannot decode. Frames are timed by their presentation timestamps, so a variable-frame-rate video
is sampled by when its frames are shown, not by their count over a nominal rate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ..errors import TopRewardError
from ..stream.episode import Episode
from ..stream.sampler import FrameSampler

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class VideoError(TopRewardError, ValueError):
    """A video, an image folder or an image that cannot be read."""


def read_episode(path: str | Path, sample_fps: float | None) -> Episode:
    """A video file or a folder of images as one episode (its task is the caller's).

    A video is sampled at ``sample_fps`` by its frames' presentation times (``None``: every frame); every image of
    a folder (in name order) is one frame, ``1/sample_fps`` seconds apart.
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(f"no such file or folder: {path}")
    if path.is_dir():
        return _read_folder(path, sample_fps)
    sampler = FrameSampler(sample_fps) if sample_fps is not None else None
    video = decode_video(path, lambda number, time: sampler is None or sampler.offer(time) is not None)
    if not video.frames:
        raise VideoError(f"{path}: no frames could be read")
    return Episode(str(path), frames=video.frames, times=video.times, frame_indices=video.numbers,
                   source_frames=video.total)


@dataclasses.dataclass
class DecodedVideo:
    """The frames kept from a span of a video, with their times and numbers in the span."""

    frames: list[np.ndarray]   # RGB
    times: list[float]         # seconds from the span's first frame, by presentation time
    numbers: list[int]         # 0 = the span's first frame, in presentation order
    total: int                 # frames in the span


def decode_video(path: Path, keep: Callable[[int, float], bool], start: float = -math.inf, end: float = math.inf,
                 count: int | None = None, what: str = "") -> DecodedVideo:
    """Decode the frames presented from ``start`` to before ``end`` (seconds; at most ``count`` frames) of a video
    and convert to RGB those that ``keep(number, time)`` takes (their number and time in the span, in order).
    ``what`` names the video in errors (default its path)."""
    import av
    import av.error

    what = what or str(path)
    if not path.is_file():
        raise VideoError(f"{what}: no such video file")
    video = DecodedVideo([], [], [], 0)
    first_pts = None
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise VideoError(f"{what}: cannot open as a video ({_reason(exc)})") from exc
    try:
        with container:
            if not container.streams.video:
                raise VideoError(f"{what}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = decoder_threads(av)
            if start > 0 and stream.time_base:
                container.seek(int(start / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None or frame.time_base is None or frame.time < start:
                    continue
                if frame.time >= end or video.total == count:
                    break
                first_pts = frame.pts if first_pts is None else first_pts
                number, time = video.total, float((frame.pts - first_pts) * frame.time_base)
                video.total += 1
                if keep(number, time):
                    video.frames.append(frame.to_ndarray(format="rgb24"))
                    video.times.append(time)
                    video.numbers.append(number)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{what}: cannot decode: {_reason(exc)}") from exc
    return video


def decoder_threads(av) -> str:
    """PyAV's thread_type for decoding. Before PyAV 13, FFmpeg's log messages go through Python: frame threads
    then need the GIL while a container is closed holding it, and a container the garbage collector closed
    after an early end of decoding hung for good (seen with PyAV 12 in the lowest tested set). Slice threads
    are idle between decode calls, so they are used there; frame threads from PyAV 13 on."""
    return "AUTO" if int(av.__version__.split(".")[0]) >= 13 else "SLICE"


def _reason(exc: Exception) -> str:
    """PyAV's message without the errno and the file name (the caller names the file)."""
    return " ".join(str(getattr(exc, "strerror", None) or exc).split())


def _read_folder(path: Path, fps: float | None) -> Episode:
    if fps is None or not fps > 0:
        raise VideoError(f"fps must be positive, got {fps}")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    frames = []
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise VideoError(f"{file}: not a readable image")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if not frames:
        raise VideoError(f"{path}: no frames could be read")
    return Episode(str(path), frames=frames, times=[i / fps for i in range(len(frames))],
                   frame_indices=list(range(len(frames))), source_frames=len(frames))
