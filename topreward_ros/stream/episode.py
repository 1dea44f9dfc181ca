"""Episode: what every source yields (a bag's episodes, a video file, an image folder, a LeRobot episode, the
live episode); ``reward_stream.run_episode`` runs one through the reward stream."""

from __future__ import annotations

import dataclasses

import numpy as np

from .episode_stream import SampledFrame


@dataclasses.dataclass
class Episode:
    """An episode's sampled frames (HxWx3 uint8 RGB) in time order, each with its time in seconds from the
    episode's first frame and, where the source has them, its stamp (a header stamp, seconds)."""

    source: str          # where it came from: the bag, video file, image folder or LeRobot dataset
    index: int = 0       # which episode of its source: a bag's episode number, a LeRobot episode_index; 0 for a
                         # video file or an image folder
    task: str = ""       # "" where the source gives none (the caller supplies it)
    frames: list[np.ndarray] = dataclasses.field(default_factory=list)
    times: list[float] = dataclasses.field(default_factory=list)
    stamps: list[float] | None = None          # None where the source has no stamps
    frame_indices: list[int] | None = None     # each frame's number in its source (a video's, counted in
                                               # presentation order; a LeRobot frame_index), where it has them
    source_frames: int | None = None           # frames in the source before sampling, where known

    def static_control(self) -> Episode:
        """The static-video control: the first frame repeated at the episode's times (no stamps)."""
        return dataclasses.replace(self, frames=[self.frames[0]] * len(self.frames), stamps=None)

    def sampled(self, start: int = 0, stop: int | None = None) -> list[SampledFrame]:
        """Frames ``start`` to ``stop`` as the reward stream takes them (an episode without stamps is stamped
        with its times)."""
        stamps = self.stamps if self.stamps is not None else self.times
        return [SampledFrame(time, stamp, frame, False) for time, stamp, frame in
                zip(self.times[start:stop], stamps[start:stop], self.frames[start:stop])]
