"""topreward-make-sample-video OUT.mp4: write a synthetic clip of a red block carried into a bowl."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from ..synthetic.scene import scene_frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", help="video file to write (.mp4 or .avi)")
    parser.add_argument("--seconds", type=float, default=8.0, help="clip length (default 8)")
    parser.add_argument("--fps", type=float, default=15.0, help="frame rate (default 15)")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT (default 320x240)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if output.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(output), fourcc, args.fps, (width, height))
    if not writer.isOpened():
        print(f"topreward-make-sample-video: error: cannot write {output}", file=sys.stderr)
        return 2
    frames = scene_frames(max(2, round(args.seconds * args.fps)), width, height)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    print(f"wrote {len(frames)} frames ({args.seconds:g} s at {args.fps:g} fps) to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
