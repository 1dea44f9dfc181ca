"""TopRewardVectorWrapper: a Gymnasium vector environment whose rewards are TOPReward's, every sub-environment
that takes a frame in a step scored in one batched forward (one session each, all in one SessionPool).

Autoreset: a sub-environment's episodes never share a frame. In next-step mode (Gymnasium's default) the step
after a sub-environment's last one returns its reset observation and ignores the action: that step is the new
episode's step 0 (its frame is scored as the new episode's first, its reward is 0). In same-step mode the step
that ends an episode returns the next episode's reset observation and the final one in ``info["final_obs"]``:
the final step is scored from ``final_obs`` (so frames must come from image keys: ``render()`` then shows the
next episode, and is refused), and the new episode's reset frame is scored right after, in a second forward.
Disabled autoreset is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv, VectorWrapper

from ..method.model import load_reward_model
from ..stream.reward_stream import session_pool, update_streams
from ..stream.settings import RewardSettings
from .asynchronous import OffCriticalPath, ScoringThread
from .episode_rewards import EpisodeRewards, FrameSchedule, Step, reward_stream
from .frames import FrameSource, seconds_per_step
from .options import DEFAULT_SETTINGS, RewardOptions, WrapperError

NEXT_STEP, SAME_STEP = "NextStep", "SameStep"  # gymnasium.vector.AutoresetMode values (1.1 and later)


def autoreset_mode(env: VectorEnv) -> str:
    """The vector environment's autoreset mode: ``metadata["autoreset_mode"]`` (an AutoresetMode or its value),
    next-step where it is missing (Gymnasium 1.0 has only that mode and does not name it)."""
    mode = env.metadata.get("autoreset_mode", NEXT_STEP)
    mode = getattr(mode, "value", mode)
    if mode not in (NEXT_STEP, SAME_STEP):
        raise WrapperError(f"autoreset mode {mode!r} is not supported: use next-step or same-step")
    return mode


def vector_seconds_per_step(env: VectorEnv, dt: float | None) -> float:
    """``dt`` if given, else a sub-environment's (which a SyncVectorEnv holds), else 1 / the vector
    environment's ``metadata["render_fps"]`` (an AsyncVectorEnv's sub-environments are in other processes)."""
    envs = getattr(env.unwrapped, "envs", None)
    return seconds_per_step(envs[0] if dt is None and envs else env, dt)


def stacked(infos: list[dict]) -> dict[str, np.ndarray]:
    """Per-environment ``info["topreward"]`` dicts as one dict of arrays (first axis: the sub-environment)."""
    return {key: np.array([info[key] for info in infos]) for key in infos[0]}


class TopRewardVectorWrapper(OffCriticalPath, VectorWrapper):
    """``env``'s rewards replaced by (or added to) TOPReward's. ``task``: one for every sub-environment or one
    each; ``reset(options={"task": ...})`` sets them from then on. ``info["topreward"]`` holds the single
    wrapper's keys, each an array over the sub-environments. Options as for TopRewardWrapper (``asynchronous``
    too: each item of ``info["topreward_ready"]`` is a whole step's), except ``terminate_on_success`` (a vector
    environment does not let a wrapper end one sub-environment's episode)."""

    def __init__(self, env: VectorEnv, task: str | Sequence[str] | None = None,
                 settings: RewardSettings = DEFAULT_SETTINGS, *, image_keys: str | Sequence[str] | None = None,
                 reward_model=None, asynchronous: bool = False, **options: Any):
        super().__init__(env)
        self.options = RewardOptions.of(settings, options)
        if self.options.terminate_on_success:
            raise WrapperError("terminate_on_success is for TopRewardWrapper: a vector environment does not let "
                               "a wrapper end one sub-environment's episode")
        self.autoreset = autoreset_mode(env)
        self.source = FrameSource(image_keys, env.single_observation_space, env.render_mode,
                                  where="each sub-environment")
        if self.source.renders and self.autoreset == SAME_STEP:
            raise WrapperError("same-step autoreset with frames from render() would lose every episode's final "
                               "frame (render() shows the next episode): give image_keys or use next-step")
        num_envs = env.num_envs
        dt = vector_seconds_per_step(env, self.options.dt)
        self.schedules = [FrameSchedule(settings.sample_fps, dt, self.options.every) for _ in range(num_envs)]
        if reward_model is None:
            reward_model = load_reward_model(settings.model_config())
        pool = session_pool(settings, reward_model, capacity=num_envs)
        self.rewards = [EpisodeRewards(reward_stream(settings, self.options, reward_model, pool), self.options)
                        for _ in range(num_envs)]
        self.tasks: list[str | None] = [None] * num_envs if task is None else self._checked_tasks(task)
        self.episodes = np.full(num_envs, -1)     # each sub-environment's current episode (from 0)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self._started = False
        self._resetting = np.zeros(num_envs, dtype=bool)  # next-step: these return a reset observation next step
        self._index = 0  # step() calls since the wrapper was made
        self._scorer = ScoringThread(self._work) if asynchronous else None

    def _checked_tasks(self, task: Any) -> list[str | None]:
        tasks = [task] * self.num_envs if task is None or isinstance(task, str) else list(task)
        if len(tasks) != self.num_envs:
            raise WrapperError(f"give one task or one per sub-environment ({self.num_envs}), got {len(tasks)}")
        return [rewards.check_task(t) for rewards, t in zip(self.rewards, tasks)]

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        """New episodes everywhere; ``options={"task": ...}`` (one, or one per sub-environment) sets the tasks
        from these episodes on (the other options go to the environment). Tasks are checked first."""
        options = dict(options or {})
        tasks = self._checked_tasks(options.pop("task", self.tasks))
        observations, info = self.env.reset(seed=seed, options=options or None)
        self.tasks = list(tasks)
        everyone = list(range(self.num_envs))
        frames = self._frames(observations, everyone)
        steps = {i: self._start(i, frames[i]) for i in everyone}
        self._started = True
        self._resetting[:] = False
        _, info["topreward"] = self._scored(-1, (steps, {}), np.zeros(self.num_envs), info)
        return observations, info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        if not self._started:
            raise WrapperError("call reset() before step()")
        observations, env_rewards, terminated, truncated, info = self.env.step(actions)
        index, self._index = self._index, self._index + 1
        done = np.logical_or(terminated, truncated)
        final = SAME_STEP == self.autoreset and done.any()
        times: dict[int, float] = {}
        taking = []  # the sub-environments whose step takes a frame (a next-step reset always does)
        for i in range(self.num_envs):
            if self._resetting[i]:
                taking.append(i)
                continue
            self.steps[i] += 1
            taken = self.schedules[i].take(int(self.steps[i]))
            times[i] = int(self.steps[i]) * self.schedules[i].dt if taken is None else taken
            if taken is not None:
                taking.append(i)
        frames = self._frames(observations, taking, info.get("final_obs") if final else None, done)
        steps = {i: self._start(i, frames[i]) if self._resetting[i] else
                 Step(int(self.episodes[i]), int(self.steps[i]), times[i], frames.get(i), float(env_rewards[i]))
                 for i in range(self.num_envs)}
        restarts = {}
        if final:  # same-step: the reset observations of the ended episodes start the next ones now
            ended = [int(i) for i in np.flatnonzero(done)]
            frames = self._frames(observations, ended)
            restarts = {i: self._start(i, frames[i]) for i in ended}
        if self.autoreset == NEXT_STEP:
            self._resetting = done
        rewards, info["topreward"] = self._scored(index, (steps, restarts), env_rewards, info)
        return observations, rewards, terminated, truncated, info

    def _start(self, i: int, frame: np.ndarray) -> Step:
        """Sub-environment ``i``'s next episode: its step 0, with the reset's ``frame``."""
        task = self.tasks[i]
        assert task is not None  # checked at reset
        self.episodes[i] += 1
        self.steps[i] = 0
        self.schedules[i].reset()
        self.schedules[i].take(0)  # an episode's first frame is always taken
        return Step(int(self.episodes[i]), 0, 0.0, frame, 0.0, task)

    def _frames(self, observations: Any, indices: list[int], final: Any = None,
                done: np.ndarray | None = None) -> dict[int, np.ndarray]:
        """The frames of sub-environments ``indices``: from the final observations where ``final`` holds
        them (same-step, ``done``), else from ``observations`` or one ``render()`` of every sub-environment."""
        if not indices:
            return {}
        rendered: tuple[Any, ...] | None = self.env.render() if self.source.renders else None

        def observation(i: int) -> Any:
            if final is not None and done is not None and done[i]:
                return final[i]
            return {key: observations[key][i] for key in self.source.image_keys or ()}

        def render(i: int) -> Callable[[], Any]:
            return lambda: rendered[i] if rendered is not None else None

        return {i: self.source.frame(observation(i), render(i), f"sub-environment {i}: ") for i in indices}

    def _scored(self, index: int, job: tuple[dict[int, Step], dict[int, Step]], env_rewards: np.ndarray,
                info: dict[str, Any]) -> tuple[np.ndarray, dict]:
        """The step's rewards and ``info["topreward"]``; asynchronous: the part known now and a pending record,
        and the steps scored meanwhile go in ``info["topreward_ready"]``."""
        if self._scorer is None:
            return self._run(job)
        self._scorer.submit((index, job))
        info["topreward_ready"] = self._scorer.take()
        known = np.asarray(env_rewards, dtype=np.float64) if self.options.combine == "add" else \
            np.zeros(self.num_envs)
        return known, {"episode": self.episodes.copy(), "step": self.steps.copy(), "index": index, "pending": True}

    def _work(self, job: tuple[int, tuple[dict[int, Step], dict[int, Step]]]) -> dict | None:
        """The scoring thread's job: a step's ``info["topreward"]`` with its ``index`` (None for a reset)."""
        index, steps = job
        info = self._run(steps)[1]
        return None if index < 0 else {**info, "index": index}

    def _run(self, job: tuple[dict[int, Step], dict[int, Step]]) -> tuple[np.ndarray, dict]:
        """Score a step of the sub-environments in one forward (and, same-step, the episodes it starts in a
        second); the rewards and the stacked ``info["topreward"]`` of the step."""
        steps, restarts = job
        infos = self._score(steps)
        if restarts:
            self._score(restarts)
        return np.array([step_info["reward"] for step_info in infos], dtype=np.float64), stacked(infos)

    def _score(self, steps: dict[int, Step]) -> list[dict]:
        """Score the sub-environments' steps in one forward and finish them: their ``info["topreward"]`` dicts,
        in the order of ``steps``."""
        requests = {i: self.rewards[i].request(step) for i, step in steps.items()}
        taking = [i for i, request in requests.items() if request is not None]
        updates = {}
        for i, result in zip(taking, update_streams([request for request in requests.values() if request])):
            if isinstance(result, Exception):
                raise result
            updates[i] = result
        return [self.rewards[i].finish(step, updates.get(i))[1] for i, step in steps.items()]

