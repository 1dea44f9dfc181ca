"""Every bad option of the offline tools is one `error:` line and exit status 2, before the model
loads (the model given is a directory that does not exist, so reaching it would say so), with no
traceback and nothing written (test_options.py feeds every numeric, size and output option its
bad values; the cases here need files or the tool's own checks). Reports are built aside and replace
only a previous report of the same tool; bad bag messages are described a few times per topic, then
counted; the replay fails when the node's updates cover fewer frames than it played."""

import argparse
import json
import logging
import re
import threading

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from topreward_ros.evaluation.report import check_report_folder, staged_report
from topreward_ros.outputs import OutputError
from topreward_ros.sources.bags import WARNINGS_PER_TOPIC, open_bag, read_episodes
from topreward_ros.stream.update import RewardUpdate
from topreward_ros.stream.settings import RewardSettings
from topreward_ros.synthetic.scene import render_scene

from test_eval_video import run_tool

NO_MODEL = "/nonexistent/model"
TASK = "put the block in the bowl"


def snapshot(folder):
    """Every path under ``folder`` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    made = run_tool("topreward-make-sample-video", str(root / "clip.mp4"), "--seconds", "2", "--fps", "5")
    assert made.returncode == 0
    assert run_tool("topreward-make-sample-bag", str(root / "bag"), "--progress", "1.0", "--seconds", "2",
                    "--fps", "5").returncode == 0
    (root / "malformed.yaml").write_text("prompts: [unclosed")
    (root / "latin1.yaml").write_bytes("prompts: ['Voil\xe0 {task} The answer is:']".encode("latin-1"))
    (root / "keys.yaml").write_text("episodes: {first: open the drawer}")
    (root / "null.yaml").write_text("episodes: {0: null}")
    (root / "a_file").write_text("not a folder")
    (root / "episodes_latin1.yaml").write_bytes("episodes: {0: 'ouvrir le tiroir \xe0 gauche'}".encode("latin-1"))
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("mine")
    (root / "foreign" / "curve.json").write_text("{}")
    (root / "recorded").mkdir()
    return root


def assert_one_error_line(result, expected: str):
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "model directory not found" not in result.stderr


@pytest.mark.parametrize("options,expected", [
    (["--prefixes", "1"], "must be an integer from 2 to"),
    (["--prefixes", "1e12"], "not an integer"),
    (["--prompts-file", "{root}/malformed.yaml"], "not valid YAML"),
    (["--prompts-file", "{root}/latin1.yaml"], "cannot read prompt file"),
    (["--output", "{root}/a_file"], "exists and is not a folder"),
    (["--output", "{root}/a_file/report"], "a_file exists and is not a folder"),
    (["--output", "{root}/foreign"],
     "holds files that are not from a previous topreward-eval-video report (notes.txt)"),
    (["--resolution", "500x384"], "multiples of 32"),
    (["--ensemble", "11"], "ensemble size must be between 1 and 10"),
])
def test_eval_video_bad_options(inputs, options, expected):
    options = [o.format(root=inputs) for o in options]
    before = snapshot(inputs)
    result = run_tool("topreward-eval-video", str(inputs / "clip.mp4"), "--task", TASK,
                      "--model", NO_MODEL, "--output", str(inputs / "never"), *options)
    assert_one_error_line(result, expected)
    assert snapshot(inputs) == before  # "never" not created, the existing folders unchanged


@pytest.mark.parametrize("options,expected", [
    (["--max-frames", "5"], "must be an even integer from 4 to 1024"),
    (["--max-frames", "64.0"], "not an integer"),
    (["--stamp-tolerance", "nan"], "must be a number from 0 to 60"),
    (["--stamp-tolerance", "1e308"], "must be a number from 0 to 60"),
    (["--prompts-file", "{root}/malformed.yaml"], "not valid YAML"),
    (["--prompts-file", "{root}/latin1.yaml"], "cannot read prompt file"),
    (["--episodes-yaml", "{root}/keys.yaml"], "is not an episode number"),
    (["--episodes-yaml", "{root}/null.yaml"], "the task must be a non-empty string, got None"),
    (["--episodes-yaml", "{root}/episodes_latin1.yaml"], "not UTF-8 text"),
    (["--episodes-yaml", "{root}/malformed.yaml"], "cannot read --episodes-yaml"),
    (["--output", "{root}/a_file"], "exists and is not a folder"),
    (["--output", "{root}/foreign"], "holds files that are not from a previous topreward-eval-bag report"),
    (["--image-topics", "/nope"], "topic /nope is not in"),
])
def test_eval_bag_bad_options(inputs, options, expected):
    options = [o.format(root=inputs) for o in options]
    before = snapshot(inputs)
    result = run_tool("topreward-eval-bag", str(inputs / "bag"), "--task", TASK,
                      "--model", NO_MODEL, "--output", str(inputs / "never"), *options)
    assert_one_error_line(result, expected)
    assert snapshot(inputs) == before


@pytest.mark.parametrize("options,expected", [
    (["--consecutive", "1001"], "must be an integer from 1 to 1000"),
    (["--prompts-file", "{root}/latin1.yaml"], "cannot read prompt file"),
    (["--output", "{root}/recorded"], "is a folder; give a file name"),
    (["--output", "{root}/a_file/params.yaml"], "a_file exists and is not a folder"),
])
def test_calibrate_bad_options(inputs, tmp_path, options, expected):
    options = [o.format(root=inputs) for o in options]
    (tmp_path / "bag").symlink_to(inputs / "bag")
    (tmp_path / "labels.yaml").write_text("episodes: [{bag: bag, episode: 0, success: true}, "
                                          "{bag: bag, episode: 1, success: false}]")
    before = snapshot(inputs)
    result = run_tool("topreward-calibrate", str(tmp_path / "labels.yaml"), "--model", NO_MODEL,
                      "--output", str(tmp_path / "params.yaml"), *options)
    assert_one_error_line(result, expected)
    assert not (tmp_path / "params.yaml").exists() and snapshot(inputs) == before


@pytest.mark.parametrize("labels,expected", [
    ("episodes: [{bag: bag, episode: first, success: true}, {bag: bag, episode: 1, success: false}]",
     "episode must be an episode number"),
    ("episodes: [{bag: bag, episode: 0, success: true, task: 7}, {bag: bag, episode: 1, success: false}]",
     "task must be a non-empty string"),
    ("episodes: [{bag: bag, episode: 0, success: true}, {bag: bag, episode: 0, success: false}]",
     "labelled both success and failure"),
    ("episodes: [{bag: bag, episode: 0, success: false}, {bag: bag, episode: 1, success: false}]",
     "need at least one success and one failure episode, got only failures"),
    ("episodes: [{bag: bag, episode: 0, success: true}, {bag: bag, episode: 1, success: true}]",
     "need at least one success and one failure episode, got only successes"),
    ("episodes: [{bag: elsewhere, episode: 0, success: true}, {bag: bag, episode: 1, success: false}]",
     "no such bag"),
    ("episodes: [{bag: bag, episode: 0, success: true}, {bag: bag, episode: 1, success: false}]\ntask: [x]",
     "'task' must be a string"),
    ("episodes: [{bag: bag, episode: 0, success: true}", "not valid YAML"),
    ("episodes: [{bag: bag, episode: 0, success: true, task: '\xe0'}]".encode("latin-1"), "not UTF-8 text"),
])
def test_calibrate_bad_labels_fail_before_the_model(inputs, tmp_path, labels, expected):
    (tmp_path / "bag").symlink_to(inputs / "bag")
    if isinstance(labels, bytes):
        (tmp_path / "labels.yaml").write_bytes(labels)
    else:
        (tmp_path / "labels.yaml").write_text(labels)
    result = run_tool("topreward-calibrate", str(tmp_path / "labels.yaml"), "--model", NO_MODEL,
                      "--output", str(tmp_path / "params.yaml"))
    assert_one_error_line(result, expected)
    assert not (tmp_path / "params.yaml").exists()


@pytest.mark.parametrize("options,expected", [
    (["--rate", "0"], "argument --rate: must be a number from 0.01 to 100"),
    (["--stamp-tolerance", "-0.1"], "must be a number from 0 to 60"),
    (["--record-bag", "{root}/recorded"], "argument --record-bag: {root}/recorded already exists"),
    (["--output", "{root}/recorded"], "is a folder; give a file name"),
    (["--image-topics", "/nope"], "topic /nope is not in"),
    (["--topics", "/nope"], "topic /nope is not in"),
])
def test_replay_bad_options(inputs, tmp_path, options, expected):
    """Refused before anything is played (no node runs here: reaching discovery would time out)."""
    options = [o.format(root=inputs) for o in options]
    before = snapshot(inputs)
    result = run_tool("topreward-replay", str(inputs / "bag"), "--output", str(tmp_path / "live.csv"), *options,
                      timeout=60)
    assert_one_error_line(result, expected.format(root=inputs))
    assert not (tmp_path / "live.csv").exists() and snapshot(inputs) == before


BAG_REPORT = re.compile(r"summary\.(json|md)|episode_\d{3,}\.(json|csv|png)")


def write_files(folder, names, run="old"):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(f"{run} {name}")


def test_a_new_report_folder_appears_complete(tmp_path):
    folder = tmp_path / "deep" / "report"
    with staged_report(folder, BAG_REPORT, "tool") as staging:
        assert not folder.exists() and staging.parent == folder.parent
        write_files(staging, ["episode_000.json", "summary.json"])
    assert sorted(p.name for p in folder.iterdir()) == ["episode_000.json", "summary.json"]
    assert [p.name for p in folder.parent.iterdir()] == ["report"]  # no staging folder left


def test_a_rerun_replaces_the_previous_report_and_leaves_none_of_its_files(tmp_path):
    folder = tmp_path / "report"
    write_files(folder, [f"episode_00{i}.{ext}" for i in range(8) for ext in ("json", "csv", "png")]
                + ["summary.json", "summary.md"])
    (folder / ".topreward-partial-killed").mkdir()  # left by a run that was killed
    with staged_report(folder, BAG_REPORT, "tool", last=["summary.json"]) as staging:
        write_files(staging, ["episode_000.json", "episode_000.csv", "episode_000.png", "summary.json"], run="new")
    assert sorted(p.name for p in folder.iterdir()) == ["episode_000.csv", "episode_000.json", "episode_000.png",
                                                        "summary.json"]
    assert {p.read_text().split()[0] for p in folder.iterdir()} == {"new"}


def test_a_failed_run_leaves_the_previous_report_untouched(tmp_path):
    folder = tmp_path / "report"
    write_files(folder, ["episode_000.json", "episode_007.json", "summary.json"])
    before = snapshot(tmp_path)
    with pytest.raises(KeyboardInterrupt), staged_report(folder, BAG_REPORT, "tool") as staging:
        write_files(staging, ["episode_000.json"], run="new")
        raise KeyboardInterrupt
    assert snapshot(tmp_path) == before
    with pytest.raises(RuntimeError), staged_report(tmp_path / "new", BAG_REPORT, "tool") as staging:
        write_files(staging, ["summary.json"])
        raise RuntimeError("scoring failed")
    assert snapshot(tmp_path) == before  # the new folder never appeared


@pytest.mark.parametrize("entry,message", [
    ("notes.txt", "holds files that are not from a previous tool report (notes.txt)"),
    ("episode_7.json", "(episode_7.json)"),
    ("subfolder/", "(subfolder)"),
])
def test_a_folder_holding_other_files_is_refused(tmp_path, entry, message):
    folder = tmp_path / "report"
    write_files(folder, ["summary.json"])
    if entry.endswith("/"):
        (folder / entry).mkdir()
    else:
        (folder / entry).write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match=re.escape(message)):
        check_report_folder(folder, BAG_REPORT, "tool")
    with pytest.raises(OutputError, match=re.escape(message)), staged_report(folder, BAG_REPORT, "tool"):
        pass
    assert snapshot(tmp_path) == before


def test_eval_bag_rerun_into_a_report_with_more_episodes(inputs, tiny_model_dir, tmp_path):
    """End to end: a previous report with episodes 0..7 is replaced by this run's single episode."""
    out = tmp_path / "report"
    write_files(out, [f"episode_00{i}.{ext}" for i in range(8) for ext in ("json", "csv", "png")]
                + ["summary.json", "summary.md"])
    result = run_tool("topreward-eval-bag", str(inputs / "bag"), "--task", TASK, "--model", str(tiny_model_dir),
                      "--output", str(out), "--resolution", "64x96", "--json-summary")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["episode_000.csv", "episode_000.json", "episode_000.png",
                                                     "summary.json", "summary.md"]
    assert json.loads((out / "summary.json").read_text())["episodes"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_bad_bag_messages_are_described_three_times_per_topic_then_counted(tmp_path, caplog):
    typestore = get_typestore(Stores.ROS2_KILTED)
    Image, Header, Time = (typestore.types[t] for t in ("sensor_msgs/msg/Image", "std_msgs/msg/Header",
                                                         "builtin_interfaces/msg/Time"))

    def image(i, encoding):
        frame = render_scene(i / 20, 64, 48)
        return Image(header=Header(stamp=Time(sec=100 + i // 10, nanosec=(i % 10) * 100_000_000), frame_id="cam"),
                     height=48, width=64, encoding=encoding, is_bigendian=0, step=64 * 3,
                     data=np.frombuffer(frame.tobytes(), np.uint8))

    path = tmp_path / "bad"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=typestore)
        for i in range(20):
            msg = image(i, "rgb8" if i % 2 == 0 else "bogus")
            writer.write(connection, 100_000_000_000 + i * 100_000_000,
                         typestore.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    with caplog.at_level(logging.WARNING, logger="topreward_ros.sources.bags"):
        read = read_episodes(path, ["/camera/image_raw"], sample_fps=2.0)
    assert read.bad_messages == 10 and len(read.episodes[0].frames) == 4
    described = [r for r in caplog.records if "skipped a message" in r.getMessage()]
    summaries = [r for r in caplog.records if "bad messages skipped in all" in r.getMessage()]
    assert len(described) == WARNINGS_PER_TOPIC == 3
    assert len(summaries) == 1 and "10 on /camera/image_raw" in summaries[0].getMessage()


@pytest.fixture(scope="module")
def replay():
    pytest.importorskip("rclpy")
    from topreward_ros.tools import replay

    return replay


class FakeReplayer:
    def __init__(self, updates):
        from topreward_ros.ros.update_listener import ReceivedUpdates

        self.lock = threading.Lock()
        self.updates, self.record = ReceivedUpdates(), []
        for update in updates:
            self.updates.add(update.to_json())


def updates_covering(*added):
    return [RewardUpdate(episode=0, task=TASK, stamp=1.0 + i, time=float(i), reward=-1.0, score=-1.0, progress=0.0,
                         success=False, true_logprobs=(-1.0,), false_logprobs=(-2.0,), frames=i + 1, stride=1,
                         added=n, skipped=0, latency_ms=1.0) for i, n in enumerate(added)]


def test_replay_compares_the_frames_the_updates_cover_with_the_frames_played(replay):
    """Unit level (no DDS): merged updates count their `added` frames (a record without `added` is refused
    as it is read: test_update_fields)."""
    assert replay.frames_covered(updates_covering(1, 3, 1)) == 5
    assert replay.coverage_error(updates_covering(1, 3, 1), 5) is None
    assert replay.coverage_error(updates_covering(1, 3, 1, 1), 5) is None
    message = replay.coverage_error(updates_covering(1, 3), 5)
    assert "cover 4 of the 5 frames played for scoring" in message and "\n" not in message
    assert "cover 0 of the 8 frames" in replay.coverage_error([], 8)


@pytest.mark.parametrize("added,status", [((1, 3, 1), 0), ((1, 2), 1)])
def test_replay_writes_its_csv_then_fails_when_frames_were_not_scored(replay, tmp_path, capsys, added, status):
    args = argparse.Namespace(output=str(tmp_path / "live.csv"), record_bag=None, bag="b", loop=1, rate=1.0,
                              node="/topreward")
    assert replay.write_outputs(args, FakeReplayer(updates_covering(*added)), 5) == status
    rows = (tmp_path / "live.csv").read_text().splitlines()
    assert len(rows) == 1 + len(added) and rows[0].startswith("episode,task,stamp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.csv"]  # written atomically: no temporary left
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == status
    if status:
        assert "cover 3 of the 5 frames" in errors[0]


def test_replay_counts_the_frames_eval_bag_samples(replay, inputs):
    args = argparse.Namespace(bag=str(inputs / "bag"), topics=None, image_topics=None, marker_topic=None,
                              wait_for=["/camera/image_raw"], sample_fps=2.0, loop=1)
    chosen, image_topics = replay.topics_to_play(args)
    assert image_topics == ["/camera/image_raw"] and "/camera/image_raw/compressed" in chosen
    counted = replay.SampledFrames(image_topics, RewardSettings(sample_fps=2.0))
    with open_bag(inputs / "bag") as reader:
        for connection, timestamp, rawdata in reader.messages():
            if connection.topic in counted.camera_of:
                counted.add(connection.topic, reader.deserialize(rawdata, connection.msgtype), timestamp)
    once = read_episodes(inputs / "bag", image_topics, 2.0)
    assert counted.count == sum(len(e.frames) for e in once.episodes) == 4
