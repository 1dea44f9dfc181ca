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


def _encode(path: str, frames: np.ndarray, fps: int, codec: str) -> None:
    import av

    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def write_video(path: Path, frames, fps: int, codec: str) -> float:
    """Encode RGB ``frames`` at ``fps`` to ``path``; returns the video's duration in seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    child = multiprocessing.get_context("spawn").Process(target=_encode,
                                                         args=(str(path), np.stack(frames), fps, codec))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"encoding {path} with {codec} failed (exit {child.exitcode})")
    return len(frames) / fps
