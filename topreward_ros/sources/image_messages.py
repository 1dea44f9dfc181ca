"""ROS image messages to RGB numpy frames, without cv_bridge and without importing ROS.

Works on any object with the message's fields (duck typing): rclpy messages, whose `data`
is `array.array('B')` or bytes, and messages read by `rosbags`, whose `data` is a numpy array.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import TopRewardError


class ImageConversionError(TopRewardError, ValueError):
    """An image message that cannot be converted to an RGB frame."""


# encoding (lowercase) -> (bytes per pixel, cv2 conversion code to RGB; None: already RGB)
_LAYOUTS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "8uc3": (3, cv2.COLOR_BGR2RGB),  # OpenCV's default channel order, as cv_bridge reads it
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "mono16": (2, cv2.COLOR_GRAY2RGB),
    "16uc1": (2, cv2.COLOR_GRAY2RGB),
    "yuv422": (2, cv2.COLOR_YUV2RGB_UYVY),  # ROS's YUV422 is UYVY byte order
    "uyvy": (2, cv2.COLOR_YUV2RGB_UYVY),
    "yuyv": (2, cv2.COLOR_YUV2RGB_YUYV),
    "yuv422_yuy2": (2, cv2.COLOR_YUV2RGB_YUYV),
    # OpenCV's two-letter Bayer names come from the 2nd row's 2nd and 3rd pixels, so they look
    # shifted against ROS's (as in cv_bridge); the RGGB-style aliases exist only in newer OpenCV
    "bayer_rggb8": (1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": (1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": (1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": (1, cv2.COLOR_BayerGB2RGB),
}
_SIXTEEN_BIT = frozenset({"mono16", "16uc1"})
_TWO_PIXEL_MACROPIXEL = frozenset({"yuv422", "uyvy", "yuyv", "yuv422_yuy2"})

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)


def _bytes(data: Any) -> np.ndarray:
    """A flat uint8 view of a message's `data` (bytes, array.array('B') or numpy array)."""
    return np.frombuffer(memoryview(data), dtype=np.uint8)


def image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> new C-contiguous HxWx3 uint8 RGB array.

    Row padding (`step` > width x bytes per pixel) and bytes past step x height are ignored.
    16-bit encodings (mono16, 16UC1) are read in the byte order `is_bigendian` names and mapped
    to 8 bits by a fixed `value >> 8` (no per-frame normalisation, so brightness stays comparable).
    """
    encoding = str(msg.encoding)
    key = encoding.lower()
    layout = _LAYOUTS.get(key)
    if layout is None:
        raise ImageConversionError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    bpp, code = layout
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f"image is {width}x{height}")
    row_bytes = width * bpp
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width x bytes per pixel {row_bytes} "
            f"(width {width}, encoding {encoding!r})"
        )
    if key in _TWO_PIXEL_MACROPIXEL and width % 2:
        raise ImageConversionError(f"encoding {encoding!r} needs an even width, got {width}")
    data = _bytes(msg.data)
    if data.size < step * height:
        raise ImageConversionError(
            f"data has {data.size} bytes, expected at least {step * height} "
            f"(step {step} x height {height})"
        )
    pixels = data[: step * height].reshape(height, step)[:, :row_bytes].reshape(height, width, bpp)
    if key in _SIXTEEN_BIT:
        high = 0 if msg.is_bigendian else 1  # value >> 8 is the most significant byte
        pixels = pixels[:, :, high : high + 1]
    if code is None:
        return pixels.copy()
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (any format cv2.imdecode reads) -> new HxWx3 uint8 RGB array."""
    data = _bytes(msg.data)
    if data.size == 0:
        raise ImageConversionError(f"compressed image has no data (format {msg.format!r})")
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    if bgr is None:
        raise ImageConversionError(
            f"cannot decode compressed image (format {msg.format!r}, {data.size} bytes)"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
