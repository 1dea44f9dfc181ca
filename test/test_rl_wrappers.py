"""The Gymnasium wrappers on real environments (classic control, rendered headless through pygame), real vector
environments and a real learner (stable-baselines3 PPO), with the tiny random Qwen3-VL: a wrapper's scores equal
the offline scores of the same frames (run_episode), autoreset never lets a frame cross an episode, the reward
modes sum as documented, and every bad input is one clear error when the wrapper is made or reset."""

import os
import re
import threading
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import AddRenderObservation

from conftest import SMALL_RESOLUTION
from topreward_ros.rl import TopRewardVectorWrapper, TopRewardWrapper, WrapperError
from topreward_ros.stream.camera_sync import tile
from topreward_ros.stream.episode import Episode
from topreward_ros.stream.reward_stream import RewardStream, run_episodes, session_pool
from topreward_ros.stream.settings import RewardSettings

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders rgb_array without a display
TASK = "balance the pole on the cart"
TOLERANCE = 1e-4
# Same-step autoreset exists from gymnasium 1.1 (1.0 has only next-step, and does not name it).
SAME_STEP = hasattr(gym.vector, "AutoresetMode")


@pytest.fixture(scope="module")
def settings(tiny_model_dir):
    return RewardSettings(model=str(tiny_model_dir), device="cpu", dtype="fp32", resolution=SMALL_RESOLUTION)


def offline_scores(settings, reward_model, episodes: dict) -> dict:
    """{key: the offline scores of (times, frames)} through run_episodes, one stream per episode, in one pool."""
    keys = list(episodes)
    pool = session_pool(settings, reward_model, capacity=len(keys))
    streams = [RewardStream.from_settings(settings, reward_model, pool) for _ in keys]
    runs = run_episodes(streams, [Episode("gym", task=TASK, frames=episodes[k][1], times=episodes[k][0])
                                  for k in keys])
    return {k: [update.score for update in run] for k, run in zip(keys, runs)}


def play(env, steps: int, seed: int = 0):
    """Reset, then ``steps`` seeded random actions (until the episode ends): the frames of the scored steps (by
    render()), their times and scores, and every step's info["topreward"] and reward."""
    env.action_space.seed(seed)
    _, info = env.reset(seed=seed)
    times, frames, scores = [0.0], [env.render()], [info["topreward"]["score"]]
    steps_info, rewards = [], []
    for _ in range(steps):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps_info.append(info["topreward"])
        rewards.append(reward)
        if info["topreward"]["scored"]:
            times.append(info["topreward"]["time"])
            frames.append(env.render())
            scores.append(info["topreward"]["score"])
        if terminated or truncated:
            break
    return times, frames, scores, steps_info, rewards


@pytest.mark.parametrize("env_id, sample_fps", [("CartPole-v1", 25.0), ("Pendulum-v1", 10.0)])
def test_rewards_are_the_offline_scores_of_the_rendered_frames(env_id, sample_fps, settings, reward_model):
    settings = settings.replace(sample_fps=sample_fps)
    env = TopRewardWrapper(gym.make(env_id, render_mode="rgb_array"), TASK, settings, reward_model=reward_model,
                           reward="logprob")
    dt = env.schedule.dt
    assert dt == (0.02 if env_id == "CartPole-v1" else 0.05)  # CartPole: 1 / render_fps; Pendulum: its dt
    times, frames, scores, steps_info, rewards = play(env, 12)
    env.close()
    every = round(1 / (sample_fps * dt))
    assert [info["scored"] for info in steps_info] == [(k + 1) % every == 0 for k in range(len(steps_info))]
    assert len(frames) >= 3
    np.testing.assert_allclose(scores, offline_scores(settings, reward_model, {0: (times, frames)})[0],
                               atol=TOLERANCE)
    # logprob: the score at the steps that take a frame, 0 at the others
    assert rewards == [info["score"] if info["scored"] else 0.0 for info in steps_info]


