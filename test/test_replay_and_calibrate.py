"""Offline and live agree on the same bag; calibration recovers a planted threshold."""

import csv
import json
import subprocess
import sys
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from dds import BIN, Process, start_node
from test_eval_video import run_tool
from test_reward_node import TASK, edited_config
from topreward_ros.sources.bags import read_episodes

pytestmark = pytest.mark.dds  # starts ROS 2 processes and talks over DDS

MARKER = "/episode"
CAMERA = "/camera/image_raw"


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("replay") / "episodes"
    result = run_tool("topreward-make-sample-bag", str(path), "--storage", "mcap", "--progress", "1.0", "0.5",
                      "--seconds", "3", "--fps", "15")
    assert result.returncode == 0, result.stderr
    return path


@contextmanager
def node_playing(tmp_path, model_dir, bag, *replay_args, **node_args):
    """A node (use_sim_time) and topreward-replay playing ``bag`` to it (the replay's Process), for the body of
    the with; then the replay must end with status 0, and both stop."""
    node = start_node(tmp_path, model=model_dir, quantization="none", sample_fps=2, use_sim_time="true", **node_args)
    replay = Process([str(BIN / "topreward-replay"), str(bag), "--topics", "/camera/image_raw",
                      "--output", str(tmp_path / "live.csv"), *replay_args], tmp_path / "replay.log")
    try:
        yield replay
        assert replay.popen.wait(240) == 0, replay.output() + node.output()
    finally:
        replay.stop()
        node.stop()


def replay_through_node(tmp_path, model_dir, bag, *replay_args, **node_args):
    """Play ``bag`` with topreward-replay to a running node (use_sim_time); the recorded updates
    grouped by episode, in order, and the replay's output."""
    with node_playing(tmp_path, model_dir, bag, *replay_args, **node_args) as replay:
        pass
    episodes = OrderedDict()
    with (tmp_path / "live.csv").open() as f:
        for row in csv.DictReader(f):
            episodes.setdefault(row["episode"], []).append(row)
    return list(episodes.values()), replay.output()


def offline_curves(bag, model_dir, out, *extra, split=("--split", "marker", "--marker-topic", MARKER)):
    result = run_tool("topreward-eval-bag", str(bag), *split,
                      "--model", str(model_dir), "--output", str(out), "--json-summary", *extra)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    return [json.loads((out / f"episode_{i:03d}.json").read_text()) for i in range(summary["episodes"])]


def assert_live_matches_offline(updates, curve):
    """Each live update equals the offline curve at the same frame count (a slow model merges updates,
    so several frames may come in one); the updates cover every sampled frame once, in order."""
    lengths = curve["prefix_lengths"]
    assert sum(int(u["added"]) for u in updates) == len(lengths)  # no sampled frame lost
    assert [int(u["frames"]) for u in updates] == sorted({int(u["frames"]) for u in updates})
    assert int(updates[-1]["frames"]) == lengths[-1]
    for update in updates:
        index = lengths.index(int(update["frames"]))
        assert float(update["score"]) == pytest.approx(curve["curve"][index], abs=1e-4)
        assert float(update["stamp"]) == pytest.approx(curve["prefix_stamps"][index], abs=1e-6)


