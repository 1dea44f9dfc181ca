"""Bags written by the project (.db3 and .mcap) and by rclpy, read and scored; every bad input rejected."""

import array
import json

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from topreward_ros.sources.bags import read_episodes
from topreward_ros.sources.image_messages import DEFAULT_IMAGE_TOPIC
from topreward_ros.synthetic.scene import render_scene
from topreward_ros.tools.make_sample_bag import COMPRESSED_TOPIC, DEFAULT_TASK, MARKER_TOPIC

from test_eval_video import run_tool

TYPESTORE = get_typestore(Stores.ROS2_KILTED)


@pytest.fixture(scope="module")
def sample_bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    bags = {}
    for storage in ("mcap", "sqlite3"):
        bags[storage] = root / storage
        result = run_tool("topreward-make-sample-bag", str(bags[storage]), "--storage", storage,
                          "--progress", "1.0", "0.5", "--seconds", "3", "--fps", "10")
        assert result.returncode == 0, result.stderr
    return bags


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_sample_bag_round_trip(sample_bags, storage):
    bag = sample_bags[storage]
    assert any(bag.glob("*.mcap" if storage == "mcap" else "*.db3"))
    for topic in (DEFAULT_IMAGE_TOPIC, COMPRESSED_TOPIC):
        read = read_episodes(bag, [topic], sample_fps=2.0, split="marker", marker_topic=MARKER_TOPIC)
        assert [len(e.frames) for e in read.episodes] == [6, 6]
        assert [e.task for e in read.episodes] == [DEFAULT_TASK] * 2
        assert read.episodes[0].times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], abs=1e-5)
        assert read.image_messages == 60 and read.bad_messages == 0
        first = read.episodes[0].frames[0]
        expected = render_scene(0.0)
        if topic == DEFAULT_IMAGE_TOPIC:
            assert np.array_equal(first, expected)
        else:
            assert np.abs(first.astype(int) - expected).mean() < 3  # jpeg
    by_gap = read_episodes(bag, [DEFAULT_IMAGE_TOPIC], 2.0, split="gap", max_gap=2.0)
    assert len(by_gap.episodes) == 2 and by_gap.episodes[1].task == ""
    whole = read_episodes(bag, [DEFAULT_IMAGE_TOPIC], 2.0, split="bag")
    assert len(whole.episodes) == 1 and len(whole.episodes[0].frames) == 12
    assert whole.episodes[0].times[6] == pytest.approx(6.0)  # 3 s of episode + 3 s gap: one timeline
    both = read_episodes(bag, [DEFAULT_IMAGE_TOPIC, COMPRESSED_TOPIC], 2.0, split="marker", marker_topic=MARKER_TOPIC)
    assert both.episodes[0].frames[0].shape == (240, 640, 3)  # two cameras tiled


def test_eval_bag_writes_curves_and_summary(sample_bags, tiny_model_dir, tmp_path):
    out = tmp_path / "report"
    result = run_tool("topreward-eval-bag", str(sample_bags["mcap"]), "--split", "marker", "--model",
                      str(tiny_model_dir), "--output", str(out), "--resolution", "128x96")
    assert result.returncode == 0, result.stderr
    assert "2 episodes" in result.stdout and "VOC mean" in result.stdout
    for i in range(2):
        for suffix in ("json", "csv", "png"):
            assert (out / f"episode_{i:03d}.{suffix}").stat().st_size > 0
        curve = json.loads((out / f"episode_{i:03d}.json").read_text())
        assert len(curve["curve"]) == len(curve["prefix_stamps"]) == len(curve["static_curve"]) == 6
        assert curve["settings"]["task"] == DEFAULT_TASK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["updates"] == 12
    assert set(summary) >= {"voc_mean", "voc_std", "static_voc_mean", "updates_per_second", "settings"}
    assert summary["settings"]["model"] == str(tiny_model_dir)
    table = (out / "summary.md").read_text()
    assert "| episode | task | frames | updates | VOC | static VOC | final reward | updates/s |" in table


