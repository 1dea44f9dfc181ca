"""LiveEpisode, the node's live path without ROS: camera messages in on the test's thread, updates out
of a real inference thread (``LiveEpisode.score``). The model is a stand-in whose every update waits
until the test lets it finish, so "while the worker is busy" is a state the test holds, not a timing."""

import queue
import threading

import pytest

from topreward_ros.stream.episode import Episode
from topreward_ros.stream.episode_stream import EpisodeStream
from topreward_ros.stream.live import LiveEpisode
from topreward_ros.stream.reward_stream import RewardStream
from topreward_ros.stream.update import RewardUpdate
from topreward_ros.stream.settings import LIVE_SETTINGS, RewardSettings, SettingsError

TASK = "stack the cups"
FPS = 2.0
GUARD = 10.0  # seconds: only a deadlocked test waits this long


class HeldRewards:
    """A RewardStream stand-in: each update announces its frames on ``started`` and then waits for
    ``finish()``. Every call is logged in order, with the thread that made it."""

    def __init__(self):
        self.episode = None
        self.frames = 0
        self.log: list[tuple] = []
        self.started: queue.Queue = queue.Queue()
        self._gate = threading.Semaphore(0)
        self.fail_next = False

    def finish(self, updates: int = 1) -> None:
        for _ in range(updates):
            self._gate.release()

    def next_update(self) -> list[float]:
        """The stamps of the next update's frames, once it has begun."""
        return self.started.get(timeout=GUARD)

    def reset(self, episode):
        self.log.append(("reset", episode))
        self.episode, self.frames = episode, 0

    def change(self, **settings):
        self.log.append(("change", settings, threading.current_thread().name))

    def update(self, frames, task):
        self.log.append(("update", [f.stamp for f in frames]))
        self.started.put([f.stamp for f in frames])
        assert self._gate.acquire(timeout=GUARD)
        self.log.append(("updated",))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("CUDA error")
        self.frames += len(frames)
        newest = frames[-1]
        return RewardUpdate(episode=self.episode, task=task, stamp=newest.stamp, time=newest.time, reward=-1.0,
                            score=-1.0, progress=0.0, success=False, true_logprobs=(-1.0,), false_logprobs=(-2.0,),
                            frames=self.frames, stride=1, added=len(frames), skipped=0, latency_ms=1.0)


@pytest.fixture
def live_path():
    """(live, rewards, published, failures): an open LiveEpisode scored by a worker thread."""
    live = LiveEpisode(EpisodeStream(1, lambda items: items[0], sample_fps=FPS), TASK, backlog=10)
    rewards, published, failures = HeldRewards(), queue.Queue(), []

    def publish(update):
        published.put(update)
        return True

    live.open()
    worker = threading.Thread(target=live.score, args=(rewards, publish, failures.append), name="worker")
    worker.start()
    yield live, rewards, published, failures
    live.close()
    rewards.finish(100)
    worker.join(GUARD)
    assert not worker.is_alive()


def add_frames(live, *stamps):
    """One camera message per stamp, each sampled (1 / FPS apart): the frame is its stamp."""
    for stamp in stamps:
        assert len(live.add(0, stamp, stamp).sampled) == 1


def test_frames_arriving_while_the_worker_is_busy_merge_into_its_next_update(live_path):
    live, rewards, published, _ = live_path
    add_frames(live, 0.0)
    assert rewards.next_update() == [0.0]
    add_frames(live, 0.5, 1.0, 1.5)  # the model is busy with the first frame
    assert live.snapshot().waiting == 3
    rewards.finish()
    assert published.get(timeout=GUARD).added == 1
    assert rewards.next_update() == [0.5, 1.0, 1.5]  # one update for all three: none lost
    rewards.finish()
    merged = published.get(timeout=GUARD)
    assert (merged.added, merged.merged, merged.frames) == (3, 2, 4)
    counters = live.snapshot().counters
    assert (counters.sampled, counters.updates, counters.merged, counters.backlog_dropped) == (4, 2, 2, 0)


def test_a_full_backlog_refuses_the_newest_frames_and_counts_them(live_path):
    live, rewards, published, _ = live_path
    live.backlog = 2
    add_frames(live, 0.0)
    assert rewards.next_update() == [0.0]
    add_frames(live, 0.5, 1.0, 1.5, 2.0)  # two wait, the backlog is full, two are dropped
    snapshot = live.snapshot()
    assert snapshot.waiting == 2
    assert (snapshot.counters.sampled, snapshot.counters.backlog_dropped) == (3, 2)
    rewards.finish()
    assert rewards.next_update() == [0.5, 1.0]  # the frames kept are the oldest: the episode has no hole
    rewards.finish()
    assert [published.get(timeout=GUARD).frames for _ in range(2)] == [1, 3]
    add_frames(live, 2.5)  # room again
    assert rewards.next_update() == [2.5]


