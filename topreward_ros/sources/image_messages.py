"""ROS image messages to RGB numpy frames, without cv_bridge and without importing ROS.

Works on any object with the message's fields (duck typing): rclpy messages, whose `data`
is `array.array('B')` or bytes, and messages read by `rosbags`, whose `data` is a numpy array.
A message is read in two steps, the same live and offline: ``check_message`` (every message:
header fields and the declared size, no pixels touched) and ``message_to_rgb`` (only the
sampled ones: the decode). ``header_stamp`` reads the stamp the same way for both.
"""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
from PIL import Image as PILImage

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
DEFAULT_MAX_PIXELS = 40_000_000  # 8K video is 33 MP; a larger declared size is refused before decoding
DEFAULT_IMAGE_TOPIC = "/camera/image_raw"  # the camera topic of the node, the bag tools and the test publishers


class StampError(ImageConversionError):
    """A header stamp that is not a time (nanoseconds out of range)."""


def header_stamp(msg: Any, fallback: float) -> tuple[float, bool]:
    """The header stamp in seconds, and whether ``fallback`` (receive or log time) stood in for it.

    A zero stamp (a driver that never sets it) falls back; nanosec >= 1e9 is not a time and raises.
    """
    sec, nanosec = int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)
    if not 0 <= nanosec < 1_000_000_000:
        raise StampError(f"header stamp nanosec {nanosec} is out of range (0 to 999999999)")
    if sec == 0 and nanosec == 0:
        return fallback, True
    return sec + nanosec * 1e-9, False


def is_compressed(msg: Any) -> bool:
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def check_message(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise ImageConversionError if the message cannot be a frame; reads headers only, never pixels."""
    if is_compressed(msg):
        width, height = compressed_size(msg)
    else:
        _raw_layout(msg)
        width, height = int(msg.width), int(msg.height)
    if width * height > max_pixels:
        raise ImageConversionError(f"image declares {width}x{height} = {width * height} pixels, more than the "
                                   f"limit {max_pixels} (max_image_pixels); dropped before decoding")


def message_to_rgb(msg: Any) -> np.ndarray:
    """Image or CompressedImage -> new C-contiguous HxWx3 uint8 RGB array (``check_message`` it first)."""
    return compressed_to_rgb(msg) if is_compressed(msg) else image_to_rgb(msg)


def compressed_size(msg: Any) -> tuple[int, int]:
    """(width, height) a compressed image declares in its header (Pillow reads only the header)."""
    data = _bytes(msg.data)
    if data.size == 0:
        raise ImageConversionError(f"compressed image has no data (format {msg.format!r})")
    try:
        with PILImage.open(io.BytesIO(data.tobytes())) as image:
            return image.size
    except PILImage.DecompressionBombError as exc:
        raise ImageConversionError(f"compressed image declares an absurd size ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageConversionError(
            f"cannot decode compressed image (format {msg.format!r}, {data.size} bytes): unreadable header") from exc


def _bytes(data: Any) -> np.ndarray:
    """A flat uint8 view of a message's `data` (bytes, array.array('B') or numpy array)."""
    return np.frombuffer(memoryview(data), dtype=np.uint8)


def image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> new C-contiguous HxWx3 uint8 RGB array.

    Row padding (`step` > width x bytes per pixel) and bytes past step x height are ignored.
    16-bit encodings (mono16, 16UC1) are read in the byte order `is_bigendian` names and mapped
    to 8 bits by a fixed `value >> 8` (no per-frame normalisation, so brightness stays comparable).
    """
    key, bpp, code = _raw_layout(msg)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * bpp
    data = _bytes(msg.data)
    pixels = data[: step * height].reshape(height, step)[:, :row_bytes].reshape(height, width, bpp)
    if key in _SIXTEEN_BIT:
        high = 0 if msg.is_bigendian else 1  # value >> 8 is the most significant byte
        pixels = pixels[:, :, high : high + 1]
    if code is None:
        return pixels.copy()
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


def _raw_layout(msg: Any) -> tuple[str, int, int | None]:
    """(encoding key, bytes per pixel, cv2 code) after checking every header field against the data size."""
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
    return key, bpp, code


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
