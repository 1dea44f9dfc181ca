"""ROS image messages -> RGB frames, on real rclpy messages and on rosbags-style namespaces."""

import types

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from topreward_ros.errors import TopRewardError
from topreward_ros.sources.image_messages import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
)

HEIGHT, ODD_WIDTH = 5, 7
FLAT = (200, 120, 40)  # distinct R, G, B: a wrong Bayer pattern or channel order changes it
RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, (HEIGHT, ODD_WIDTH, 3), dtype=np.uint8)
# 2-pixel stripes (one YUV macropixel each): three colours, then two greys differing only in luma
STRIPES = np.array(
    [[200, 60, 30]] * 2 + [[40, 180, 90]] * 2 + [[30, 70, 210]] * 2 + [[100] * 3, [180] * 3],
    dtype=np.uint8,
)[None].repeat(HEIGHT, axis=0)


def bt601(rgb):
    """Per-pixel limited-range BT.601 (Y, U, V), the YUV 4:2:2 convention OpenCV decodes."""
    r, g, b = (rgb[..., i].astype(float) / 255 for i in range(3))
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return [np.clip(np.rint(c), 0, 255).astype(np.uint8) for c in (y, u, v)]


def yuv422(rgb, order):
    """Hand-packed 4:2:2 rows: `order` 'uyvy' or 'yuyv'; each pixel pair shares its chroma."""
    y, u, v = bt601(rgb)
    channels = {"y0": y[:, 0::2], "y1": y[:, 1::2], "u": u[:, 0::2], "v": v[:, 0::2]}
    names = ["u", "y0", "v", "y1"] if order == "uyvy" else ["y0", "u", "y1", "v"]
    return np.stack([channels[n] for n in names], axis=-1).reshape(rgb.shape[0], -1)


def bayer(rgb, pattern):
    """Mosaic an RGB image: `pattern` names the colours of the top-left 2x2 block, row by row."""
    plane = {"r": 0, "g": 1, "b": 2}
    mosaic = np.empty(rgb.shape[:2], dtype=np.uint8)
    for dy in (0, 1):
        for dx in (0, 1):
            mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, plane[pattern[2 * dy + dx]]]
    return mosaic


def gray3(gray):
    return np.repeat(gray[..., None], 3, axis=-1)


def sixteen_bit(values, big_endian):
    return values.astype(">u2" if big_endian else "<u2").view(np.uint8).reshape(values.shape[0], -1)


GRAY = RNG.integers(0, 256, (HEIGHT, ODD_WIDTH), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (HEIGHT, ODD_WIDTH), dtype=np.uint16)
ALPHA = RNG.integers(0, 256, (HEIGHT, ODD_WIDTH, 1), dtype=np.uint8)
FLAT_RGB = np.full((HEIGHT + 3, ODD_WIDTH + 2, 3), FLAT, dtype=np.uint8)
INTERIOR = (slice(2, -2), slice(2, -2))
EVERYTHING = (slice(None), slice(None))

# encoding -> (tight rows (H, W x bpp), expected RGB, tolerance, region compared)
CASES = {
    "rgb8": (RGB.reshape(HEIGHT, -1), RGB, 0, EVERYTHING),
    "bgr8": (RGB[..., ::-1].reshape(HEIGHT, -1), RGB, 0, EVERYTHING),
    "8UC3": (RGB[..., ::-1].reshape(HEIGHT, -1), RGB, 0, EVERYTHING),
    "rgba8": (np.concatenate([RGB, ALPHA], -1).reshape(HEIGHT, -1), RGB, 0, EVERYTHING),
    "bgra8": (np.concatenate([RGB[..., ::-1], ALPHA], -1).reshape(HEIGHT, -1), RGB, 0, EVERYTHING),
    "mono8": (GRAY, gray3(GRAY), 0, EVERYTHING),
    "mono16": (sixteen_bit(GRAY16, False), gray3((GRAY16 >> 8).astype(np.uint8)), 0, EVERYTHING),
    "16UC1": (sixteen_bit(GRAY16, False), gray3((GRAY16 >> 8).astype(np.uint8)), 0, EVERYTHING),
    "yuv422": (yuv422(STRIPES, "uyvy"), STRIPES, 3, EVERYTHING),
    "uyvy": (yuv422(STRIPES, "uyvy"), STRIPES, 3, EVERYTHING),
    "yuyv": (yuv422(STRIPES, "yuyv"), STRIPES, 3, EVERYTHING),
    "yuv422_yuy2": (yuv422(STRIPES, "yuyv"), STRIPES, 3, EVERYTHING),
    **{
        f"bayer_{p}8": (bayer(FLAT_RGB, p), FLAT_RGB, 0, INTERIOR)
        for p in ("rggb", "bggr", "gbrg", "grbg")
    },
}


