"""The node's episode: camera messages in on one thread, reward updates out of another.

All state of the live path lives here: the episode id and task, the frame stream (pairing, sampling,
restarts), the frames sampled but not yet scored, the settings changed but not yet applied, and every
counter the node reports (``snapshot``). The subscription thread calls ``add``; the inference thread
runs ``score``, which takes every frame sampled since its last update (one episode at a time), so a
slow model merges updates and never loses a sampled frame. Settings changed at run time
(``change_setting``, from any thread) reach the RewardStream, which is not thread-safe, only through
the inference thread, between two updates.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable

from .episode import Episode
from .episode_stream import Added, EpisodeStream, SampledFrame
from .reward_stream import RewardStream
from .update import RewardUpdate
from .settings import checked_live

LATENCY_WINDOW = 50  # updates whose model time the snapshot keeps


@dataclasses.dataclass
class Counters:
    received: int = 0          # camera messages
    bad_messages: int = 0      # messages that could not be read (bad stamp, encoding, size, decode)
    zero_stamps: int = 0       # messages stamped zero (the receive time was used)
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


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The live path's state and counters, read together (for /diagnostics). Times are monotonic."""

    counters: Counters
    task: str
    episode: int
    waiting: int                        # frames sampled, not yet scored
    opened: float | None                # sampling last started (``open``)
    last_message: float | None          # the last camera message arrived
    last_sample: float | None           # the last frame was sampled
    latencies_ms: tuple[float, ...]     # model time of the last LATENCY_WINDOW published updates
    last_update: RewardUpdate | None    # the last published update


@dataclasses.dataclass(frozen=True)
class Batch:
    episode: Episode  # the live episode's frames sampled since the last batch (times from its first frame)
    settings: dict    # settings changed since the last batch, to apply before scoring it


class LiveEpisode:
    """``backlog`` bounds the frames waiting for the model (the engine keeps at most max_frames anyway).
    Episode ids go on from ``last_episode``; the first ``open`` starts the next one."""

    def __init__(self, stream: EpisodeStream, task: str, backlog: int, last_episode: int = 0):
        self.stream = stream
        self.task = task
        self.backlog = backlog
        self.episode = last_episode
        self.counters = Counters()
        self._opened: float | None = None
        self._last_message: float | None = None
        self._last_sample: float | None = None
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._last_update: RewardUpdate | None = None
        self._pending: list[tuple[int, str, SampledFrame]] = []
        self._settings: dict = {}  # changed, not yet applied
        self._open = False
        self._reset_through = 0    # updates of episodes up to this id are stale (reset by the user)
        self._cond = threading.Condition()

    # -- producer side (subscription and executor threads) ---------------------------------
    def note_message(self) -> None:
        with self._cond:
            self.counters.received += 1
            self._last_message = time.monotonic()

    def note_bad_message(self) -> None:
        with self._cond:
            self.counters.bad_messages += 1

    def note_zero_stamp(self) -> None:
        with self._cond:
            self.counters.zero_stamps += 1

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
                self._last_sample = time.monotonic()
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

    def change_setting(self, name: str, value) -> None:
        """Change a live setting (``settings.LIVE_SETTINGS``; else a SettingsError, as for a value out of
        range): the inference thread applies it before its next update."""
        checked = checked_live({name: value})
        with self._cond:
            self._settings.update(checked)

    def open(self) -> None:
        """Start sampling, always into a new episode: a re-activation never continues the last one
        (its frame clock restarts, and the robot may have moved while the node was inactive)."""
        with self._cond:
            self._open = True
            self._opened = time.monotonic()
            self._new_episode()

    def close(self) -> None:
        """Stop sampling and wake the consumer; ``take`` returns None from now on."""
        with self._cond:
            self._open = False
            self.counters.discarded += len(self._pending)
            self._pending.clear()
            self._cond.notify_all()

    def snapshot(self) -> Snapshot:
        with self._cond:
            return Snapshot(dataclasses.replace(self.counters), self.task, self.episode, len(self._pending),
                            self._opened, self._last_message, self._last_sample, tuple(self._latencies),
                            self._last_update)

    # -- consumer side (inference thread) ------------------------------------------------
    def score(self, rewards: RewardStream, publish: Callable[[RewardUpdate], bool],
              failed: Callable[[Exception], None]) -> None:
        """The inference thread: score every batch and publish its update, until ``close`` (or until
        ``publish`` returns False). An update that raises goes to ``failed`` and the thread goes on (its
        frames stay in the episode: the next update covers them); an update of an episode reset while it
        was scored is stale and dropped."""
        while (batch := self.take()) is not None:
            if batch.settings:
                rewards.change(**batch.settings)
            episode = batch.episode
            if episode.index != rewards.episode:
                rewards.reset(episode.index)
            try:
                update = rewards.update(episode.sampled(), episode.task)
            except Exception as exc:  # noqa: BLE001 - an update must never take the thread down
                self._record_failure()
                failed(exc)
                continue
            if update is None:  # the stride skipped these frames: the episode is unchanged, nothing is new
                self._record_skipped(len(episode.frames))
                continue
            with self._cond:  # a reset waits until the update is published or dropped
                if not (self._open and update.episode > self._reset_through):
                    continue
                self._record_update(update)
                if not publish(update):
                    return

    def take(self) -> Batch | None:
        """Wait for sampled frames; every pending frame of the oldest episode, or None once closed."""
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
            settings, self._settings = self._settings, {}
            return Batch(Episode("live", episode, task, [f.frame for f in frames], [f.time for f in frames],
                                 [f.stamp for f in frames]), settings)

    def _record_update(self, update: RewardUpdate) -> None:
        self.counters.updates += 1
        self.counters.merged += update.merged
        self.counters.failing_in_a_row = 0
        self._latencies.append(update.latency_ms)
        self._last_update = update

    def _record_skipped(self, frames: int) -> None:
        """Frames the stride skipped without an update: the next update's ``added`` covers them."""
        with self._cond:
            self.counters.stride_skipped += frames
            self.counters.failing_in_a_row = 0

    def _record_failure(self) -> None:
        with self._cond:
            self.counters.failed_updates += 1
            self.counters.failing_in_a_row += 1
