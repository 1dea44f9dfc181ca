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
from .asynchronous import Job, ScoringThread
from .episode_rewards import EpisodeRewards, FrameSchedule, reward_stream
from .frames import FrameSource, seconds_per_step
from .options import DEFAULT_SETTINGS, RewardOptions, WrapperError


class TopRewardWrapper(gym.Wrapper):
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
        self.options = RewardOptions.of(options)
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
        self._scorer = ScoringThread(self.rewards) if asynchronous else None

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
        if self._scorer is not None:
            self._scorer.submit(Job(-1, self.episode, 0, time, frame, 0.0, task))
            info["topreward"] = {"episode": self.episode, "step": 0, "pending": True}
            info["topreward_ready"] = self._scorer.take()
            return observation, info
        self.rewards.start(task, self.episode)
        _, info["topreward"] = self.rewards.finish(0, self.rewards.score(time, frame), 0.0, time)
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
        if self._scorer is not None:
            self._scorer.submit(Job(index, self.episode, self._step, time, frame, float(env_reward)))
            info["topreward"] = {"episode": self.episode, "step": self._step, "index": index, "pending": True}
            info["topreward_ready"] = self._scorer.take()
            return (observation, float(env_reward) if self.options.combine == "add" else 0.0, terminated, truncated,
                    info)
        update = None if frame is None else self.rewards.score(time, frame)
        reward, info["topreward"] = self.rewards.finish(self._step, update, float(env_reward), time)
        if self.options.terminate_on_success and info["topreward"]["success"]:
            terminated = True
        return observation, reward, terminated, truncated, info

    def collect(self, wait: bool = True) -> list[dict]:
        """Asynchronous mode: the transitions scored and not yet handed out (as in ``info["topreward_ready"]``);
        with ``wait``, after every step taken so far is scored. Works after ``close()`` too."""
        if self._scorer is None:
            raise WrapperError("collect() is for a wrapper made with asynchronous=True")
        return self._scorer.take(wait)

    def close(self) -> None:
        """Closes the environment; asynchronous mode first scores every step taken and joins its thread."""
        if self._scorer is not None:
            self._scorer.close()
        super().close()
