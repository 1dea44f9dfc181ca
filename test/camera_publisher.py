"""A camera in its own process: publishes synthetic frames over DDS at a fixed rate.

    python camera_publisher.py --topic /camera/image_raw --rate 30 --seconds 20 [--reliable]
        [--transport raw|compressed] [--encoding rgb8] [--bad MODE ...] [--size 640x480]

--bad inserts one broken message of each MODE (wrong_encoding, truncated, empty, wrong_step,
corrupt_jpeg, bad_stamp, late_stamp: a good image stamped 0.2 s ago, as a reordered or jittery
one comes) every second among the good frames. Header stamps are the publisher's
clock, or zero with --zero-stamps (a driver that never sets them).
"""

import argparse
import array
import time

import cv2
import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from topreward_ros.synthetic.scene import render_scene

LATE = 0.2  # seconds a late_stamp message lies behind: within the node's default stamp_tolerance


def image_message(frame: np.ndarray, encoding: str) -> Image:
    msg = Image(height=frame.shape[0], width=frame.shape[1], encoding=encoding, is_bigendian=0)
    data = frame if encoding == "rgb8" else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    msg.step = frame.shape[1] * 3
    msg.data = array.array("B", data.tobytes())  # array.array: rclpy's fast path
    return msg


def bad_message(mode: str, frame: np.ndarray):
    if mode == "corrupt_jpeg":
        return CompressedImage(format="jpeg", data=array.array("B", b"\xff\xd8\xff\xe0 not really a jpeg"))
    msg = image_message(frame, "rgb8")
    if mode == "wrong_encoding":
        msg.encoding = "32FC7"
    elif mode == "truncated":
        msg.data = msg.data[: len(msg.data) // 3]
    elif mode == "empty":
        msg.height = msg.width = msg.step = 0
        msg.data = array.array("B")
    elif mode == "wrong_step":
        msg.step = msg.width  # smaller than width * 3
    return msg


def set_stamp(msg, node, mode: str | None = None, zero: bool = False, offset: float = 0.0) -> None:
    if zero:
        return  # a default header's stamp is 0.0
    if mode == "late_stamp":
        offset -= LATE
    msg.header.stamp = (node.get_clock().now() + Duration(nanoseconds=int(offset * 1e9))).to_msg()
    if mode == "bad_stamp":
        msg.header.stamp.nanosec = 1_500_000_000  # not a time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", default="/camera/image_raw")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--encoding", default="rgb8")
    parser.add_argument("--transport", default="raw")
    parser.add_argument("--reliable", action="store_true")
    parser.add_argument("--bad", nargs="*", default=[])
    parser.add_argument("--zero-stamps", action="store_true")
    parser.add_argument("--stamp-offset", type=float, default=0.0, help="seconds added to every stamp")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    rclpy.init()
    node = rclpy.create_node("camera_publisher")
    qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                     reliability=ReliabilityPolicy.RELIABLE if args.reliable else ReliabilityPolicy.BEST_EFFORT)
    compressed = args.transport == "compressed"
    publisher = node.create_publisher(CompressedImage if compressed else Image, args.topic, qos)
    bad_topic = {mode: node.create_publisher(CompressedImage if mode == "corrupt_jpeg" else Image, args.topic, qos)
                 for mode in args.bad if (mode == "corrupt_jpeg") == compressed}
    frames = [render_scene(i / 59, width, height) for i in range(60)]
    start = time.monotonic()
    count = 0
    while time.monotonic() - start < args.seconds:
        frame = frames[count % len(frames)]
        if compressed:
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            msg = CompressedImage(format="jpeg", data=array.array("B", data.tobytes()))
        else:
            msg = image_message(frame, args.encoding)
        set_stamp(msg, node, zero=args.zero_stamps, offset=args.stamp_offset)
        msg.header.frame_id = "camera"
        publisher.publish(msg)
        if count % round(args.rate) == 0:
            for mode, bad_publisher in bad_topic.items():
                broken = bad_message(mode, frame)
                set_stamp(broken, node, mode)
                bad_publisher.publish(broken)
        count += 1
        time.sleep(max(0.0, start + count / args.rate - time.monotonic()))
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
