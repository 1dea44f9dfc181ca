"""topreward-eval-video end to end on the tiny model, as a user runs it (console script, subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from topreward_ros.evaluation.curve import Curve, CurveReport
from topreward_ros.evaluation.report import write_report
from topreward_ros.method.scoring import Score
from topreward_ros.synthetic.scene import scene_frames

TASK = "put the red block in the bowl"
BIN = Path(sys.executable).parent


def run_tool(*args, timeout=300, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=cwd)


@pytest.fixture(scope="module")
def sample_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "sample.mp4"
    result = run_tool("topreward-make-sample-video", str(path), "--seconds", "4", "--fps", "10")
    assert result.returncode == 0, result.stderr
    return path


def test_eval_video_writes_the_report(sample_video, tiny_model_dir, tmp_path):
    out = tmp_path / "report"
    result = run_tool("topreward-eval-video", str(sample_video), "--task", TASK, "--model", str(tiny_model_dir),
                      "--output", str(out), "--fps", "2", "--ensemble", "2", "--prefixes", "6")
    assert result.returncode == 0, result.stderr
    assert "VOC" in result.stdout and "static VOC" in result.stdout and len(result.stdout.strip().splitlines()) == 1
    summary = json.loads((out / "curve.json").read_text())
    assert summary["settings"]["frames"] == 8 and summary["settings"]["ensemble_size"] == 2
    assert summary["prefix_lengths"] == [1, 2, 4, 5, 7, 8]
    assert len(summary["curve"]) == len(summary["static_curve"]) == 6
    assert min(summary["progress"]) == 0.0 and max(summary["progress"]) == 1.0
    assert -1 <= summary["voc"] <= 1
    rows = (out / "curve.csv").read_text().splitlines()
    assert rows[0].startswith("prefix,frames,time_s,reward,progress,static_reward,logp_true_0,logp_true_1")
    assert len(rows) == 7
    png = cv2.imread(str(out / "curve.png"))
    assert png is not None and png.shape[0] > 100


def test_json_summary_on_stdout(sample_video, tiny_model_dir, tmp_path):
    result = run_tool("topreward-eval-video", str(sample_video), "--task", TASK, "--model", str(tiny_model_dir),
                      "--output", str(tmp_path), "--json-summary", "--contrastive", "--prefixes", "4")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) >= {"curve", "progress", "voc", "static_voc", "settings"}
    assert summary["settings"]["contrastive"] is True
    assert summary["static_voc"] is None or -1 <= summary["static_voc"] <= 1


def test_stream_and_reference_methods_agree(sample_video, tiny_model_dir, tmp_path):
    curves = {}
    for method in ("stream", "reference"):
        result = run_tool("topreward-eval-video", str(sample_video), "--task", TASK, "--model", str(tiny_model_dir),
                          "--output", str(tmp_path / method), "--json-summary", "--method", method,
                          "--resolution", "64x64", "--prefixes", "5")
        assert result.returncode == 0, result.stderr
        curves[method] = json.loads(result.stdout)["curve"]
    assert curves["stream"] == pytest.approx(curves["reference"], abs=1e-4)


def test_image_folder_and_avi(tmp_path, tiny_model_dir):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(scene_frames(5)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    result = run_tool("topreward-eval-video", str(folder), "--task", TASK, "--model", str(tiny_model_dir),
                      "--output", str(tmp_path / "a"), "--json-summary", "--fps", "1")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["prefix_times"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    avi = tmp_path / "clip.avi"
    assert run_tool("topreward-make-sample-video", str(avi), "--seconds", "2").returncode == 0
    result = run_tool("topreward-eval-video", str(avi), "--task", TASK, "--model", str(tiny_model_dir),
                      "--output", str(tmp_path / "b"), "--json-summary")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["curve"]) == 4


def test_constant_curve_report_says_voc_is_undefined(tmp_path):
    flat = Curve(lengths=[1, 2, 3], times=[0.0, 0.5, 1.0], scores=[Score((-3.0,), (-4.0,))] * 3)
    paths = write_report(CurveReport(curve=flat, static=flat), {"task": TASK}, tmp_path)
    summary = json.loads(paths["json"].read_text())
    assert summary["voc"] is None and summary["static_voc"] is None
    assert summary["progress"] == [0.0, 0.0, 0.0]
    assert paths["png"].stat().st_size > 0


@pytest.mark.parametrize("case,message", [
    ("missing", "no such file or folder"),
    ("unreadable", "cannot open as a video"),
    ("empty_folder", "no frames could be read"),
    ("empty_task", "the task is empty"),
    ("bad_resolution", "multiples of 32"),
    ("missing_model", "model directory not found"),
])
def test_bad_input_gives_a_clear_error(case, message, tmp_path, sample_video, tiny_model_dir):
    video, task, extra = str(sample_video), TASK, []
    if case == "missing":
        video = str(tmp_path / "nothing.mp4")
    elif case == "unreadable":
        video = str(tmp_path / "junk.mp4")
        Path(video).write_text("this is not a video")
    elif case == "empty_folder":
        video = str(tmp_path / "empty")
        Path(video).mkdir()
    elif case == "empty_task":
        task = "  "
    elif case == "bad_resolution":
        extra = ["--resolution", "100x100"]
    model = str(tmp_path / "no-model") if case == "missing_model" else str(tiny_model_dir)
    result = run_tool("topreward-eval-video", video, "--task", task, "--model", model,
                      "--output", str(tmp_path / "out"), *extra)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error:" in line]) == 1
