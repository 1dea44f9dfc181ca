"""topreward-replay BAG: play a bag over DDS at its recorded timing, with /clock, and record
what the reward node publishes, the way `ros2 bag play --clock` + `ros2 bag record` would.

Messages are published as recorded (serialized CDR, no re-encoding) on publishers of their
recorded types; /clock (rosgraph_msgs/Clock) carries each message's log time. With
--marker-topic, each marker message restarts the node's episode before the next frame
(a std_msgs/String marker's task is set through the node's `task` parameter, then ~/reset
is called). The node's updates go to a CSV (and optionally a bag).

While playing, the frames the node should score are counted by the node's own sampling rules
(without decoding); before each marker's reset the replay waits until the node's updates cover
them (a reset discards frames not yet scored), and it exits with status 1 (after writing the
CSV) when the updates cover fewer frames than were played for scoring. After the last message it
waits until they cover them (at most DISCOVERY_TIMEOUT; a slow model merges them into a few late updates), then
until the node has been quiet for --drain seconds.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from ..sources.bags import COMPRESSED, IMAGE, STRING, decoded, messages, opened_bag, warn_skipped
from ..sources.image_messages import DEFAULT_IMAGE_TOPIC, ImageConversionError, check_message, header_stamp
from ..errors import TopRewardError
from ..options import int_between, new_path, output_file, playback_rate, wait_seconds
from ..outputs import atomic_path
from ..stream.episode_stream import EpisodeStream
from ..stream.update import RewardUpdate
from ..stream.settings import RewardSettings
from ..ros.services import EpisodeStarter
from ..ros.update_listener import ReceivedUpdates, frames_covered
from .common import add_settings_arguments, settings_from
from .program import entry_point, program_parser

PROG = "topreward-replay"
RECORDED = {"update": "std_msgs/msg/String", "reward": "std_msgs/msg/Float32", "success": "std_msgs/msg/Bool"}
DISCOVERY_TIMEOUT = 30.0
MAX_LOOPS = 10_000
# The node's settings its sampling follows: given as the node has them, the replay counts the frames it should score.
NODE_SAMPLING = ("sample_fps", "max_stamp_gap", "stamp_tolerance", "camera_slop")


def message_class(msgtype: str):
    package, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as exc:
        raise TopRewardError(f"message type {msgtype} is not available in this ROS install") from exc


class Replayer:
    def __init__(self, node, node_name: str, record_bag: Path | None):
        self.node = node
        self.lock = threading.Lock()
        self.updates = ReceivedUpdates()
        self.last_update = time.monotonic()
        self.record: list[tuple[str, str, int, bytes]] = []  # (topic, msgtype, log time ns, serialized)
        self.record_bag = record_bag
        self.node_name = node_name.rstrip("/")
        for name, msgtype in RECORDED.items():
            node.create_subscription(message_class(msgtype), f"{self.node_name}/{name}",
                                     lambda data, name=name, msgtype=msgtype: self._on_output(name, msgtype, data),
                                     100, raw=True)
        self.update_topic = f"{self.node_name}/update"

    def _on_output(self, name: str, msgtype: str, data: bytes) -> None:
        with self.lock:
            self.last_update = time.monotonic()
            if name == "update":
                self.updates.add(deserialize_message(data, String).data)
            if self.record_bag:
                self.record.append((name, msgtype, time.time_ns(), data))

    def wait_covered(self, frames: int, timeout: float) -> None:
        """Wait until the node's updates cover ``frames`` sampled frames (or ``timeout`` s pass)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.updates.frames_covered() >= frames:
                return
            time.sleep(0.01)


def coverage_error(updates: list[RewardUpdate], expected: int) -> str | None:
    """Why the replay failed when the updates cover fewer frames than were played for scoring, else None."""
    covered = frames_covered(updates)
    if covered >= expected:
        return None
    return (f"the node's {len(updates)} updates cover {covered} of the {expected} frames played for scoring "
            f"({expected - covered} never scored: no task set, another sample rate, frames lost or dropped; "
            "see the node's log and /diagnostics)")


