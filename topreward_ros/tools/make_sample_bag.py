"""topreward-make-sample-bag DIR: a synthetic multi-episode rosbag2 for demos and tests.

Each episode carries a red block toward a bowl; episode i reaches progress
--progress[i] (1.0 = in the bowl). Topics: an Image topic (rgb8), a CompressedImage
topic (jpeg) of the same frames, and a std_msgs/String marker at each episode start
holding the episode's task. Header stamps continue across episodes with --gap seconds
between them; log times equal the header stamps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

from ..options import float_between, new_path
from ..sources.image_messages import DEFAULT_IMAGE_TOPIC
from ..synthetic.scene import render_scene
from .make_sample_video import add_clip_arguments

PROG = "topreward-make-sample-bag"
COMPRESSED_TOPIC = f"{DEFAULT_IMAGE_TOPIC}/compressed"  # the image_transport name of the same camera's jpegs
MARKER_TOPIC = "/episode"
DEFAULT_TASK = "put the red block in the bowl"
START_STAMP_NS = 1_700_000_000 * 1_000_000_000
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}


def write_sample_bag(path: str | Path, storage: str = "mcap", progress: tuple[float, ...] = (1.0, 0.5, 1.0),
                     seconds: float = 4.0, fps: float = 15.0, size: tuple[int, int] = (320, 240),
                     gap: float = 3.0, task: str = DEFAULT_TASK) -> Path:
    typestore = get_typestore(Stores.ROS2_KILTED)
    types = typestore.types
    width, height = size
    path = Path(path)
    with Writer(path, version=9, storage_plugin=STORAGES[storage]) as writer:
        raw = writer.add_connection(DEFAULT_IMAGE_TOPIC, types["sensor_msgs/msg/Image"].__msgtype__,
                                    typestore=typestore)
        compressed = writer.add_connection(COMPRESSED_TOPIC, types["sensor_msgs/msg/CompressedImage"].__msgtype__,
                                           typestore=typestore)
        marker = writer.add_connection(MARKER_TOPIC, types["std_msgs/msg/String"].__msgtype__, typestore=typestore)
        stamp_ns = START_STAMP_NS  # integer nanoseconds: float seconds near 1.7e9 lose sub-microsecond steps
        frames_per_episode = max(2, round(seconds * fps))
        for reached in progress:
            writer.write(marker, stamp_ns - 1, typestore.serialize_cdr(
                types["std_msgs/msg/String"](data=task), "std_msgs/msg/String"))
            for i in range(frames_per_episode):
                t_ns = stamp_ns + round(i * 1e9 / fps)
                frame = render_scene(reached * i / (frames_per_episode - 1), width, height)
                header = types["std_msgs/msg/Header"](
                    stamp=types["builtin_interfaces/msg/Time"](sec=t_ns // 1_000_000_000,
                                                               nanosec=t_ns % 1_000_000_000), frame_id="camera")
                image = types["sensor_msgs/msg/Image"](header=header, height=height, width=width, encoding="rgb8",
                                                       is_bigendian=0, step=width * 3, data=frame.reshape(-1))
                _, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                jpeg_msg = types["sensor_msgs/msg/CompressedImage"](header=header, format="jpeg",
                                                                    data=np.asarray(jpeg, np.uint8).reshape(-1))
                writer.write(raw, t_ns, typestore.serialize_cdr(image, "sensor_msgs/msg/Image"))
                writer.write(compressed, t_ns, typestore.serialize_cdr(jpeg_msg, "sensor_msgs/msg/CompressedImage"))
            stamp_ns += round((frames_per_episode / fps + gap) * 1e9)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=new_path, help="bag directory to create (must not exist)")
    parser.add_argument("--storage", choices=sorted(STORAGES), default="mcap", help="default mcap")
    parser.add_argument("--progress", type=float_between(0.0, 1.0), nargs="+", default=[1.0, 0.5, 1.0],
                        help="progress each episode reaches, from 0 to 1 (default 1.0 0.5 1.0: success, failure, "
                             "success)")
    add_clip_arguments(parser, seconds=4.0)  # --seconds is each episode's length, --fps the camera rate
    parser.add_argument("--task", default=DEFAULT_TASK, help="task written in the markers")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        path = write_sample_bag(args.output, args.storage, tuple(args.progress), args.seconds, args.fps,
                                args.size, task=args.task)
    except WriterError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(args.progress)} episodes ({args.storage}) to {path}: topics {DEFAULT_IMAGE_TOPIC}, "
          f"{COMPRESSED_TOPIC}, {MARKER_TOPIC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