def image_msg(kind, encoding, rows, width, is_bigendian=0, extra=0, tail=b""):
    """`rows` as an Image message with `extra` garbage bytes per row and `tail` after the last."""
    height = rows.shape[0]
    garbage = RNG.integers(0, 256, (height, extra), dtype=np.uint8)
    data = np.concatenate([rows, garbage], axis=1).tobytes() + tail
    fields = dict(height=height, width=width, encoding=encoding, is_bigendian=is_bigendian,
                  step=rows.shape[1] + extra)
    if kind == "rclpy":
        return Image(data=data, **fields)
    return types.SimpleNamespace(data=np.frombuffer(data, dtype=np.uint8).copy(), **fields)


def test_supported_encodings_are_the_tested_ones():
    assert set(SUPPORTED_ENCODINGS) == {e.lower() for e in CASES}


@pytest.mark.parametrize("kind", ["rclpy", "rosbags"])
@pytest.mark.parametrize("encoding", list(CASES))
def test_encoding_tight_and_padded_rows(encoding, kind):
    rows, expected, tolerance, region = CASES[encoding]
    width = expected.shape[1]
    tight = image_to_rgb(image_msg(kind, encoding, rows, width))
    assert tight.shape == (rows.shape[0], width, 3) and tight.dtype == np.uint8
    assert tight.flags["C_CONTIGUOUS"]
    diff = np.abs(tight[region].astype(int) - expected[region].astype(int))
    assert diff.max() <= tolerance, f"{encoding}: max error {diff.max()}"
    padded = image_to_rgb(image_msg(kind, encoding, rows, width, extra=13, tail=b"\x07" * 9))
    np.testing.assert_array_equal(padded, tight)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_sixteen_bit_byte_order_comes_from_the_flag(encoding):
    expected = gray3((GRAY16 >> 8).astype(np.uint8))
    for big in (0, 1):
        msg = image_msg("rclpy", encoding, sixteen_bit(GRAY16, big), ODD_WIDTH, is_bigendian=big)
        np.testing.assert_array_equal(image_to_rgb(msg), expected)
    # the same bytes read with the other flag swap the bytes of each value
    misread = image_msg("rclpy", encoding, sixteen_bit(GRAY16, 0), ODD_WIDTH, is_bigendian=1)
    np.testing.assert_array_equal(image_to_rgb(misread), gray3((GRAY16 & 0xFF).astype(np.uint8)))


def test_bayer_patterns_are_distinguished():
    """Each mosaic decodes to the flat colour only under its own pattern name."""
    for pattern in ("rggb", "bggr", "gbrg", "grbg"):
        rows = bayer(FLAT_RGB, pattern)
        for name in ("rggb", "bggr", "gbrg", "grbg"):
            rgb = image_to_rgb(image_msg("rclpy", f"bayer_{name}8", rows, rows.shape[1]))
            assert (rgb[INTERIOR] == FLAT).all() == (name == pattern), (pattern, name)


def test_bayer_gradient_interior_is_close():
    """A smooth image, not only a flat one, survives the mosaic with its own pattern."""
    yy, xx = np.mgrid[0:12, 0:15]
    rgb = np.stack([40 + 8 * xx, 60 + 10 * yy, 200 - 5 * xx - 4 * yy], -1).astype(np.uint8)
    for pattern in ("rggb", "bggr", "gbrg", "grbg"):
        out = image_to_rgb(image_msg("rclpy", f"bayer_{pattern}8", bayer(rgb, pattern), 15))
        assert np.abs(out[INTERIOR].astype(int) - rgb[INTERIOR]).max() <= 2, pattern


def test_encoding_match_ignores_case():
    rows = RGB[..., ::-1].reshape(HEIGHT, -1)
    np.testing.assert_array_equal(image_to_rgb(image_msg("rclpy", "BGR8", rows, ODD_WIDTH)), RGB)


