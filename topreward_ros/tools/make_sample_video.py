"""topreward-make-sample-video OUT.mp4: write a synthetic clip of a red block carried into a bowl."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from ..options import Size, float_between, output_file
from ..synthetic.scene import scene_frames

PROG = "topreward-make-sample-video"
MAX_SECONDS = 3600.0
FPS_RANGE = (0.1, 1000.0)
SIDE_RANGE = (16, 4096)  # pixels a side


def add_clip_arguments(parser: argparse.ArgumentParser, seconds: float) -> None:
    """Length, rate and size of synthetic clips (also those of topreward-make-sample-bag)."""
    parser.add_argument("--seconds", type=float_between(0.1, MAX_SECONDS), default=seconds,
                        help=f"clip length (default %(default)s; at most {MAX_SECONDS:g})")
    parser.add_argument("--fps", type=float_between(*FPS_RANGE), default=15.0,
                        help="frame rate (default %(default)s; from {:g} to {:g})".format(*FPS_RANGE))
    parser.add_argument("--size", type=Size(*SIDE_RANGE), default="320x240", metavar="WIDTHxHEIGHT",
                        help="frame size (default %(default)s; each side from {} to {})".format(*SIDE_RANGE))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("output", type=output_file, help="video file to write (.mp4 or .avi)")
    add_clip_arguments(parser, seconds=8.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    width, height = args.size
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter.fourcc(*("MJPG" if output.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(output), fourcc, args.fps, (width, height))
    if not writer.isOpened():
        print(f"{PROG}: error: cannot write {output}", file=sys.stderr)
        return 2
    frames = scene_frames(max(2, round(args.seconds * args.fps)), width, height)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    print(f"wrote {len(frames)} frames ({args.seconds:g} s at {args.fps:g} fps) to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