def topics_to_play(args) -> tuple[list[str], list[str]]:
    """The topics played and the image topics the node scores; an error if one is not in the bag."""
    with opened_bag(args.bag) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
    chosen = args.topics or [t for t in types if t != args.marker_topic]
    missing = [t for t in chosen + ([args.marker_topic] if args.marker_topic else []) if t not in types]
    if missing:
        raise TopRewardError(f"topic {missing[0]} is not in {args.bag}; it has: {', '.join(sorted(types))}")
    played_images = [t for t in chosen if types[t] in (IMAGE, COMPRESSED)]
    # The node's cameras: as given, else the played image topics it subscribes to (--wait-for), else all of them.
    image_topics = args.image_topics or [t for t in played_images if t in args.wait_for] or played_images
    for topic in image_topics:
        if topic not in types:
            raise TopRewardError(f"topic {topic} is not in {args.bag}; it has: {', '.join(sorted(types))}")
        if types[topic] not in (IMAGE, COMPRESSED):
            raise TopRewardError(f"topic {topic} has type {types[topic]}; expected {IMAGE} or {COMPRESSED}")
    if not image_topics:
        raise TopRewardError(f"none of the played topics ({', '.join(chosen)}) is an image topic; "
                             "name the node's cameras with --image-topics")
    return chosen, image_topics


class SampledFrames:
    """Counts the frames the node samples from what is played, by the node's own rules (stamps, header
    checks, camera pairing, sampling, restarts), without decoding a pixel."""

    NO_PIXELS = np.zeros((0, 0, 3), np.uint8)  # every sampled group's "frame": only the count matters

    def __init__(self, image_topics: list[str], settings: RewardSettings):
        self.camera_of = {topic: i for i, topic in enumerate(image_topics)}
        self.stream = EpisodeStream(len(image_topics), lambda messages: self.NO_PIXELS, settings.sample_fps,
                                    settings.camera_slop, settings.max_stamp_gap, settings.stamp_tolerance)
        self.count = 0

    def add(self, topic: str, msg, log_time_ns: int) -> None:
        if topic not in self.camera_of:
            return
        try:
            stamp, _ = header_stamp(msg, log_time_ns * 1e-9)  # the node's clock is /clock, the log time
            check_message(msg)
        except ImageConversionError:
            return
        self.count += len(self.stream.add(self.camera_of[topic], stamp, msg).sampled)


def play(args) -> int:
    chosen, image_topics = topics_to_play(args)
    rclpy.init()
    node = rclpy.create_node("topreward_replay")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        with opened_bag(args.bag) as reader:
            return _play(args, reader, node, chosen, SampledFrames(image_topics, settings_from(args)))
    finally:
        executor.shutdown()
        spinner.join()
        node.destroy_node()
        rclpy.try_shutdown()


def _play(args, reader, node, chosen: list[str], sampled: SampledFrames) -> int:
    topics = {c.topic: c for c in reader.connections}
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    publishers = {t: node.create_publisher(message_class(topics[t].msgtype), t, reliable) for t in chosen}
    clock = node.create_publisher(Clock, "/clock", 10)
    replayer = Replayer(node, args.node, Path(args.record_bag) if args.record_bag else None)
    start_episode = EpisodeStarter(node, args.node)  # its clients match the node's services while we wait here

    deadline = time.monotonic() + DISCOVERY_TIMEOUT
    while time.monotonic() < deadline and not (
            all(p.get_subscription_count() > 0 for t, p in publishers.items() if t in args.wait_for)
            and node.count_publishers(replayer.update_topic) > 0):
        time.sleep(0.1)
    if time.monotonic() >= deadline:
        raise TopRewardError(f"no reward node found (nothing subscribes to {', '.join(args.wait_for)} or publishes "
                             f"{replayer.update_topic} within {DISCOVERY_TIMEOUT:.0f} s)")
    time.sleep(args.settle)

    wanted = [topics[t] for t in chosen] + ([topics[args.marker_topic]] if args.marker_topic else [])
    skipped: dict[str, int] = {}  # messages that cannot be deserialized: not played, as eval-bag skips them
    for _ in range(args.loop):
        start_wall, start_log = time.monotonic(), None
        for connection, timestamp, rawdata in messages(reader, args.bag, wanted):
            start_log = timestamp if start_log is None else start_log
            delay = start_wall + (timestamp - start_log) / 1e9 / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            clock.publish(Clock(clock=rclpy.time.Time(nanoseconds=timestamp).to_msg()))
            read = connection.topic == args.marker_topic or connection.topic in sampled.camera_of
            msg = decoded(reader, connection, rawdata, skipped) if read else None
            if connection.topic == args.marker_topic:
                task = msg.data if msg is not None and connection.msgtype == STRING else None
                # A reset discards the frames the node has not scored yet: let a slow model finish first.
                replayer.wait_covered(sampled.count, DISCOVERY_TIMEOUT)
                sampled.stream.reset()
                start_episode(task)  # the marker's task, if any; returns before the next frame
                continue
            if read and msg is None:
                continue
            if connection.topic in sampled.camera_of:
                sampled.add(connection.topic, msg, timestamp)
            publishers[connection.topic].publish(bytes(rawdata))
    warn_skipped(skipped, args.bag)
    replayer.wait_covered(sampled.count, DISCOVERY_TIMEOUT)  # a slow model is still scoring: not a quiet node
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < args.drain:
        with replayer.lock:
            quiet_since = max(quiet_since, replayer.last_update)
        time.sleep(0.05)
    return write_outputs(args, replayer, sampled.count)