def test_eval_bag_and_live_node_publish_the_same_updates(bag, tiny_model_dir, tmp_path, ros):
    offline = offline_curves(bag, tiny_model_dir, tmp_path / "offline")

    live, _ = replay_through_node(tmp_path, tiny_model_dir, bag, "--marker-topic", MARKER,
                                  "--record-bag", str(tmp_path / "recorded"))
    rows = [row for episode in live for row in episode]
    assert len(live) == len(offline) == 2
    for curve, updates in zip(offline, live):
        assert_live_matches_offline(updates, curve)
        assert {u["task"] for u in updates} == {curve["settings"]["task"]}

    with AnyReader([tmp_path / "recorded"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/topreward/update"] == len(rows) and counts["/topreward/reward"] == len(rows)


def test_a_slow_model_merges_updates_and_loses_no_frame(bag, tiny_model_dir, tmp_path, ros):
    """The node's model is slower than the frames come (the bag played at 8x, two busy loops beside
    it): updates merge, and every published score equals topreward-eval-bag's at the same frame
    count; the frames the updates cover add up to the episode's, twice (the bag loops)."""
    offline = offline_curves(bag, tiny_model_dir, tmp_path / "offline", "--task", TASK, split=("--split", "bag"))
    params = edited_config(tmp_path, 'qos_reliability: "best_effort"', 'qos_reliability: "reliable"')
    params.write_text(params.read_text().replace("qos_depth: 5", "qos_depth: 100"))
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        live, _ = replay_through_node(tmp_path, tiny_model_dir, bag, "--rate", "8", "--loop", "2",
                                      task=TASK, params_file=params)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert len(live) == 2 * len(offline)
    for updates, curve in zip(live, offline + offline):
        assert_live_matches_offline(updates, curve)
    assert any(int(u["added"]) > 1 for updates in live for u in updates), "the model kept up: nothing merged"


def test_replay_of_a_missing_bag_is_a_clear_error(tmp_path):
    result = run_tool("topreward-replay", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "no such bag" in result.stderr


def test_calibration_recovers_a_planted_threshold(tmp_path, tiny_model_dir, ros):
    bag = tmp_path / "labelled"
    progress = ["1.0", "0.2", "0.9", "0.4", "0.6"]
    assert run_tool("topreward-make-sample-bag", str(bag), "--progress", *progress, "--seconds", "2",
                    "--fps", "6").returncode == 0
    finals = [c["curve"][-1] for c in offline_curves(bag, tiny_model_dir, tmp_path / "scores")]
    assert len(set(finals)) == len(finals)
    ranked = sorted(finals)
    planted = (ranked[1] + ranked[2]) / 2  # successes are the episodes scoring above it
    labels = {"episodes": [{"bag": bag.name, "episode": i, "success": bool(score > planted)}
                           for i, score in enumerate(finals)]}
    (tmp_path / "labels.yaml").write_text(yaml.safe_dump(labels))
    params = tmp_path / "success.yaml"
    result = run_tool("topreward-calibrate", str(tmp_path / "labels.yaml"), "--split", "marker",
                      "--model", str(tiny_model_dir), "--output", str(params), "--consecutive", "2")
    assert result.returncode == 0, result.stderr
    assert "ROC AUC 1.0000 over 3 success and 2 failure episodes" in result.stdout
    assert "best F1" in result.stdout and "best Youden J" in result.stdout

    from rclpy.parameter import parameter_dict_from_yaml_file

    loaded = parameter_dict_from_yaml_file(str(params), use_wildcard=True)  # /** applies to every node
    threshold = loaded["success_threshold"].value.double_value
    assert threshold == pytest.approx(planted, abs=1e-9)
    assert loaded["success_consecutive"].value.integer_value == 2


@pytest.mark.parametrize("labels,message", [
    (None, "no such labels file"),
    ("episodes: []", "expected an 'episodes:' list"),
    ("episodes: [{bag: b, episode: 0}]", "entry 0 needs bag, episode and success"),
    ("episodes: [{bag: b, episode: 0, success: maybe}]", "success must be true or false"),
    ("episodes: [{bag: b, episode: 7, success: true}, {bag: b, episode: 0, success: false}]", "episode 7 is not one"),
    ("episodes: [{bag: b, episode: 0, success: true}, {bag: b, episode: 1, success: true}]",
     "need at least one success and one failure"),
])
def test_calibrate_rejects_bad_labels(labels, message, tmp_path, bag, tiny_model_dir):
    (tmp_path / "b").symlink_to(bag)
    path = tmp_path / "labels.yaml"
    if labels is not None:
        path.write_text(labels)
    result = run_tool("topreward-calibrate", str(path), "--split", "marker", "--model", str(tiny_model_dir),
                      "--output", str(tmp_path / "p.yaml"), "--resolution", "64x64")
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


def copy_camera_messages(bag, path, picks):
    """A new bag of ``bag``'s camera messages: for each (slot, message) in ``picks``, recorded message
    ``message`` written at the log time of recorded message ``slot``, so the header stamps go back
    wherever a message is written after a later one (it arrived late)."""
    with AnyReader([bag]) as reader:
        connection = next(c for c in reader.connections if c.topic == CAMERA)
        recorded = [(log_time, data) for _, log_time, data in reader.messages(connections=[connection])]
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        out = writer.add_connection(CAMERA, connection.msgtype, typestore=get_typestore(Stores.ROS2_KILTED))
        for slot, message in picks:
            writer.write(out, recorded[slot][0], recorded[message][1])


def test_late_stamps_are_dropped_live_and_offline_and_a_loop_restarts(tmp_path, tiny_model_dir, ros):
    """Camera messages arriving out of order by 100-300 ms (best-effort transport, camera jitter) are
    dropped and counted: the episode is the clean bag's minus those frames, offline (topreward-eval-bag)
    and live (topreward-replay to the node, twice at 2x; the loop's 2 s jump back starts an episode)."""
    clean, jittered, expected = tmp_path / "clean", tmp_path / "jittered", tmp_path / "clean-minus-late"
    assert run_tool("topreward-make-sample-bag", str(clean), "--progress", "1.0", "--seconds", "2",
                    "--fps", "10").returncode == 0
    # 5 (a sampled slot's first frame) comes 300 ms late, 10 (also one) 100 ms and 16 200 ms
    arrival = [0, 1, 2, 3, 4, 6, 7, 8, 5, 9, 11, 10, 12, 13, 14, 15, 17, 18, 16, 19]
    late = {5, 10, 16}
    copy_camera_messages(clean, jittered, enumerate(arrival))
    copy_camera_messages(clean, expected, [(i, i) for i in range(len(arrival)) if i not in late])

    read, want = read_episodes(jittered, [CAMERA]), read_episodes(expected, [CAMERA])
    assert (read.late_messages, want.late_messages, len(read.episodes), len(want.episodes)) == (3, 0, 1, 1)
    assert read.episodes[0].stamps == want.episodes[0].stamps
    assert read.episodes[0].times == pytest.approx([0.0, 0.6, 1.1, 1.5], abs=1e-6)  # 0.5 and 1.0 came late
    assert all(np.array_equal(a, b) for a, b in zip(read.episodes[0].frames, want.episodes[0].frames, strict=True))
    assert len(read_episodes(jittered, [CAMERA], stamp_tolerance=0.0).episodes) == 4  # no tolerance: split by each

    offline = offline_curves(jittered, tiny_model_dir, tmp_path / "offline", "--task", TASK, split=("--split", "bag"))
    assert len(offline) == 1 and offline[0]["settings"]["late_messages"] == 3
    assert offline[0]["prefix_stamps"] == pytest.approx(want.episodes[0].stamps, abs=1e-6)

    live, output = replay_through_node(tmp_path, tiny_model_dir, jittered, "--loop", "2", "--rate", "2", task=TASK)
    assert len(live) == 2  # the loop went back 2 s: a new episode; the late messages did not start one
    for updates in live:
        assert_live_matches_offline(updates, offline[0])
    assert "2 time(s) at 2x" in output