@pytest.mark.parametrize("reward", ["potential", "delta"])
def test_reward_modes_sum_as_documented(reward, settings, reward_model):
    gamma = 0.9
    env = TopRewardWrapper(gym.make("Pendulum-v1", render_mode="rgb_array"), TASK, settings,
                           reward_model=reward_model, reward=reward, gamma=gamma, every=3, combine="add", weight=0.5)
    _, info = env.reset(seed=1)
    potentials = [info["topreward"]["score"]]
    model_rewards = []
    for _ in range(8):
        _, reward_value, _, _, info = env.step(env.action_space.sample())
        step = info["topreward"]
        assert reward_value == pytest.approx(step["env_reward"] + 0.5 * step["model_reward"])
        assert step["scored"] == (step["step"] % 3 == 0)
        potentials.append(step["score"])  # Phi held between frames
        model_rewards.append(step["model_reward"])
    env.close()
    if reward == "potential":  # sum_t gamma^t r_t = gamma^T Phi_T - Phi_0, frames or not
        discounted = sum(gamma ** t * r for t, r in enumerate(model_rewards))
        assert discounted == pytest.approx(gamma ** len(model_rewards) * potentials[-1] - potentials[0], abs=1e-9)
        assert model_rewards[0] == pytest.approx((gamma - 1) * potentials[0])  # no frame: Phi held
    else:  # delta: the score's change at a frame, 0 between: the sum is the last score minus the first
        assert model_rewards[0] == model_rewards[1] == 0.0
        assert sum(model_rewards) == pytest.approx(potentials[-1] - potentials[0], abs=1e-9)


def test_terminate_on_success_ends_the_episode(settings, reward_model):
    settings = settings.replace(success_threshold=-1000.0, success_consecutive=2)  # every score counts
    env = TopRewardWrapper(gym.make("Pendulum-v1", render_mode="rgb_array"), TASK, settings,
                           reward_model=reward_model, every=3, terminate_on_success=True)
    _, info = env.reset(seed=0)
    assert not info["topreward"]["success"]  # one score at or above the threshold: not yet two in a row
    ends = []
    for _ in range(3):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        ends.append((terminated, truncated, info["topreward"]["success"]))
    env.close()
    assert ends == [(False, False, False), (False, False, False), (True, False, True)]


def test_several_image_keys_are_tiled_as_the_node_tiles_cameras(settings, reward_model):
    cameras = {"left": gym.spaces.Box(0, 255, (32, 48, 3), np.uint8), "right": gym.spaces.Box(0, 255, (64, 32, 3),
                                                                                             np.uint8)}
    env = TopRewardWrapper(ImageEnv(cameras), TASK, settings, image_keys=["left", "right"], reward_model=reward_model,
                           every=2)
    observation, info = env.reset(seed=0)
    times, frames, scores = [0.0], [tile([observation["left"], observation["right"]])], [info["topreward"]["score"]]
    for _ in range(5):
        observation, _, _, _, info = env.step(0)
        if info["topreward"]["scored"]:
            times.append(info["topreward"]["time"])
            frames.append(tile([observation["left"], observation["right"]]))
            scores.append(info["topreward"]["score"])
    assert times == pytest.approx([0.0, 0.2, 0.4]) and frames[0].shape == (32, 48 + 16, 3)  # dt 1 / render_fps
    np.testing.assert_allclose(scores, offline_scores(settings, reward_model, {0: (times, frames)})[0],
                               atol=TOLERANCE)


def test_asynchronous_steps_get_the_synchronous_rewards_later(settings, reward_model):
    def run(asynchronous: bool):
        env = TopRewardWrapper(gym.make("CartPole-v1", render_mode="rgb_array", max_episode_steps=7), TASK,
                               settings, reward_model=reward_model, every=2, asynchronous=asynchronous)
        env.action_space.seed(3)
        returned, ready = [], []
        _, info = env.reset(seed=3)
        for _ in range(12):
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            returned.append((reward, info["topreward"]["episode"], info["topreward"]["step"]))
            ready += info.get("topreward_ready", [])
            if terminated or truncated:
                _, info = env.reset()
                ready += info.get("topreward_ready", [])
        env.close()
        if asynchronous:
            assert "topreward-scoring" not in [t.name for t in threading.enumerate()]  # close() joined it
            ready += env.collect()
        return returned, ready

    synchronous, _ = run(False)
    returned, ready = run(True)
    assert [r for r, _, _ in returned] == [0.0] * 12  # replace mode: nothing until scored
    assert [(e, s) for _, e, s in returned] == [(e, s) for _, e, s in synchronous]
    assert [item["index"] for item in ready] == list(range(12))  # every step, once, in order
    assert [(item["episode"], item["step"]) for item in ready] == [(e, s) for _, e, s in synchronous]
    np.testing.assert_allclose([item["reward"] for item in ready], [r for r, _, _ in synchronous], atol=1e-9)


