"""The node's episode: camera messages in on one thread, batches of sampled frames out on another.

All episode state of the live path lives here: the episode id and task, the frame stream
(pairing, sampling, restarts), the frames sampled but not yet scored, and the counters the
node reports. The subscription thread calls ``add``; the inference thread calls ``take``,
which waits and returns every frame sampled since its last call (one episode at a time, as an
Episode holding that part of it), so a slow model merges updates and never loses a sampled frame.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from .episode import Episode
from .episode_stream import Added, EpisodeStream, SampledFrame

LIVE = "live"  # the source of the node's episodes


@dataclasses.dataclass
class Counters:
    received: int = 0          # camera messages
    bad_messages: int = 0      # messages that could not be read (bad stamp, encoding, size, decode)
    sampled: int = 0           # frames taken into an episode
    discarded: int = 0         # sampled frames of an episode reset before they were scored
    backlog_dropped: int = 0   # sampled frames refused because the backlog was full
    updates: int = 0           # published updates
    merged: int = 0            # updates merged into later ones (frames scored beyond one per update)
    stride_skipped: int = 0    # sampled frames the engine's stride skipped alone (no update; see RewardStream)
    failed_updates: int = 0
    failing_in_a_row: int = 0
    restarts: int = 0          # episodes started by stamps going back or jumping
    late: int = 0              # messages (camera groups) dropped: stamped within the tolerance before the previous


class LiveEpisode:
    """``backlog`` bounds the frames waiting for the model (the engine keeps at most max_frames anyway).
    Episode ids go on from ``last_episode``; the first ``open`` starts the next one."""

    def __init__(self, stream: EpisodeStream, task: str, backlog: int, last_episode: int = 0):
        self.stream = stream
        self.task = task
        self.backlog = backlog
        self.episode = last_episode
        self.counters = Counters()
        self.last_message: float | None = None   # monotonic time of the last camera message
        self.last_sample: float | None = None    # ... of the last sampled frame
        self.last_update: float | None = None    # ... of the last published update
        self._pending: list[tuple[int, str, SampledFrame]] = []
        self._open = False
        self._reset_through = 0    # updates of episodes up to this id are stale (reset by the user)
        self._cond = threading.Condition()

    # -- producer side (subscription thread) ---------------------------------------------
    def note_message(self) -> None:
        with self._cond:
            self.counters.received += 1
            self.last_message = time.monotonic()

    def note_bad_message(self) -> None:
        with self._cond:
            self.counters.bad_messages += 1

    def add(self, camera: int, stamp: float, message) -> Added:
        """Pair, sample and convert one camera message (``note_message`` first). Nothing is sampled
        while there is no task or the consumer is stopped."""
        with self._cond:
            if not self.task or not self._open:
                return Added()
            added = self.stream.add(camera, stamp, message)
            self.counters.bad_messages += len(added.errors)
            self.counters.late += added.late
            for sampled in added.sampled:
                if sampled.new_episode:
                    self.episode += 1
                    self.counters.restarts += 1
                if len(self._pending) >= self.backlog:
                    self.counters.backlog_dropped += 1
                    continue
                self._pending.append((self.episode, self.task, sampled))
                self.counters.sampled += 1
                self.last_sample = time.monotonic()
            if added.sampled:
                self._cond.notify_all()
            return added

    def reset(self, task: str | None = None) -> int:
        """Start a new episode (optionally with a new task); frames not yet scored are discarded."""
        with self._cond:
            if task is not None:
                self.task = task
            return self._new_episode()

    def _new_episode(self) -> int:
        self.episode += 1
        self._reset_through = self.episode - 1
        self.counters.discarded += len(self._pending)
        self._pending.clear()
        self.stream.reset()
        return self.episode

    # -- consumer side (inference thread) ------------------------------------------------
    def open(self) -> None:
        """Start sampling, always into a new episode: a re-activation never continues the last one
        (its frame clock restarts, and the robot may have moved while the node was inactive)."""
        with self._cond:
            self._open = True
            self._new_episode()

    def close(self) -> None:
        """Stop sampling and wake the consumer; ``take`` returns None from now on."""
        with self._cond:
            self._open = False
            self.counters.discarded += len(self._pending)
            self._pending.clear()
            self._cond.notify_all()

    def take(self) -> Episode | None:
        """Wait for sampled frames; every pending frame of the oldest episode (the part of it sampled since the
        last take, timed from its first frame, with header stamps), or None once closed."""
        with self._cond:
            while self._open and not self._pending:
                self._cond.wait()
            if not self._open:
                return None
            episode, task, _ = self._pending[0]
            # a task change starts a new episode, so the episode id alone separates batches
            count = next((i for i, (e, _, _) in enumerate(self._pending) if e != episode), len(self._pending))
            frames = [sampled for _, _, sampled in self._pending[:count]]
            del self._pending[:count]
            return Episode(LIVE, episode, task, frames=[f.frame for f in frames], times=[f.time for f in frames],
                           stamps=[f.stamp for f in frames])

    def is_current(self, episode: int) -> bool:
        """False once the user reset past this episode: its update is stale and not published."""
        with self._cond:
            return self._open and episode > self._reset_through

    def record_update(self, merged: int) -> None:
        with self._cond:
            self.counters.updates += 1
            self.counters.merged += merged
            self.counters.failing_in_a_row = 0
            self.last_update = time.monotonic()

    def record_skipped(self, frames: int) -> None:
        """Frames the stride skipped without an update: the next update's ``added`` covers them."""
        with self._cond:
            self.counters.stride_skipped += frames
            self.counters.failing_in_a_row = 0

    def record_failure(self) -> None:
        with self._cond:
            self.counters.failed_updates += 1
            self.counters.failing_in_a_row += 1

    def snapshot(self) -> tuple[Counters, str, int, int]:
        """Counters, task, episode id and frames waiting, read together."""
        with self._cond:
            return dataclasses.replace(self.counters), self.task, self.episode, len(self._pending)