@pytest.mark.parametrize("kind", ["rclpy", "rosbags"])
@pytest.mark.parametrize("encoding", ["rgb8", "mono8"])
def test_output_is_a_copy(encoding, kind):
    rows, expected, _, _ = CASES[encoding]
    msg = image_msg(kind, encoding, rows, ODD_WIDTH)
    before = bytes(msg.data)
    out = image_to_rgb(msg)
    out[...] = 0
    assert bytes(msg.data) == before
    np.testing.assert_array_equal(image_to_rgb(msg), expected)


def test_accepts_plain_bytes_data():
    msg = types.SimpleNamespace(height=HEIGHT, width=ODD_WIDTH, encoding="rgb8", is_bigendian=0,
                                step=3 * ODD_WIDTH, data=RGB.tobytes())
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


def test_errors_are_top_reward_and_value_errors():
    assert issubclass(ImageConversionError, TopRewardError)
    assert issubclass(ImageConversionError, ValueError)


def test_unsupported_encoding():
    msg = image_msg("rclpy", "32FC1", GRAY, ODD_WIDTH)
    with pytest.raises(ImageConversionError, match="unsupported encoding '32FC1'"):
        image_to_rgb(msg)


def test_truncated_data():
    msg = Image(height=480, width=640, encoding="rgb8", step=1920, data=bytes(100))
    expected = r"data has 100 bytes, expected at least 921600 \(step 1920 x height 480\)"
    with pytest.raises(ImageConversionError, match=expected):
        image_to_rgb(msg)


def test_data_one_byte_short():
    msg = image_msg("rosbags", "rgb8", RGB.reshape(HEIGHT, -1), ODD_WIDTH)
    msg.data = msg.data[:-1]
    with pytest.raises(ImageConversionError, match="data has 104 bytes, expected at least 105"):
        image_to_rgb(msg)


@pytest.mark.parametrize("height, width", [(0, 0), (0, 4), (4, 0)])
def test_empty_image(height, width):
    msg = Image(height=height, width=width, encoding="mono8", step=width, data=b"")
    with pytest.raises(ImageConversionError, match=f"image is {width}x{height}"):
        image_to_rgb(msg)


def test_step_too_small():
    msg = Image(height=480, width=640, encoding="rgb8", step=10, data=bytes(921600))
    with pytest.raises(ImageConversionError,
                       match="step 10 is smaller than width x bytes per pixel 1920"):
        image_to_rgb(msg)


def test_odd_width_yuv422():
    msg = Image(height=2, width=3, encoding="yuv422", step=6, data=bytes(12))
    with pytest.raises(ImageConversionError, match="even width, got 3"):
        image_to_rgb(msg)


def smooth_rgb():
    yy, xx = np.mgrid[0:32, 0:48]
    return np.stack([5 * xx, 7 * yy, 255 - 3 * xx - 2 * yy], -1).astype(np.uint8)


def compressed(kind, fmt, data):
    if kind == "rclpy":
        return CompressedImage(format=fmt, data=data)
    return types.SimpleNamespace(format=fmt, data=np.frombuffer(data, dtype=np.uint8).copy())


@pytest.mark.parametrize("kind", ["rclpy", "rosbags"])
def test_png_is_exact(kind):
    rgb = smooth_rgb()
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = compressed_to_rgb(compressed(kind, "png", png.tobytes()))
    np.testing.assert_array_equal(out, rgb)
    assert out.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("kind", ["rclpy", "rosbags"])
def test_jpeg_is_close(kind):
    rgb = smooth_rgb()
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = compressed_to_rgb(compressed(kind, "rgb8; jpeg compressed bgr8", jpeg.tobytes()))
    diff = np.abs(out.astype(int) - rgb)
    assert out.shape == rgb.shape and diff.mean() < 2 and diff.max() <= 16


def test_corrupt_jpeg():
    msg = CompressedImage(format="jpeg", data=b"\xff\xd8\xff\xe0 not really a jpeg" * 4)
    expected = r"cannot decode compressed image \(format 'jpeg'"
    with pytest.raises(ImageConversionError, match=expected):
        compressed_to_rgb(msg)


def test_empty_compressed_data():
    with pytest.raises(ImageConversionError, match="no data"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b""))