def test_asynchronous_vector_steps_get_the_synchronous_rewards_later(settings, reward_model):
    def run(asynchronous: bool):
        env = TopRewardVectorWrapper(vector_env("sync", "NextStep", False), TASK, settings, reward_model=reward_model,
                                     every=3, asynchronous=asynchronous)
        env.action_space.seed(0)
        env.reset(seed=0)
        returned, ready = [], []
        for _ in range(12):
            _, rewards, _, _, info = env.step(env.action_space.sample())
            returned.append((rewards, info["topreward"]["episode"], info["topreward"]["step"]))
            ready += info.get("topreward_ready", [])
        env.close()
        return returned, ready + (env.collect() if asynchronous else [])

    synchronous, _ = run(False)
    returned, ready = run(True)
    assert all(not rewards.any() for rewards, _, _ in returned)  # replace mode: nothing until scored
    assert [item["index"] for item in ready] == list(range(12))
    for (rewards, episodes, steps), item, (_, pending_episodes, pending_steps) in zip(synchronous, ready, returned):
        np.testing.assert_array_equal(item["episode"], episodes)
        np.testing.assert_array_equal(item["step"], steps)
        np.testing.assert_array_equal(pending_episodes, episodes)  # known at once: the bookkeeping is not deferred
        np.testing.assert_array_equal(pending_steps, steps)
        np.testing.assert_allclose(item["reward"], rewards, atol=1e-9)
    assert any(episodes.max() >= 1 for _, episodes, _ in synchronous)  # an autoreset happened meanwhile


def test_stable_baselines3_ppo_learns_on_our_rewards(settings, reward_model):
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    class Received(BaseCallback):
        def __init__(self):
            super().__init__()
            self.received, self.ours = [], []

        def _on_step(self) -> bool:
            self.received.append(float(self.locals["rewards"][0]))
            self.ours.append(self.locals["infos"][0]["topreward"]["reward"])
            return True

    env = TopRewardWrapper(gym.make("CartPole-v1", render_mode="rgb_array"), TASK, settings,
                           reward_model=reward_model, every=8)
    callback = Received()
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128, callback=callback)
    assert model.num_timesteps == 128 and len(callback.ours) == 128
    np.testing.assert_allclose(callback.received, callback.ours, rtol=1e-6)
    np.testing.assert_allclose(model.rollout_buffer.rewards[:, 0], callback.ours[-64:], rtol=1e-6)
    assert len(set(callback.ours)) > 3  # the model's rewards, not CartPole's constant 1
    env.close()


def vector_env(kind: str, mode: str, keys: bool):
    """4 CartPoles of different lengths (7 to 10 steps), rendered, or with the render in the observation."""
    def make(i):
        def thunk():
            env = gym.make("CartPole-v1", render_mode="rgb_array", max_episode_steps=7 + i)
            return AddRenderObservation(env, render_only=False) if keys else env
        return thunk

    options = {"autoreset_mode": mode} if SAME_STEP else {}
    cls = gym.vector.SyncVectorEnv if kind == "sync" else gym.vector.AsyncVectorEnv
    return cls([make(i) for i in range(4)], **options)


VECTORS = [("sync", "NextStep", False), ("async", "NextStep", True)] + (
    [("sync", "SameStep", True), ("async", "SameStep", True)] if SAME_STEP else [])


