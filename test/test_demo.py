"""`make demo`'s main step: topreward-demo runs the node, a camera process and a consumer over DDS,
prints the live rewards, writes the live plot and the offline report, and finds them equal."""

import os
import subprocess

from dds import BIN, ros_environment
from test_eval_video import run_tool


def test_demo_prints_live_rewards_and_agrees_with_offline(tmp_path, tiny_model_dir):
    clip = tmp_path / "clip.mp4"
    assert run_tool("topreward-make-sample-video", str(clip), "--seconds", "4", "--fps", "10").returncode == 0
    result = subprocess.run([str(BIN / "topreward-demo"), str(clip), "--task", "put the red block in the bowl",
                             "--model", str(tiny_model_dir), "--resolution", "64x64",
                             "--output", str(tmp_path / "demo")],
                            capture_output=True, text=True, timeout=400, env={**os.environ, **ros_environment()})
    assert result.returncode == 0, result.stdout + result.stderr
    live = [line for line in result.stdout.splitlines() if line.strip().startswith("live  t=")]
    assert live and "frames=  1" in live[0]
    assert "live and offline agree" in result.stdout
    assert "covering 8 frames; offline: 8 frames" in result.stdout
    for name in ("live_reward.png", "offline/curve.json", "offline/curve.png", "node.log"):
        assert (tmp_path / "demo" / name).is_file(), name
    assert "Traceback" not in result.stderr
