"""Scoring one episode of a collection: reads its frames where it runs (a bag, a video file, a LeRobot
episode) and scores them through the node's reward stream, one update per sampled frame (exactly what the
node publishes for those frames, ``stream.episode.run_episode``), plus its static-video control (the first frame
repeated at the same times). Work arrives as a small descriptor (a ``Job``: an ``Item`` and an episode
number), so a Ray cluster never ships frames around. Bad input of any kind is recorded on its episode.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import socket
import time

from ..errors import TopRewardError
from ..method.sessions import session_cache_bytes
from ..method.model import load_reward_model
from ..outputs import json_safe
from ..sources import lerobot, video
from ..sources.bags import BagEpisodes, read_episodes
from ..sources.collections import Item, part_name
from ..sources.image_messages import DEFAULT_IMAGE_TOPIC
from ..stream.episode import Episode
from ..stream.episode_stream import DEFAULT_MAX_GAP
from ..stream.reward_stream import RewardStream, run_episodes, session_pool
from ..stream.update import RewardUpdate
from ..stream.settings import RewardSettings
from .annotation_records import EpisodeRow, FrameRow, Status
from .metrics import voc


class AnnotateError(TopRewardError):
    """A run that cannot start as asked (its output folder, its workers)."""


# ----------------------------------------------------------------------------------------------- settings

@dataclasses.dataclass(frozen=True)
class BagOptions:
    """How bags are read and split: topreward-eval-bag's options (the sampling ones are in RewardSettings)."""

    image_topics: tuple[str, ...] = (DEFAULT_IMAGE_TOPIC,)
    split: str = "bag"
    marker_topic: str | None = "/episode"
    max_gap: float = DEFAULT_MAX_GAP       # the stamp gap that starts an episode (--gap with split=gap)


@dataclasses.dataclass(frozen=True)
class AnnotateSettings:
    """Everything that decides the scores; picklable, sent to every worker."""

    reward: RewardSettings = RewardSettings()
    task: str | None = None                              # default task: videos, bag episodes without a marker
    listed_tasks: tuple[tuple[int, str], ...] = ()       # bag episode -> task (--episodes-yaml), every bag
    bag: BagOptions = BagOptions()
    cameras: tuple[str, ...] = ()                         # LeRobot camera keys (default: every camera)

    def fingerprint(self) -> dict:
        """What a resumed run must share with the run it continues (the device may differ)."""
        reward = {name: value for name, value in self.reward.record().items()
                  if name not in ("device", "prompts_file")}  # the prompts themselves are compared
        return json_safe({
            **reward, "prompts": list(self.reward.scoring.prompts), "task": self.task,
            "listed_tasks": [list(p) for p in self.listed_tasks],
            "bag": {**dataclasses.asdict(self.bag), "image_topics": list(self.bag.image_topics)},
            "cameras": list(self.cameras)})


@dataclasses.dataclass
class Job:
    """One episode to score: ``episode`` is the bag's episode number, the LeRobot episode_index, or 0."""

    item: Item
    episode: int
    attempts: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def key(self) -> str:
        return part_name(self.item.source, self.item.name, self.episode)

    def row(self) -> EpisodeRow:
        """The episode's row of the episode table, before anything is read: its identity."""
        item = self.item
        return EpisodeRow(source=item.source, item=item.name, kind=item.kind, path=item.path, episode=self.episode)


@dataclasses.dataclass
class Outcome:
    """One scored (or failed) episode: its row of the episode table and its rows of the frame table."""

    row: EpisodeRow
    frames: list[FrameRow] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class JobResult:
    outcome: Outcome
    episodes_in_item: int | None = None   # a bag: how many episodes it has (None when it could not be read)


# ----------------------------------------------------------------------------------------------- the worker

CPU_BATCH_EPISODES = 4   # measured on a 2-core CPU: 1.2-1.45x the episodes per hour of one at a time
GPU_BATCH_EPISODES = 8   # at most, on a GPU with the memory for them