@pytest.mark.parametrize("kind, mode, keys", VECTORS)
def test_vector_scores_per_environment_and_autoreset_boundaries(kind, mode, keys, settings, reward_model):
    env = TopRewardVectorWrapper(vector_env(kind, mode, keys), TASK, settings, reward_model=reward_model,
                                 image_keys="pixels" if keys else None, every=3, reward="delta")
    assert env.autoreset == mode
    env.action_space.seed(0)

    def frames_of(observations):
        return env.render() if not keys else [observations["pixels"][i] for i in range(4)]

    observations, info = env.reset(seed=0)
    episodes = {(i, 0): ([0.0], [frame], [info["topreward"]["score"][i]]) for i, frame in
                enumerate(frames_of(observations))}
    done = np.zeros(4, dtype=bool)
    for _ in range(16):
        observations, rewards, terminated, truncated, info = env.step(env.action_space.sample())
        top = info["topreward"]
        frames = frames_of(observations)
        for i in range(4):
            key = (i, int(top["episode"][i]))
            if mode == "NextStep" and done[i]:  # the reset step: a new episode's frame 0, no reward
                assert (top["step"][i], rewards[i]) == (0, 0.0) and key not in episodes
                episodes[key] = ([0.0], [frames[i]], [top["score"][i]])
                continue
            assert key in episodes and top["step"][i] >= 1
            if top["scored"][i]:
                final = mode == "SameStep" and (terminated[i] or truncated[i])
                frame = info["final_obs"][i]["pixels"] if final else frames[i]
                times, kept, scores = episodes[key]
                times.append(float(top["time"][i]))
                kept.append(frame)
                scores.append(float(top["score"][i]))
            if mode == "SameStep" and (terminated[i] or truncated[i]):  # the next episode starts at this obs
                episodes[(i, key[1] + 1)] = ([0.0], [frames[i]], [None])
        done = np.logical_or(terminated, truncated)
    env.close()
    assert len({i for i, e in episodes if e >= 1}) == 4  # every environment crossed an episode boundary
    offline = offline_scores(settings, reward_model, {k: (times, frames) for k, (times, frames, _) in
                                                      episodes.items()})
    compared = 0
    for key, (_, _, scores) in episodes.items():
        assert len(offline[key]) == len(scores), key
        live = [(s, o) for s, o in zip(scores, offline[key]) if s is not None]  # same-step: no reset score
        compared += len(live)
        if live:
            np.testing.assert_allclose(*zip(*live), atol=TOLERANCE, err_msg=f"environment {key[0]} episode {key[1]}")
    assert compared >= 12


class ImageEnv(gym.Env):
    """Cameras in a dict observation, random images as their spaces say (``lying``: float images instead)."""

    metadata = {"render_fps": 10}

    def __init__(self, cameras: dict, lying: bool = False):
        self.observation_space = gym.spaces.Dict(cameras)
        self.action_space = gym.spaces.Discrete(2)
        self.lying = lying

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        images = self.observation_space.sample()
        return {key: image.astype(np.float32) if self.lying else image for key, image in images.items()}, {}

    def step(self, action):
        return self.reset()[0], 0.0, False, False, {}


IMAGE = gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)
BAD_WRAPPERS = {
    "no render mode and no image key": (lambda: gym.make("CartPole-v1"), {}, "has no frames"),
    "image keys on a vector observation": (lambda: gym.make("CartPole-v1"), {"image_keys": "camera"},
                                           "need a dict observation"),
    "a missing image key": (lambda: ImageEnv({"camera": IMAGE}), {"image_keys": "wrist"}, "no observation key 'wrist'"),
    "an image space of the wrong shape": (lambda: ImageEnv({"camera": gym.spaces.Box(0, 255, (32, 32), np.uint8)}),
                                          {"image_keys": "camera"}, "must be an HxWx3 uint8 image space"),
    "an image space of the wrong dtype": (lambda: ImageEnv({"camera": gym.spaces.Box(0, 1, (32, 32, 3), np.float32)}),
                                          {"image_keys": "camera"}, "must be an HxWx3 uint8 image space"),
    "an unknown option": (lambda: gym.make("CartPole-v1", render_mode="rgb_array"), {"rewards": "delta"},
                          "unknown wrapper option 'rewards'"),
    "settings that are not RewardSettings": (lambda: gym.make("CartPole-v1", render_mode="rgb_array"),
                                             {"settings": {"sample_fps": 5}}, "settings must be a RewardSettings"),
    "an unknown reward mode": (lambda: gym.make("CartPole-v1", render_mode="rgb_array"), {"reward": "success"},
                               "reward must be one of potential, logprob, progress, delta"),
    "a task with special tokens": (lambda: gym.make("CartPole-v1", render_mode="rgb_array"),
                                   {"task": "stack <|im_end|> blocks"}, "cannot be scored: .*special token"),
    "terminate_on_success off the critical path": (lambda: gym.make("CartPole-v1", render_mode="rgb_array"),
                                                   {"asynchronous": True, "terminate_on_success": True},
                                                   "needs the synchronous wrapper"),
}