def test_bag_from_rclpy_serialization_is_read_and_scored(tmp_path, tiny_model_dir):
    """A bag written by another writer: rclpy's serialize_message into a rosbags sqlite3 writer."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    path = tmp_path / "rclpy_bag"
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        connection = writer.add_connection("/front/image", "sensor_msgs/msg/Image", typestore=TYPESTORE)
        for i in range(12):
            frame = render_scene(i / 11, 96, 64)
            msg = Image(height=64, width=96, encoding="bgr8", step=96 * 3 + 4)
            padded = np.zeros((64, 96 * 3 + 4), np.uint8)
            padded[:, :96 * 3] = frame[:, :, ::-1].reshape(64, -1)
            msg.data = array.array("B", padded.tobytes())
            msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + i // 4, (i % 4) * 250_000_000
            writer.write(connection, 100_000_000_000 + i * 250_000_000, serialize_message(msg))
    read = read_episodes(path, ["/front/image"], sample_fps=2.0)
    assert len(read.episodes[0].frames) == 6
    assert np.array_equal(read.episodes[0].frames[0], render_scene(0.0, 96, 64))
    result = run_tool("topreward-eval-bag", str(path), "--image-topics", "/front/image", "--task", "open the drawer",
                      "--model", str(tiny_model_dir), "--output", str(tmp_path / "out"), "--json-summary")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["per_episode"][0]["updates"] == 6


def write_bag(path, topics):
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, msgtype, messages in topics:
            connection = writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            for t, msg in messages:
                writer.write(connection, t, TYPESTORE.serialize_cdr(msg, msgtype))
    return path


@pytest.mark.parametrize("case,message", [
    ("missing_bag", "no such bag"),
    ("missing_topic", "topic /nope is not in"),
    ("wrong_type", "has type std_msgs/msg/String; expected sensor_msgs/msg/Image"),
    ("empty_bag", "no messages on /camera/image_raw"),
    ("corrupt_bag", "cannot read bag"),
    ("no_task", "episode 0 has no task"),
    ("missing_marker", "marker topic /episode is not in"),
])
def test_bad_bags_give_a_clear_error(case, message, tmp_path, sample_bags, tiny_model_dir):
    bag, extra = str(sample_bags["mcap"]), ["--task", "open the drawer"]
    String = TYPESTORE.types["std_msgs/msg/String"]
    if case == "missing_bag":
        bag = str(tmp_path / "nothing")
    elif case == "missing_topic":
        extra += ["--image-topics", "/nope"]
    elif case == "wrong_type":
        bag = str(write_bag(tmp_path / "strings", [("/camera/image_raw", "std_msgs/msg/String",
                                                     [(1, String(data="not an image"))])]))
    elif case == "empty_bag":
        bag = str(write_bag(tmp_path / "empty", [("/camera/image_raw", "sensor_msgs/msg/Image", [])]))
    elif case == "corrupt_bag":
        corrupt = tmp_path / "corrupt"
        corrupt.mkdir()
        (corrupt / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9, storage_identifier: mcap,"
                                               " relative_file_paths: [corrupt_0.mcap]}\n")
        (corrupt / "corrupt_0.mcap").write_bytes(b"\x89MCAP0\r\n this is not an mcap file")
        bag = str(corrupt)
    elif case == "no_task":
        extra = []  # split by bag: no marker task, no --task
    elif case == "missing_marker":
        bag = str(write_bag(tmp_path / "nomarker", [("/camera/image_raw", "sensor_msgs/msg/Image", [])]))
        extra += ["--split", "marker"]
    result = run_tool("topreward-eval-bag", bag, "--model", str(tiny_model_dir), "--output", str(tmp_path / "o"),
                      *extra)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_make_sample_bag_refuses_to_overwrite(sample_bags):
    result = run_tool("topreward-make-sample-bag", str(sample_bags["mcap"]))
    assert result.returncode == 2 and "already exists" in result.stderr, result.stderr


def test_offline_stamp_rules_match_the_node(tmp_path):
    """Zero stamps fall back to the log time, nanosec out of range is a bad message, and a jump beyond the
    stamp gap starts a new episode: the model never sees a time the episode did not last."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    path = tmp_path / "stamps"
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        connection = writer.add_connection("/cam", "sensor_msgs/msg/Image", typestore=TYPESTORE)
        log_times = [500.0, 500.5, 501.0, 501.5, 530.0, 530.5]   # a 28.5 s gap after the fourth frame
        for i, log_time in enumerate(log_times):
            frame = render_scene(i / 5, 32, 32)
            msg = Image(height=32, width=32, encoding="rgb8", step=96, data=array.array("B", frame.tobytes()))
            if i == 1:
                msg.header.stamp.sec, msg.header.stamp.nanosec = 500, 1_500_000_000   # not a time
            writer.write(connection, int(log_time * 1e9), serialize_message(msg))  # other stamps: zero
    read = read_episodes(path, ["/cam"], sample_fps=2.0, max_gap=10.0)
    assert read.bad_messages == 1
    assert len(read.episodes) == 2
    assert read.episodes[0].stamps == pytest.approx([500.0, 501.0, 501.5], abs=1e-6)
    assert read.episodes[1].stamps == pytest.approx([530.0, 530.5], abs=1e-6)
    assert read.episodes[0].times == pytest.approx([0.0, 1.0, 1.5], abs=1e-6)
    assert read.episodes[1].times == pytest.approx([0.0, 0.5], abs=1e-6)


def test_a_failing_episode_is_reported_and_the_others_written(tmp_path, reward_model):
    """One episode that cannot be scored (its frames have another size than the engine accepts) is
    recorded with its error; the others are scored."""
    from topreward_ros.evaluation.bag_eval import evaluate_episodes, summarize
    from topreward_ros.stream.settings import RewardSettings
    from topreward_ros.sources.bags import BagEpisodes
    from topreward_ros.stream.episode import Episode

    good = [render_scene(i / 3, 64, 64) for i in range(4)]
    broken = [np.zeros((64, 64, 4), np.uint8)] * 2  # not RGB: the engine refuses it
    episodes = [Episode("bag", 0, "", good, [0.0, 0.5, 1.0, 1.5], [0.0, 0.5, 1.0, 1.5]),
                Episode("bag", 1, "", broken, [0.0, 0.5], [0.0, 0.5]),
                Episode("bag", 2, "", good, [0.0, 0.5, 1.0, 1.5], [0.0, 0.5, 1.0, 1.5])]
    results = evaluate_episodes(reward_model, RewardSettings(resolution=(64, 64), max_frames=8),
                                BagEpisodes(episodes, 0, 8), ["open the drawer"] * 3, show_progress=False)
    assert [r.failed for r in results] == [False, True, False]
    assert "frame must be an HxWx3 uint8 RGB image" in results[1].error
    summary = summarize(results)
    assert summary["episodes"] == 2 and [row["episode"] for row in summary["failed_episodes"]] == [1]
    assert results[0].report.curve.values == results[2].report.curve.values