def write_outputs(args, replayer: Replayer, expected: int) -> int:
    """The CSV (and the bag) of what the node published; 1 when its updates cover fewer than ``expected`` frames."""
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    updates = replayer.updates.so_far()
    with replayer.lock:
        record = list(replayer.record)
    with atomic_path(output) as partial, partial.open("x", newline="", encoding="utf-8") as f:
        columns = RewardUpdate.published_fields()
        writer = csv.writer(f)
        writer.writerow(columns)
        for update in updates:
            values = update.to_dict()  # the log-probs as JSON lists; floats are written as repr() writes them
            writer.writerow([json.dumps(values[name]) if isinstance(values[name], list) else values[name]
                             for name in columns])
    if args.record_bag:
        write_bag(args, Path(args.record_bag), record)
    print(f"played {args.bag} ({args.loop} time(s) at {args.rate:g}x); recorded {len(updates)} updates covering "
          f"{frames_covered(updates)} of {expected} frames to {output}")
    error = coverage_error(updates, expected)
    if error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


def write_bag(args, path: Path, record: list) -> None:
    """The recorded outputs as a new rosbag2 at ``path``, built in a hidden sibling folder and renamed into place."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_KILTED)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        with Writer(staging / path.name, version=9) as bag:
            connections = {name: bag.add_connection(f"{args.node.rstrip('/')}/{name}", msgtype,
                                                    typestore=typestore) for name, msgtype in RECORDED.items()}
            for name, _, stamp, data in record:
                bag.write(connections[name], stamp, data)
        try:
            os.rename(staging / path.name, path)
        except OSError as exc:
            raise TopRewardError(f"cannot write --record-bag {path}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    parser = program_parser(PROG, __doc__)
    parser.add_argument("bag", help="rosbag2 directory (or its .db3 / .mcap file)")
    parser.add_argument("--topics", nargs="+", help="topics to play (default: all but the marker topic)")
    parser.add_argument("--rate", type=playback_rate, default=1.0,
                        help=f"playback speed (default %(default)s; {playback_rate.describe()})")
    parser.add_argument("--loop", type=int_between(1, MAX_LOOPS), default=1,
                        help="times to play the bag (default %(default)s)")
    parser.add_argument("--marker-topic", help="episode marker topic: restart the node's episode at each marker")
    parser.add_argument("--node", default="/topreward", help="the reward node's name (default /topreward)")
    parser.add_argument("--output", type=output_file, default="out/replay.csv",
                        help="CSV of the node's updates (replaced if it exists; default %(default)s)")
    parser.add_argument("--record-bag", type=new_path,
                        help="also record reward/success/update to this new bag directory")
    parser.add_argument("--wait-for", nargs="+", default=[DEFAULT_IMAGE_TOPIC],
                        help=f"topics whose subscriber must be up before playing (default {DEFAULT_IMAGE_TOPIC})")
    parser.add_argument("--settle", type=wait_seconds, default=1.0,
                        help="seconds to wait after discovery (default %(default)s)")
    parser.add_argument("--drain", type=wait_seconds, default=3.0,
                        help="seconds without updates before stopping, once the updates cover the frames played "
                             f"(or {DISCOVERY_TIMEOUT:.0f} s passed; default %(default)s)")
    parser.add_argument("--image-topics", nargs="+",
                        help="the node's image topics, to count the frames it should score (default: the played "
                             "Image and CompressedImage topics named in --wait-for, else all played ones)")
    add_settings_arguments(parser, "the node's sampling (its parameters: to count the frames it should score)",
                           NODE_SAMPLING)
    return parser


main = entry_point(PROG, build_parser, play)


if __name__ == "__main__":
    sys.exit(main())