@pytest.mark.parametrize("case", BAD_WRAPPERS)
def test_bad_input_is_one_clear_error_when_the_wrapper_is_made(case, settings, reward_model):
    make, arguments, message = BAD_WRAPPERS[case]
    env = make()
    with pytest.raises(WrapperError, match=message) as error:
        TopRewardWrapper(env, **{"task": TASK, "settings": settings, **arguments}, reward_model=reward_model)
    assert "\n" not in str(error.value)
    env.close()


def test_bad_input_at_reset_is_one_clear_error_before_any_step(settings, reward_model):
    env = TopRewardWrapper(gym.make("CartPole-v1", render_mode="rgb_array"), settings=settings,
                           reward_model=reward_model)
    with pytest.raises(WrapperError, match="call reset"):
        env.step(0)
    with pytest.raises(WrapperError, match="no task"):
        env.reset()
    with pytest.raises(WrapperError, match="cannot be scored: .*at most 1000 are accepted"):
        env.reset(options={"task": "stack the blocks " * 2000})
    _, info = env.reset(options={"task": TASK})  # a usable task from then on
    assert info["topreward"]["step"] == 0 and env.task == TASK
    env.close()
    lying = TopRewardWrapper(ImageEnv({"camera": IMAGE}, lying=True), TASK, settings, image_keys="camera",
                             reward_model=reward_model)
    with pytest.raises(WrapperError, match="observation image 'camera' must be an HxWx3 uint8 RGB image, got "
                                           r"shape \(32, 32, 3\) float32"):
        lying.reset()


@pytest.mark.filterwarnings("ignore:.*render method without specifying any render mode")
def test_bad_vector_input_is_one_clear_error(settings, reward_model):
    def make(render_mode):
        return lambda: gym.make("CartPole-v1", render_mode=render_mode)

    without_images = gym.vector.SyncVectorEnv([make("rgb_array"), make(None)])
    with pytest.raises(WrapperError, match="has no frames"):  # the vector env reports its first's render mode
        TopRewardVectorWrapper(gym.vector.SyncVectorEnv([make(None)] * 2), TASK, settings, reward_model=reward_model)
    env = TopRewardVectorWrapper(without_images, TASK, settings, reward_model=reward_model)
    with pytest.raises(WrapperError, match=r"sub-environment 1: env.render\(\) must be an HxWx3 uint8 RGB image, "
                                           "got NoneType"):
        env.reset()
    env.close()
    vector = gym.vector.SyncVectorEnv([make("rgb_array")] * 2)
    with pytest.raises(WrapperError, match=r"one per sub-environment \(2\), got 3"):
        TopRewardVectorWrapper(vector, ["a", "b", "c"], settings, reward_model=reward_model)
    env = TopRewardVectorWrapper(vector, settings=settings, reward_model=reward_model)
    with pytest.raises(WrapperError, match="no task"):
        env.reset()
    with pytest.raises(WrapperError, match="terminate_on_success is for TopRewardWrapper"):
        TopRewardVectorWrapper(vector, TASK, settings, reward_model=reward_model, terminate_on_success=True)
    if SAME_STEP:
        same_step = gym.vector.SyncVectorEnv([make("rgb_array")] * 2, autoreset_mode="SameStep")
        with pytest.raises(WrapperError, match="same-step autoreset with frames from render"):
            TopRewardVectorWrapper(same_step, TASK, settings, reward_model=reward_model)
    vector.close()


def test_the_readme_example_runs_as_printed(capsys):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Rewards inside a Gymnasium loop"):]
    example = re.search(r"^```python\n(.*?)^```", section, re.MULTILINE | re.DOTALL).group(1)
    exec(compile(example, "README.md", "exec"), {"__name__": "readme_example"})
    score, scored = capsys.readouterr().out.split()
    assert np.isfinite(float(score)) and scored in ("True", "False")
