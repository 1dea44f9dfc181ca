"""topreward-demo VIDEO --task "...": the package's main job on one machine, live and offline.

Starts the reward node (its own process), a camera process playing VIDEO over DDS
(topreward-play-video), and prints each reward update as it arrives; then writes the live
reward curve (live_reward.png), scores the same clip offline through the same reward stream
(offline/curve.{json,csv,png}) and says whether live and offline agree.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import rclpy

from ..errors import TopRewardError
from ..evaluation.curve import CurveReport, stream_curve
from ..evaluation.report import write_report
from ..ros.parameters import parameter_values
from ..ros.update_listener import UpdateListener, frames_covered
from ..sources.video import read_episode
from ..options import output_folder
from ..stream.reward_stream import RewardStream
from ..stream.update import RewardUpdate
from ..stream.settings import RewardSettings
from .common import add_model_arguments, add_settings_arguments, settings_from
from .program import entry_point, program_parser

PROG = "topreward-demo"
TOPIC = "/topreward_demo/camera/image_raw"
AGREEMENT = 1e-4
STARTUP_TIMEOUT = 120.0


def build_parser() -> argparse.ArgumentParser:
    parser = program_parser(PROG, __doc__)
    parser.add_argument("video", help="video file (mp4, avi, ...)")
    parser.add_argument("--task", required=True, help="the instruction the robot is given")
    parser.add_argument("--output", type=output_folder, default="out/demo",
                        help="folder for the plot, logs and offline report (default %(default)s)")
    add_settings_arguments(parser, "sampling", ["sample_fps"])
    add_model_arguments(parser)
    return parser


def node_command(settings: RewardSettings, task: str) -> list[str]:
    """reward_node with the demo's settings, each given as the node parameter of the same name."""
    params = {**parameter_values(settings), "task": task, "image_topics": f"[{TOPIC}]"}
    argv = [str(Path(sys.executable).parent / "reward_node"), "--ros-args"]
    for name, value in params.items():
        if value != "":  # an empty string is the parameter's default ('' cannot be said on a command line)
            argv += ["-p", f"{name}:={str(value).lower() if isinstance(value, bool) else value}"]
    return argv


def print_update(update: RewardUpdate) -> None:
    merged = f" ({update.added} frames)" if update.added > 1 else ""
    print(f"  live  t={update.time:5.2f} s  frames={update.frames:3d}{merged}  reward={update.reward:9.4f}  "
          f"progress={update.progress:.3f}  success={update.success}", flush=True)


def plot(live: list[RewardUpdate], offline_times, offline_scores, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(offline_times, offline_scores, "s", color="lightgray", markersize=9, label="offline (same clip)")
    ax.plot([u.time for u in live], [u.score for u in live], "o-", label="live from the node")
    ax.set_xlabel("time in the episode (s)")
    ax.set_ylabel("reward: log P(True)")
    ax.set_title("TOPReward, live over DDS vs offline")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def live_run(args, settings: RewardSettings, output: Path, expected_frames: int) -> list[RewardUpdate]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rclpy.init()
    listener = UpdateListener(on_update=print_update)
    node = subprocess.Popen(node_command(settings, args.task), stdout=(output / "node.log").open("w"),
                            stderr=subprocess.STDOUT, env=env)
    camera = None
    try:
        print(f"{PROG}: starting the reward node (log: {output / 'node.log'}) and a camera playing {args.video} ...",
              flush=True)
        camera = subprocess.Popen([str(Path(sys.executable).parent / "topreward-play-video"), args.video,
                                   "--topic", TOPIC], env=env)
        if camera.wait(STARTUP_TIMEOUT + 600) != 0:
            raise TopRewardError(f"the camera process failed; see {output / 'node.log'}")
        if not listener.wait(lambda: listener.updates.frames_covered() >= expected_frames, STARTUP_TIMEOUT):
            raise TopRewardError(f"the node scored {listener.updates.frames_covered()} of {expected_frames} frames; "
                                 f"see {output / 'node.log'}")
        return listener.updates.so_far()
    finally:
        for process in (camera, node):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
        listener.close()
        rclpy.try_shutdown()


def body(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    episode = read_episode(args.video, settings.sample_fps)  # the frames the node will sample
    episode.task = args.task
    frames = episode.frames
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    live = live_run(args, settings, output, len(frames))
    plot_path = output / "live_reward.png"

    print(f"{PROG}: scoring the same clip offline ({len(frames)} frames at {settings.sample_fps:g} fps) ...",
          flush=True)
    rewards = RewardStream.from_settings(settings)
    curve = stream_curve(rewards, episode)
    static = stream_curve(rewards, episode.static_control())
    write_report(CurveReport(curve=curve, static=static), {"video": args.video, "task": args.task},
                 output / "offline")
    plot(live, curve.times, curve.values, plot_path)

    assert curve.updates is not None  # stream_curve keeps the stream's updates
    offline_at = {u.frames: u.score for u in curve.updates}
    differences = [abs(u.score - offline_at[u.frames]) for u in live]
    worst = max(differences)
    covered = frames_covered(live)
    agree = worst <= AGREEMENT and covered == len(frames)
    print(f"{PROG}: live: {len(live)} updates covering {covered} frames; offline: {len(frames)} frames")
    print(f"{PROG}: live and offline {'agree' if agree else 'DISAGREE'}: largest score difference {worst:.2e} "
          f"(tolerance {AGREEMENT:g})")
    print(f"{PROG}: wrote {plot_path} and {output / 'offline'}/curve.{{json,csv,png}}")
    return 0 if agree else 1


main = entry_point(PROG, build_parser, body)


if __name__ == "__main__":
    sys.exit(main())
