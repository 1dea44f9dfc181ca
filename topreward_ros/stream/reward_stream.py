"""Sampled frames -> reward updates: what the node publishes, reused offline.

The streaming engine scores the episode so far; beside the raw score an update carries
the causal progress, the latched success flag and the reward of the chosen ``reward_type``.
Several frames may go into one update (a slow model merges updates rather than losing
frames): they are all added to the episode and scored once. The bag tools feed one frame
per update, so offline reports hold the series the node publishes for the same frames.

Past ``max_frames`` the engine keeps only every ``stride``-th frame. An update whose frames
the stride all skipped leaves the episode unchanged: it is not scored and yields no update
(None), and its frames are counted in the next update's ``added`` and ``skipped``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..errors import TopRewardError
from ..method.engine import StreamingEngine
from ..method.model import load_reward_model
from ..method.sessions import SessionPool
from .episode import Episode
from .episode_stream import SampledFrame
from .online import DEFAULT_SUCCESS_CONSECUTIVE, DEFAULT_SUCCESS_THRESHOLD, CausalProgress, SuccessDetector
from .settings import REWARD_TYPES, RewardSettings, checked_live
from .update import RewardUpdate


class RewardStreamError(TopRewardError, ValueError):
    """A reward setting that cannot be used."""


def check_reward_type(reward_type: str) -> str:
    if reward_type not in REWARD_TYPES:
        raise RewardStreamError(f"reward_type must be one of {', '.join(REWARD_TYPES)}, got {reward_type!r}")
    return reward_type


class RewardStream:
    """One episode at a time (``reset()`` starts the next). Not thread-safe: one consumer."""

    def __init__(self, engine: StreamingEngine, reward_type: str = REWARD_TYPES[0],
                 success_threshold: float = DEFAULT_SUCCESS_THRESHOLD,
                 success_consecutive: int = DEFAULT_SUCCESS_CONSECUTIVE):
        self.engine = engine
        self.reward_type = check_reward_type(reward_type)
        self.progress = CausalProgress()
        self.success = SuccessDetector(success_threshold, success_consecutive)
        self.episode: int | None = None
        self._previous: float | None = None
        self._unreported = 0  # frames of failed updates: in the episode, covered by the next update
        self._skipped = 0     # frames the stride skipped since the last update: covered by the next one

    @classmethod
    def from_settings(cls, settings: RewardSettings, reward_model=None, pool: SessionPool | None = None
                      ) -> "RewardStream":
        """The pipeline every front door builds: the model of ``settings`` (loaded unless ``reward_model`` is
        given) scoring one episode at a time, in a pool of its own or as a session of ``pool`` (made by
        ``session_pool``), whose sessions ``update_streams`` scores in one forward."""
        if pool is None:
            pool = session_pool(settings, reward_model if reward_model is not None
                                else load_reward_model(settings.model_config()), capacity=1)
        return cls(StreamingEngine.in_pool(pool), settings.reward_type, settings.success_threshold,
                   settings.success_consecutive)

    def reset(self, episode: int | None = None) -> None:
        self.engine.reset()
        self.progress.reset()
        self.success.reset()
        self.episode = episode
        self._previous = None
        self._unreported = 0
        self._skipped = 0

    def change(self, **settings) -> None:
        """Change settings that may change while the stream runs (``settings.LIVE_SETTINGS``), from the
        next update on; a SettingsError for any other setting or a value out of range."""
        settings = checked_live(settings)
        self.reward_type = settings.get("reward_type", self.reward_type)
        self.success.threshold = settings.get("success_threshold", self.success.threshold)
        self.success.consecutive = settings.get("success_consecutive", self.success.consecutive)

    def check_task(self, task: str) -> str:
        """The task, stripped, if every prompt renders with it (length, no special tokens); else an error."""
        return self.engine.check_task(task)

    def update(self, frames: Sequence[SampledFrame], task: str) -> RewardUpdate | None:
        """Add ``frames`` (in time order) to the episode and score it once; None (nothing scored)
        when the engine's stride skipped every one of them."""
        result = update_streams([(self, frames, task)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def _failed(self, frames: int) -> None:
        self.engine.invalidate()  # the frames stay; the caches are rebuilt by the next update
        self._unreported += frames

    def _publish(self, result, frames: Sequence[SampledFrame], task: str, start: float) -> RewardUpdate:
        skipped = self._skipped
        added = len(frames) + self._unreported + skipped
        self._unreported = self._skipped = 0
        score = result.score.value
        progress = self.progress.update(score)
        success = self.success.update(score)
        reward = {"logprob": score, "progress": progress,
                  "delta": 0.0 if self._previous is None else score - self._previous}[self.reward_type]
        self._previous = score
        newest = frames[-1]
        return RewardUpdate(
            episode=-1 if self.episode is None else self.episode, task=task, stamp=newest.stamp, time=newest.time,
            reward=reward, score=score, progress=progress, success=success,
            true_logprobs=result.score.true_logprobs, false_logprobs=result.score.false_logprobs,
            frames=result.num_frames, stride=result.stride, added=added, skipped=skipped,
            latency_ms=(time.perf_counter() - start) * 1e3)


def session_pool(settings: RewardSettings, reward_model, capacity: int) -> SessionPool:
    """A pool for ``capacity`` reward streams of ``settings`` on one loaded model."""
    return SessionPool(reward_model, settings.scoring, settings.max_frames, capacity=capacity)


def update_streams(requests: Sequence[tuple[RewardStream, Sequence[SampledFrame], str]]
                   ) -> list[RewardUpdate | Exception | None]:
    """Update several reward streams, whose engines are sessions of one SessionPool, in one forward.

    Each request is (stream, new frames, task) and gets the update ``stream.update`` would give (None when
    the stride skipped all its frames), or the exception that update would raise: a stream whose frames are
    refused fails alone; if the forward fails, every stream in it fails with that error (its frames stay in its
    episode, as after a failed update).
    """
    start = time.perf_counter()
    results: list[RewardUpdate | Exception | None] = [None] * len(requests)  # None: nothing scored
    scored: dict[int, int] = {}  # session id -> request
    for k, (stream, frames, _) in enumerate(requests):
        if not frames:
            results[k] = RewardStreamError("an update needs at least one frame")
            continue
        try:
            kept = [stream.engine.add_frame(sampled.frame, sampled.time) for sampled in frames]
        except Exception as exc:  # noqa: BLE001 - handed back to this request's caller
            stream._failed(len(frames))
            results[k] = exc
            continue
        if not any(kept):
            stream._skipped += len(frames)
            continue
        scored[stream.engine.session_id] = k
    if scored:
        pool = requests[next(iter(scored.values()))][0].engine.pool
        try:
            scores = pool.score({session_id: requests[k][2] for session_id, k in scored.items()})
        except Exception as exc:  # noqa: BLE001 - every stream in the forward failed with it
            for k in scored.values():
                requests[k][0]._failed(len(requests[k][1]))
                results[k] = exc
        else:
            for session_id, k in scored.items():
                stream, frames, task = requests[k]
                results[k] = stream._publish(scores[session_id], frames, task, start)
    return results


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