def test_an_update_of_an_episode_reset_while_it_was_scored_is_not_published(live_path):
    live, rewards, published, _ = live_path
    add_frames(live, 0.0)
    assert rewards.next_update() == [0.0]
    add_frames(live, 0.5)                  # waiting when the reset comes: discarded
    assert live.reset() == 2
    rewards.finish()                       # the update of episode 1 ends after the reset
    add_frames(live, 7.0)                  # the new episode's first frame (its frame clock restarted)
    assert rewards.next_update() == [7.0]  # the worker is past the stale update ...
    assert published.empty()               # ... and published nothing for it
    rewards.finish()
    update = published.get(timeout=GUARD)
    assert (update.episode, update.frames, update.added, update.time) == (2, 1, 1, 0.0)
    assert ("reset", 2) in rewards.log
    counters = live.snapshot().counters
    assert (counters.updates, counters.discarded, counters.sampled) == (1, 1, 3)


def test_a_changed_setting_reaches_the_model_between_updates_on_the_worker_thread(live_path):
    live, rewards, published, _ = live_path
    add_frames(live, 0.0)
    assert rewards.next_update() == [0.0]
    live.change_setting("success_threshold", -1)   # while the update runs
    live.change_setting("reward_type", "delta")
    assert not any(entry[0] == "change" for entry in rewards.log)
    rewards.finish()
    published.get(timeout=GUARD)
    assert not any(entry[0] == "change" for entry in rewards.log)  # not with the update it arrived during
    add_frames(live, 0.5)
    assert rewards.next_update() == [0.5]
    changes = [i for i, entry in enumerate(rewards.log) if entry[0] == "change"]
    assert len(changes) == 1
    _, settings, thread = rewards.log[changes[0]]
    assert settings == {"success_threshold": -1.0, "reward_type": "delta"} and thread == "worker"
    assert [entry[0] for entry in rewards.log[changes[0] - 1:]] == ["updated", "change", "update"]


def test_only_live_settings_change_and_only_to_valid_values(live_path):
    live, rewards, _, _ = live_path
    live_fields = [field.name for field, spec in RewardSettings.specs() if spec.live]
    assert LIVE_SETTINGS == tuple(live_fields) and "reward_type" in LIVE_SETTINGS
    with pytest.raises(SettingsError, match="cannot change while the stream runs"):
        live.change_setting("max_frames", 8)
    with pytest.raises(SettingsError, match="success_consecutive"):
        live.change_setting("success_consecutive", 0)
    add_frames(live, 0.0)
    assert rewards.next_update() == [0.0]
    assert not any(entry[0] == "change" for entry in rewards.log)  # nothing refused was queued


def test_reward_stream_change_sets_what_its_next_update_uses():
    stream = RewardStream(engine=None)  # change touches no engine
    stream.change(reward_type="progress", success_threshold=-2, success_consecutive=5)
    assert (stream.reward_type, stream.success.threshold, stream.success.consecutive) == ("progress", -2.0, 5)
    with pytest.raises(SettingsError):
        stream.change(reward_type="loud")


def test_a_failed_update_is_counted_and_the_next_one_goes_on(live_path):
    live, rewards, published, failures = live_path
    rewards.fail_next = True
    add_frames(live, 0.0)
    assert rewards.next_update() == [0.0]
    rewards.finish()
    add_frames(live, 0.5)
    assert rewards.next_update() == [0.5]
    assert [str(e) for e in failures] == ["CUDA error"]
    assert (live.snapshot().counters.failed_updates, live.snapshot().counters.failing_in_a_row) == (1, 1)
    rewards.finish()
    published.get(timeout=GUARD)
    assert live.snapshot().counters.failing_in_a_row == 0


def test_the_live_episode_hands_its_frames_out_as_an_episode():
    """The live source yields Episode like every other source (test_episodes.py): the frames sampled since
    the last batch, with their times from the episode's first frame, their stamps, its id and its task."""
    live = LiveEpisode(EpisodeStream(1, lambda items: items[0], sample_fps=FPS), TASK, backlog=10)
    live.open()
    add_frames(live, 10.0, 10.5)
    first = live.take()
    add_frames(live, 11.0)
    second = live.take()
    live.close()
    assert isinstance(first.episode, Episode) and isinstance(second.episode, Episode)
    assert (first.episode.source, first.episode.index, first.episode.task) == ("live", live.episode, TASK)
    assert (first.episode.frames, first.episode.times, first.episode.stamps) == ([10.0, 10.5], [0.0, 0.5], [10.0, 10.5])
    assert (second.episode.index, second.episode.times, second.episode.stamps) == (live.episode, [1.0], [11.0])
