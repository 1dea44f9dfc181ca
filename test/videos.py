"""Test videos written with PyAV, each in a child process.

SVT-AV1 (PyAV's AV1 encoder, as LeRobot records) moves the process that runs it to real-time
scheduling (SCHED_FIFO 99) when it may, as root in CI; every process started from it afterwards
inherits that, and two busy loops started by a later test then starve the whole suite. A child
process keeps that to itself.
"""

from __future__ import annotations

import multiprocessing
from fractions import Fraction
from pathlib import Path

import numpy as np


FINE_TIME_BASE = Fraction(1, 1000)  # presentation times of a video written with given frame times (ms)


def _encode(path: str, frames: np.ndarray, fps: int, codec: str, times: list[float] | None) -> None:
    import av

    time_base = Fraction(1, fps) if times is None else FINE_TIME_BASE
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = time_base
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i if times is None else round(times[i] / time_base)
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def write_video(path: Path, frames, fps: int, codec: str, times: list[float] | None = None) -> float:
    """Encode RGB ``frames`` at ``fps`` to ``path``; returns the video's duration in seconds. With ``times``
    (seconds, increasing, in ms), frame ``i`` is presented at ``times[i]`` instead of ``i / fps``: a
    variable-frame-rate video (``fps`` is then only its nominal rate) lasting until one period after the last."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if times is not None and len(times) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(times)} times")
    child = multiprocessing.get_context("spawn").Process(target=_encode,
                                                         args=(str(path), np.stack(frames), fps, codec, times))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"encoding {path} with {codec} failed (exit {child.exitcode})")
    return len(frames) / fps if times is None else times[-1] + 1 / fps
