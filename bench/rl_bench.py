"""Gymnasium wrapper benchmark: environment steps per second with and without TopRewardWrapper.

Pendulum-v1 (rendered rgb_array through pygame, headless; dt 0.05 s, so at the default 2 fps every 10th step
takes a frame, and an episode is 200 steps) with random actions, measured in one run on one machine:

  bare      the environment alone (no render: what a learner without the wrapper runs);
  wrapped   TopRewardWrapper at --sample-fps (reset frame and every sampled step rendered and scored),
            synchronous and asynchronous (scored on a worker thread: the rate ``step()`` returns at, and the
            rate until every step is scored);

single environment and SyncVectorEnv with --num-envs (TopRewardVectorWrapper: one batched forward per step that
takes frames), for each --shape of the random Qwen3-VL. It also times the steps one by one: the median step
that takes no frame minus the bare step's median is the wrapper's cost of a step without a frame, beside the
median step that takes frames (rendered and scored). Random weights: the
timings are real, the scores are not.

    python bench/rl_bench.py --shapes tiny small --steps 400 --num-envs 8 --threads 1 --json out/rl_bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import stream_bench
import torch

from topreward_ros.method.config import ModelConfig
from topreward_ros.method.model import load_reward_model
from topreward_ros.rl import TopRewardVectorWrapper, TopRewardWrapper
from topreward_ros.stream.settings import RewardSettings
from topreward_ros.synthetic.model import write_test_model

ENV = "Pendulum-v1"
TASK = "swing the pendulum up and hold it upright"
BARE_STEPS = 10  # the bare environment runs this many times the steps (tens of us each)


def make(render: bool) -> gym.Env:
    return gym.make(ENV, render_mode="rgb_array" if render else None)


def timed_steps(env, steps: int, vector: bool, asynchronous: bool = False
                ) -> tuple[float, float, list[float], list[float]]:
    """Steps per second over ``steps`` random steps (resetting where an episode ends), as ``step()`` returns them
    and until every one is scored (asynchronous: ``collect(wait=True)``), and the seconds of each step that took
    no frame (every step where the environment has no wrapper, or scores asynchronously) and of each that took
    frames."""
    env.action_space.seed(0)
    env.reset(seed=0)
    unscored, scored = [], []
    start = time.perf_counter()
    for _ in range(steps):
        before = time.perf_counter()
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        took = time.perf_counter() - before
        (scored if np.any(info.get("topreward", {}).get("scored", False)) else unscored).append(took)
        if not vector and (terminated or truncated):
            env.reset()
    returned = time.perf_counter() - start
    if asynchronous:
        env.collect(wait=True)
    return steps / returned, steps / (time.perf_counter() - start), unscored, scored


def measure(settings: RewardSettings, reward_model, steps: int, num_envs: int) -> list[dict]:
    rows = []
    for vector, asynchronous in ((False, False), (False, True), (True, False), (True, True)):
        if vector:
            bare = gym.vector.SyncVectorEnv([lambda: make(False)] * num_envs)
            wrapped = TopRewardVectorWrapper(gym.vector.SyncVectorEnv([lambda: make(True)] * num_envs), TASK,
                                             settings, reward_model=reward_model, asynchronous=asynchronous)
        else:
            bare = make(False)
            wrapped = TopRewardWrapper(make(True), TASK, settings, reward_model=reward_model,
                                       asynchronous=asynchronous)
        bare_rate, _, bare_steps, _ = timed_steps(bare, BARE_STEPS * steps, vector)  # fast: more for a steady rate
        returned_rate, scored_rate, unscored, scored = timed_steps(wrapped, steps, vector, asynchronous)
        bare.close()
        wrapped.close()
        envs = num_envs if vector else 1
        rows.append({"envs": envs, "asynchronous": asynchronous, "bare_env_steps_per_s": bare_rate * envs,
                     "returned_env_steps_per_s": returned_rate * envs, "scored_env_steps_per_s": scored_rate * envs,
                     "ratio": scored_rate / bare_rate,
                     "no_frame_step_overhead_us": (statistics.median(unscored) - statistics.median(bare_steps)) * 1e6,
                     "frame_step_ms": statistics.median(scored) * 1e3 if scored else None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=400, help="steps per measurement (vector: batched steps)")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--sample-fps", type=float, default=2.0)
    parser.add_argument("--resolution", type=int, nargs=2, default=(128, 128), metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the loaded 2-core machine)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    machine = {**stream_bench.machine(), "torch_threads": torch.get_num_threads(), "gymnasium": gym.__version__}
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for shape in args.shapes:
            model_dir = write_test_model(Path(directory) / shape, shape=shape)
            settings = RewardSettings(model=str(model_dir), device="cpu", dtype="fp32",
                                      resolution=tuple(args.resolution), sample_fps=args.sample_fps)
            reward_model = load_reward_model(ModelConfig(model=str(model_dir), device="cpu", dtype="fp32"))
            for row in measure(settings, reward_model, args.steps, args.num_envs):
                results.append({"shape": shape, **row})
    print(f"{ENV}, {args.steps} steps, {args.sample_fps:g} fps sampled, {args.resolution[0]}x{args.resolution[1]}; "
          f"{machine}")
    print("| shape | envs | bare env steps/s | step() returns, env steps/s | all scored, env steps/s | scored / bare "
          "| step without a frame: added us | step with frames: ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        envs = f"{r['envs']}{' asynchronous' if r['asynchronous'] else ''}"
        with_frames = "-" if r["frame_step_ms"] is None else f"{r['frame_step_ms']:.1f}"
        print(f"| {r['shape']} | {envs} | {r['bare_env_steps_per_s']:.0f} | {r['returned_env_steps_per_s']:.0f} "
              f"| {r['scored_env_steps_per_s']:.0f} | {r['ratio']:.3f} | {r['no_frame_step_overhead_us']:.0f} "
              f"| {with_frames} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
