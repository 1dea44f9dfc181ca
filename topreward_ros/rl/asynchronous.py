"""Scoring off the critical path: a single wrapper's steps are scored in order on a worker thread.

The environment's thread hands each step over (its frame, if it took one, and its environment reward) and goes
on; the worker scores the steps in the order they were taken, one at a time, and computes each step's reward
exactly as the synchronous wrapper would. Finished steps wait in ``take`` until the wrapper hands them out.
A failure stops the worker's scoring; the error is raised on the environment's thread at its next call.
"""

from __future__ import annotations

import dataclasses
import queue
import threading

import numpy as np

from .episode_rewards import EpisodeRewards


@dataclasses.dataclass(frozen=True)
class Job:
    """One step to score: ``task`` is set on an episode's step 0 (the reset), which starts it."""

    index: int                   # the wrapper's transition count (step() calls before this one); -1 for a reset
    episode: int
    step: int
    time: float
    frame: np.ndarray | None     # None: the step took no frame
    env_reward: float
    task: str | None = None


class ScoringThread:
    """Scores the jobs of one EpisodeRewards in submission order; ``close`` scores what is left, then joins."""

    def __init__(self, rewards: EpisodeRewards):
        self.rewards = rewards
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._ready: list[dict] = []
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="topreward-scoring", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._raise()
        self._jobs.put(job)

    def take(self, wait: bool = False) -> list[dict]:
        """The transitions scored since the last take, oldest first (each its ``info["topreward"]`` plus its
        ``index``); with ``wait``, once every submitted job is scored."""
        if wait:
            self._jobs.join()
        self._raise()
        with self._lock:
            ready, self._ready = self._ready, []
        return ready

    def close(self) -> None:
        """Score every submitted job, then stop the thread (the results stay for ``take``)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    self._score(job)
            except BaseException as exc:  # noqa: BLE001 - raised on the environment's thread at its next call
                self._error = exc
            finally:
                self._jobs.task_done()

    def _score(self, job: Job) -> None:
        rewards = self.rewards
        if job.task is not None:
            rewards.start(job.task, job.episode)
        update = None if job.frame is None else rewards.score(job.time, job.frame)
        _, info = rewards.finish(job.step, update, job.env_reward, job.time)
        if job.index >= 0:
            with self._lock:
                self._ready.append({**info, "index": job.index})
