"""argparse types shared by every command-line program (the tools and the ROS programs; ROS-free, at the bottom
of the package so both can import it). Each refuses a bad value while the command line is parsed, before any
work, as one `error:` line and exit status 2. Each carries its limits as attributes, so a test can enumerate every
option of every program and feed it the values it must refuse."""

from __future__ import annotations

import argparse
import math

from .outputs import OutputError, check_new_path, check_output_file, check_output_folder


class Number:
    """A finite number (``kind`` float or int) from ``low`` to ``high``; an even one if ``even``."""

    def __init__(self, kind: type, low: float, high: float, even: bool = False):
        self.kind, self.low, self.high, self.even = kind, low, high, even

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if self.kind is int else 'a number'}: "
                                             f"{text!r}") from None
        if not (math.isfinite(value) and self.low <= value <= self.high) or (self.even and value % 2):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}")
        return value

    def describe(self) -> str:
        if self.kind is int:
            return f"{'an even integer' if self.even else 'an integer'} from {self.low} to {self.high}"
        return f"a number from {self.low:g} to {self.high:g}"


def float_between(low: float, high: float) -> Number:
    return Number(float, low, high)


def int_between(low: float, high: float, even: bool = False) -> Number:
    return Number(int, low, high, even)


class Size:
    """'WIDTHxHEIGHT' -> (width, height), each an integer from ``low`` to ``high`` and a multiple of ``multiple``."""

    def __init__(self, low: float, high: float, multiple: int = 1):
        self.low, self.high, self.multiple = low, high, multiple

    def __call__(self, text: str) -> tuple[int, int]:
        try:
            width, height = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must look like WIDTHxHEIGHT, got {text!r}") from None
        if not all(self.low <= v <= self.high and v % self.multiple == 0 for v in (width, height)):
            multiple = f"multiples of {self.multiple} " if self.multiple > 1 else ""
            raise argparse.ArgumentTypeError(f"width and height must be {multiple}from {self.low} to {self.high}, "
                                             f"got {text}")
        return width, height


class OutputPath:
    """An output path, checked where it will be written (outputs.py): ``kind`` 'file' (created or replaced),
    'folder' (created, or an existing one written in) or 'new' (a file or folder that must not exist yet).
    Nothing is created; the value stays the text given."""

    CHECKS = {"file": check_output_file, "folder": check_output_folder, "new": check_new_path}

    def __init__(self, kind: str):
        self.kind = kind

    def __call__(self, text: str) -> str:
        try:
            self.CHECKS[self.kind](text, what="")
        except OutputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text


output_file = OutputPath("file")
output_folder = OutputPath("folder")
new_path = OutputPath("new")

# The options of the programs that play a recording in real time (topreward-play-video, topreward-replay).
playback_rate = float_between(0.01, 100.0)  # --rate: playback speed
wait_seconds = float_between(0.0, 3600.0)   # --settle, --drain
