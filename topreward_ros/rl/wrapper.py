"""TopRewardWrapper: one Gymnasium environment whose reward is TOPReward's, computed inside ``step()``.

The frames are the environment's own (``render()`` or image keys of its observation); they go through the
same RewardStream and RewardSettings as the node, so the same frames give the same scores as the offline
tools. See episode_rewards.py for which steps take a frame and what the others are worth, and
asynchronous.py for scoring off the critical path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym

from ..stream.settings import RewardSettings
from .asynchronous import OffCriticalPath, ScoringThread
from .episode_rewards import EpisodeRewards, FrameSchedule, Step, reward_stream
from .frames import FrameSource, seconds_per_step
from .options import DEFAULT_SETTINGS, RewardOptions, WrapperError


class TopRewardWrapper(OffCriticalPath, gym.Wrapper):
    """``env``'s reward replaced by (or added to) TOPReward's for ``task``.

    ``reward_model``: an already loaded model (``load_reward_model``), shared by several wrappers, instead of
    loading ``settings.model``. ``options``: RewardOptions' fields (reward, potential, gamma, combine, weight,
    every, dt, terminate_on_success). ``asynchronous``: ``step()`` does not wait for scoring; it returns the
    environment's part of the reward (0 with ``combine="replace"``) and ``info["topreward_ready"]``, the
    transitions scored since the previous call, each with its ``index`` (0 for the first ``step()`` after the
    wrapper was made) and the reward the synchronous wrapper would have returned.
    """

    def __init__(self, env: gym.Env, task: str | None = None, settings: RewardSettings = DEFAULT_SETTINGS, *,
                 image_keys: str | Sequence[str] | None = None, reward_model=None, asynchronous: bool = False,
                 **options: Any):
        super().__init__(env)
        self.options = RewardOptions.of(settings, options)
        if asynchronous and self.options.terminate_on_success:
            raise WrapperError("terminate_on_success needs the synchronous wrapper: an asynchronous step() does "
                               "not know the success of its own frame")
        self.source = FrameSource(image_keys, env.observation_space, env.render_mode)
        self.schedule = FrameSchedule(settings.sample_fps, seconds_per_step(env, self.options.dt),
                                      self.options.every)
        self.rewards = EpisodeRewards(reward_stream(settings, self.options, reward_model), self.options)
        self.task = None if task is None else self.rewards.check_task(task)
        self.episode = -1           # the current episode's id (counts from 0 at the first reset)
        self._step: int | None = None  # steps taken in the current episode; None before the first reset
        self._index = 0             # step() calls since the wrapper was made
        self._scorer = ScoringThread(self._work) if asynchronous else None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """A new episode; ``options={"task": ...}`` sets the task from this episode on (the others go to the
        environment). The task is checked before the environment resets."""
        options = dict(options or {})
        task = self.rewards.check_task(options.pop("task", self.task))
        observation, info = self.env.reset(seed=seed, options=options or None)
        frame = self.source.frame(observation, self.env.render)
        self.task = task
        self.episode += 1
        self.schedule.reset()
        self._step = 0
        time = self.schedule.take(0)
        assert time is not None  # an episode's first frame is always taken
        _, info["topreward"] = self._scored(-1, Step(self.episode, 0, time, frame, 0.0, task), info)
        return observation, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._step is None:
            raise WrapperError("call reset() before step()")
        observation, env_reward, terminated, truncated, info = self.env.step(action)
        self._step += 1
        index, self._index = self._index, self._index + 1
        time = self.schedule.take(self._step)
        frame = None if time is None else self.source.frame(observation, self.env.render)
        time = self._step * self.schedule.dt if time is None else time
        step = Step(self.episode, self._step, time, frame, float(env_reward))
        reward, info["topreward"] = self._scored(index, step, info)
        if self.options.terminate_on_success and info["topreward"].get("success"):
            terminated = True
        return observation, reward, terminated, truncated, info

    def _scored(self, index: int, step: Step, info: dict[str, Any]) -> tuple[float, dict]:
        """The step's reward and ``info["topreward"]``; asynchronous: the part known now and a pending record,
        and the steps scored meanwhile go in ``info["topreward_ready"]``."""
        if self._scorer is None:
            return self.rewards.run(step)
        self._scorer.submit((index, step))
        info["topreward_ready"] = self._scorer.take()
        pending = {"episode": step.episode, "step": step.step, "index": index, "pending": True}
        return (step.env_reward if self.options.combine == "add" else 0.0), pending

    def _work(self, job: tuple[int, Step]) -> dict | None:
        """The scoring thread's job: a step's ``info["topreward"]`` with its ``index`` (None for a reset)."""
        index, step = job
        info = self.rewards.run(step)[1]
        return None if index < 0 else {**info, "index": index}