def default_batch_episodes(reward_model, settings: AnnotateSettings) -> int:
    """Episodes a worker scores at once by default (measured: docs/PERFORMANCE.md). On a GPU as many as its
    free memory holds, up to GPU_BATCH_EPISODES: an episode is two sessions (curve and static control), each
    with a full KV cache, held twice while their rows are batched."""
    if reward_model.device.type != "cuda":
        return CPU_BATCH_EPISODES
    import torch

    free, _ = torch.cuda.mem_get_info(reward_model.device)
    text_config = reward_model.model.model.config.text_config
    per_episode = 4 * session_cache_bytes(text_config, settings.reward.resolution, settings.reward.max_frames,
                                          reward_model.dtype)
    return max(1, min(GPU_BATCH_EPISODES, int(0.8 * free) // per_episode))


@dataclasses.dataclass
class _Read:
    """An episode read and ready to score."""

    job: Job
    row: EpisodeRow
    episode: Episode
    episodes_in_item: int | None
    start: float


class Annotator:
    """Reads and scores episodes with one model: up to ``batch_episodes`` at once, their reward streams
    sessions of one pool, scored in lockstep (one forward per step). Runs in the driver or in a Ray actor."""

    def __init__(self, settings: AnnotateSettings, reward_model=None, batch_episodes: int | None = None):
        self.settings = settings
        self.reward_model = (reward_model if reward_model is not None
                             else load_reward_model(settings.reward.model_config()))
        self.batch_episodes = batch_episodes or default_batch_episodes(self.reward_model, settings)
        # each episode has two streams: its curve and its static-video control
        pool = session_pool(settings.reward, self.reward_model, capacity=2 * self.batch_episodes)
        self.streams = [RewardStream.from_settings(settings.reward, pool=pool) for _ in range(2 * self.batch_episodes)]
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._bag: tuple[str, BagEpisodes | Exception] | None = None   # (path, the bag or the error reading it)

    def run(self, jobs: list[Job]) -> list[JobResult]:
        """Score the jobs (at most ``batch_episodes``); one result per job, in order."""
        if len(jobs) > self.batch_episodes:
            raise AnnotateError(f"{len(jobs)} jobs for a worker that scores {self.batch_episodes} at once")
        results: dict[int, JobResult] = {}   # job number -> its result
        ready: list[tuple[int, _Read]] = []
        for i, job in enumerate(jobs):
            read = self._read(job)
            if isinstance(read, JobResult):
                results[i] = read
            else:
                ready.append((i, read))
        episodes = []
        for _, read in ready:
            episodes += [read.episode, read.episode.static_control()]
        scored = run_episodes(self.streams[:len(episodes)], episodes)
        for n, (i, read) in enumerate(ready):
            updates, static = scored[2 * n], scored[2 * n + 1]
            if isinstance(updates, Exception):
                results[i] = self._failed(read.row, updates, read.start, read.episodes_in_item)
            elif isinstance(static, Exception):
                results[i] = self._failed(read.row, static, read.start, read.episodes_in_item)
            else:
                results[i] = self._scored(read, updates, static)
        return [results[i] for i in range(len(jobs))]

    def _read(self, job: Job) -> _Read | JobResult:
        """The episode's frames, or its failed result."""
        item, start = job.item, time.perf_counter()
        row = job.row()
        episodes_in_item = None
        try:
            if item.error:
                raise TopRewardError(item.error)
            if item.kind == "bag":
                bag = self._read_bag(item.path)
                episodes_in_item = row.episodes_in_item = len(bag.episodes)
                if job.episode >= len(bag.episodes):
                    raise TopRewardError(f"the bag has {len(bag.episodes)} episodes, not {job.episode + 1}")
                episode = bag.episodes[job.episode]
                row.task = self._bag_task(job.episode, episode.task)
                task = self._need_task(row.task, "no task: pass --task, or record a String marker carrying it")
            elif item.kind == "video":
                row.task = self.settings.task
                task = self._need_task(row.task, "no task: pass --task")
                episode = video.read_episode(item.path, self.settings.reward.sample_fps)
                row.source_frames = episode.source_frames
            elif item.kind == "lerobot":
                dataset_episode = item.lerobot
                assert dataset_episode is not None  # a LeRobot item without its episode has an error
                row.source_frames = dataset_episode.length
                if dataset_episode.error:  # broken data is an error (a broken task is no reason to use --task)
                    raise TopRewardError(dataset_episode.error)
                row.task = dataset_episode.task or self.settings.task
                task = self._need_task(row.task, "no task: the dataset has none for this episode; pass --task")
                episode = lerobot.read_episode(item.path, dataset_episode, item.fps, self.settings.reward.sample_fps)
            else:
                raise TopRewardError(f"unknown item kind {item.kind!r}")
            if not episode.frames:
                raise TopRewardError("the episode has no frames")
            self.streams[0].check_task(task)  # a task that cannot be rendered fails its episode, not the batch
            episode = dataclasses.replace(episode, task=task)
        except Exception as exc:  # noqa: BLE001 - bad input of any kind is recorded on its episode, never stops the run
            return self._failed(row, exc, start, episodes_in_item)
        return _Read(job, row, episode, episodes_in_item, start)

    def _failed(self, row: EpisodeRow, exc: Exception, start: float, episodes_in_item: int | None) -> JobResult:
        message = str(exc) if isinstance(exc, TopRewardError) else f"{type(exc).__name__}: {exc}"
        row.fail(" ".join(message.split()) or type(exc).__name__, time.perf_counter() - start)
        row.worker = self.worker
        return JobResult(Outcome(row), episodes_in_item)

    def _scored(self, read: _Read, updates: list[RewardUpdate], static: list[RewardUpdate]) -> JobResult:
        row, episode, indices = read.row, read.episode, read.episode.frame_indices
        static_scores = [u.score for u in static]
        # each update's newest sampled frame (past max_frames, frames the stride skips have no update)
        newest = [covered - 1 for covered in itertools.accumulate(u.added for u in updates)]
        row.status, row.error, row.frames, row.duration_s = Status.OK, "", len(episode.frames), episode.times[-1]
        row.voc, row.static_voc = _defined(voc([u.score for u in updates])), _defined(voc(static_scores))
        row.final_score, row.final_progress, row.success = updates[-1].score, updates[-1].progress, updates[-1].success
        row.wall_seconds, row.worker = time.perf_counter() - read.start, self.worker
        frames = [FrameRow(source=row.source, item=row.item, episode=row.episode, frame=number,
                           frame_index=indices[newest[number]] if indices is not None else None, time=u.time,
                           stamp=u.stamp if episode.stamps is not None else None, score=u.score, reward=u.reward,
                           progress=u.progress, success=u.success, logp_true=list(u.true_logprobs),
                           logp_false=list(u.false_logprobs), static_score=static_score, model_frames=u.frames,
                           stride=u.stride)
                  for number, (u, static_score) in enumerate(zip(updates, static_scores))]
        return JobResult(Outcome(row, frames), read.episodes_in_item)

    def _read_bag(self, path: str) -> BagEpisodes:
        if self._bag is None or self._bag[0] != path:
            self._bag = None  # free the previous bag's frames first
            options, reward = self.settings.bag, self.settings.reward
            read: BagEpisodes | Exception
            try:
                read = read_episodes(path, list(options.image_topics), reward.sample_fps, split=options.split,
                                     marker_topic=options.marker_topic, max_gap=options.max_gap,
                                     camera_slop=reward.camera_slop, stamp_tolerance=reward.stamp_tolerance)
            except Exception as exc:  # noqa: BLE001 - cached like a good read: the bag's other episodes fail alike
                read = exc
            self._bag = (path, read)
        if isinstance(self._bag[1], Exception):
            raise self._bag[1]
        return self._bag[1]

    def _bag_task(self, index: int, marker_task: str | None) -> str | None:
        task = dict(self.settings.listed_tasks).get(index) or marker_task or self.settings.task
        return task.strip() if task and task.strip() else None

    @staticmethod
    def _need_task(task: str | None, reason: str) -> str:
        """The task; a TopRewardError saying ``reason`` when there is none."""
        if not task:
            raise TopRewardError(reason)
        return task


def _defined(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


class AnnotateWorker:
    """The Ray actor: one loaded model. A model that cannot load is reported by ``ready()``, not raised."""

    def __init__(self, settings: AnnotateSettings, threads: int = 0, batch_episodes: int | None = None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.error = None
        self.annotator = None
        try:
            self.annotator = Annotator(settings, batch_episodes=batch_episodes)
        except TopRewardError as exc:
            self.error = str(exc)

    def ready(self) -> tuple[int, str, str | None, int]:
        """(process id, host, the model's load error or None, episodes scored at once)."""
        return os.getpid(), socket.gethostname(), self.error, self.annotator.batch_episodes if self.annotator else 0

    def run(self, jobs: list[Job]) -> list[JobResult]:
        if self.annotator is None:
            raise AnnotateError(self.error)
        return self.annotator.run(jobs)
