"""One environment's rewards, episode by episode: which steps take a frame, and what every step is worth.

Step 0 is the reset: its frame is always taken and scored, so the episode's first potential is known before the
first action. A later step takes a frame when it opens a new 1/sample_fps slot of environment time (step * dt,
the node's FrameSampler) or, with ``every``, when its index is a multiple of ``every``. A step that takes no
frame (and a step whose frame the long-episode stride skips) is not scored; it gets the value that keeps the
episode's sum what the scored steps give: 0 in the logprob, progress and delta modes, and in the potential mode
(gamma - 1) * Phi with Phi held at its last scored value, so that sum_t gamma^t r_t = gamma^T Phi_T - Phi_0
exactly (steps t = 0..T-1, Phi_T the potential after the last step).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import TopRewardError
from ..method.sessions import SessionPool
from ..stream.episode_stream import SampledFrame
from ..stream.reward_stream import RewardStream
from ..stream.sampler import FrameSampler
from ..stream.settings import REWARD_TYPES, RewardSettings
from ..stream.update import RewardUpdate
from .options import RewardOptions, WrapperError


def shortened(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def reward_stream(settings: RewardSettings, options: RewardOptions, reward_model=None,
                  pool: SessionPool | None = None) -> RewardStream:
    """The settings' reward stream, whose updates carry the node's reward of ``options.reward`` (the potential
    mode reads their score or progress)."""
    if options.reward in REWARD_TYPES:
        settings = settings.replace(reward_type=options.reward)
    return RewardStream.from_settings(settings, reward_model=reward_model, pool=pool)


class FrameSchedule:
    """Which steps of an episode take a frame, and at what time (seconds from the reset)."""

    def __init__(self, sample_fps: float, dt: float, every: int | None = None):
        self.dt = dt
        self.every = every
        self.sampler = FrameSampler(sample_fps)

    def reset(self) -> None:
        self.sampler.reset()

    def take(self, step: int) -> float | None:
        """The time of step ``step``'s frame if it takes one, else None (steps come in order from 0)."""
        t = step * self.dt
        if self.every is not None:
            return t if step % self.every == 0 else None
        return t if self.sampler.wants(t) and self.sampler.offer(t) is not None else None


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of one environment, to score: its frame (None: it took none) and the environment's reward.
    ``task`` is set on a step 0 (a reset), which starts episode ``episode``."""

    episode: int
    step: int
    time: float
    frame: np.ndarray | None
    env_reward: float
    task: str | None = None


class EpisodeRewards:
    """The reward stream of one environment and the reward of each of its steps: per Step, ``request`` its
    frame (a reset step starts the episode), score the requests of several environments in one forward
    (``update_streams``), and ``finish`` it; or ``run`` one step alone."""

    def __init__(self, stream: RewardStream, options: RewardOptions):
        self.stream = stream
        self.options = options
        self.episode = 0
        self.task = ""
        self.latest: RewardUpdate | None = None
        self.potential = 0.0

    def check_task(self, task: Any) -> str:
        if not isinstance(task, str) or not task.strip():
            raise WrapperError("no task: give task= to the wrapper or reset(options={'task': ...})")
        try:
            return self.stream.check_task(task)
        except TopRewardError as exc:  # a prompt or render error: one line naming the task
            raise WrapperError(f"task {shortened(task)} cannot be scored: {exc}") from exc

    def start(self, task: str, episode: int) -> None:
        """Episode ``episode`` for ``task`` (checked by ``check_task``)."""
        self.episode = episode
        self.task = task
        self.stream.reset(self.episode)
        self.latest = None
        self.potential = 0.0

    def request(self, step: Step) -> tuple[RewardStream, list[SampledFrame], str] | None:
        """Start the episode at a reset step; the update_streams request that adds the step's frame (None:
        it took none)."""
        if step.task is not None:
            self.start(step.task, step.episode)
        if step.frame is None:
            return None
        return self.stream, [SampledFrame(step.time, step.time, step.frame, step.step == 0)], self.task

    def run(self, step: Step) -> tuple[float, dict]:
        """Score ``step`` alone and finish it (see ``finish``)."""
        request = self.request(step)
        return self.finish(step, None if request is None else self.stream.update(*request[1:]))

    def finish(self, step: Step, update: RewardUpdate | None) -> tuple[float, dict]:
        """The reward of ``step`` (0 for a reset) given its update (None: not scored), and its
        ``info["topreward"]``."""
        options = self.options
        env_reward = step.env_reward
        previous = self.potential
        if update is not None:
            self.latest = update
            self.potential = update.score if options.potential == "score" else update.progress
        if step.step == 0:
            ours = 0.0
        elif options.reward == "potential":
            ours = options.gamma * self.potential - previous
        else:
            ours = update.reward if update is not None else 0.0
        reward = options.weight * ours + (env_reward if options.combine == "add" else 0.0)
        latest = self.latest
        assert latest is not None  # the reset's frame is always taken, and the first frame is always kept
        return reward, {
            "episode": self.episode, "step": step.step, "time": step.time, "scored": update is not None,
            "reward": reward, "model_reward": ours, "env_reward": float(env_reward), "score": latest.score,
            "progress": latest.progress, "success": latest.success, "frames": latest.frames,
            "true_logprobs": list(latest.true_logprobs)}
