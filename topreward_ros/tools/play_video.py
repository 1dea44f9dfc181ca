"""topreward-play-video VIDEO: a camera process playing a video file over DDS as sensor_msgs/Image.

Frames go out in real time (``--rate`` to speed up) as rgb8 images; each header stamp is the
start time plus the frame's time in the video, so the reward node samples exactly the frames
the offline tools read from the same file. Waits for a subscriber before the first frame.
"""

from __future__ import annotations

import argparse
import array
import sys
import time

import rclpy
from rclpy.duration import Duration
from sensor_msgs.msg import Image

from ..errors import TopRewardError
from ..options import playback_rate, wait_seconds
from ..sources.image_messages import DEFAULT_IMAGE_TOPIC
from ..sources.video import read_episode
from .program import entry_point, program_parser

PROG = "topreward-play-video"
SUBSCRIBER_TIMEOUT = 60.0


def image(frame, stamp) -> Image:
    msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="rgb8", is_bigendian=0,
                step=frame.shape[1] * 3, data=array.array("B", frame.tobytes()))
    msg.header.stamp = stamp.to_msg()
    msg.header.frame_id = "camera"
    return msg


def play(args) -> int:
    episode = read_episode(args.video, None)
    rclpy.init()
    node = rclpy.create_node("topreward_play_video")
    try:
        publisher = node.create_publisher(Image, args.topic, 10)
        deadline = time.monotonic() + SUBSCRIBER_TIMEOUT
        while publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                raise TopRewardError(f"nothing subscribed to {args.topic} within {SUBSCRIBER_TIMEOUT:.0f} s")
            time.sleep(0.05)
        time.sleep(args.settle)
        start_stamp, start_wall = node.get_clock().now(), time.monotonic()
        for frame, t in zip(episode.frames, episode.times):
            time.sleep(max(0.0, start_wall + t / args.rate - time.monotonic()))
            publisher.publish(image(frame, start_stamp + Duration(nanoseconds=round(t * 1e9))))
        print(f"played {len(episode.frames)} frames ({episode.times[-1]:.1f} s) of {args.video} on {args.topic}")
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def build_parser() -> argparse.ArgumentParser:
    parser = program_parser(PROG, __doc__)
    parser.add_argument("video", help="video file (mp4, avi, ...)")
    parser.add_argument("--topic", default=DEFAULT_IMAGE_TOPIC, help="image topic (default %(default)s)")
    parser.add_argument("--rate", type=playback_rate, default=1.0,
                        help=f"playback speed (default %(default)s; {playback_rate.describe()})")
    parser.add_argument("--settle", type=wait_seconds, default=1.0,
                        help="seconds between discovery and the first frame (default %(default)s)")
    return parser


def body(args: argparse.Namespace) -> int:
    try:
        return play(args)
    except KeyboardInterrupt:
        return 0


main = entry_point(PROG, build_parser, body)


if __name__ == "__main__":
    sys.exit(main())
