"""Episode: what every source yields (a bag's episodes, a video file, an image folder, a LeRobot episode), and
running episodes through the reward stream, one update per frame, as the node publishes them."""

from __future__ import annotations

import dataclasses

import numpy as np

from .episode_stream import SampledFrame
from .reward_stream import RewardStream, RewardUpdate, update_streams


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


def run_episode(rewards: RewardStream, episode: Episode) -> list[RewardUpdate]:
    """One update per frame through the reward stream, as the node publishes them: past max_frames a
    frame the stride skips has no update (the next one covers it, as live)."""
    updates = run_episodes([rewards], [episode])[0]
    if isinstance(updates, Exception):
        raise updates
    return updates


def run_episodes(streams: list[RewardStream], episodes: list[Episode]) -> list[list[RewardUpdate] | Exception]:
    """Episodes in lockstep, one reward stream each, whose engines are sessions of one pool: step t updates every
    episode that has a t-th frame, all in one forward. Each episode's updates equal ``run_episode``'s for that
    episode alone; an episode that fails gets its exception, the others go on."""
    for rewards in streams:
        rewards.reset()
    updates: list[list[RewardUpdate]] = [[] for _ in episodes]
    failed: dict[int, Exception] = {}
    for step in range(max((len(episode.frames) for episode in episodes), default=0)):
        batch = [k for k, episode in enumerate(episodes) if step < len(episode.frames) and k not in failed]
        requests = [(streams[k], episodes[k].sampled(step, step + 1), episodes[k].task) for k in batch]
        for k, result in zip(batch, update_streams(requests)):
            if isinstance(result, Exception):
                failed[k] = result
            elif result is not None:
                updates[k].append(result)
    return [failed.get(k, updates[k]) for k in range(len(episodes))]
