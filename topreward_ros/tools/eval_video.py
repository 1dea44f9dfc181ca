"""topreward-eval-video VIDEO --task "...": the TOPReward curve of one video (or image folder).

Writes curve.json, curve.csv and curve.png (raw and normalised curve, VOC and the
static-video VOC) to the output folder and prints a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..evaluation.curve import DEFAULT_PREFIXES, METHODS, evaluate_video
from ..errors import TopRewardError
from ..evaluation.metrics import format_voc
from ..method.model import load_reward_model
from ..evaluation.report import check_report_folder, staged_report, summary_dict, write_report
from ..sources.video import read_episode
from ..options import int_between, output_folder
from .common import add_model_arguments, add_settings_arguments, settings_from, settings_of
from .program import entry_point, program_parser

PROG = "topreward-eval-video"
REPORT_FILES = re.compile(r"curve\.(json|csv|png)")  # what the report folder holds
MAX_PREFIXES = 10_000


def build_parser() -> argparse.ArgumentParser:
    parser = program_parser(PROG, __doc__)
    parser.add_argument("video", help="video file (mp4, avi, ...) or a folder of images")
    parser.add_argument("--task", required=True, help="the instruction the robot is given")
    parser.add_argument("--output", type=output_folder, default=None,
                        help="report folder (default out/eval-<video name>): new, empty or a previous report of this "
                             "tool, which is replaced once the new one is complete")
    parser.add_argument("--json-summary", action="store_true", help="print the summary as JSON on stdout")
    add_settings_arguments(parser, "sampling (for an image folder, --sample-fps is the rate of its images)",
                           ["sample_fps"], aliases={"sample_fps": ("--fps",)})
    add_model_arguments(parser)
    add_curve_arguments(parser)
    return parser


def add_curve_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("curve")
    group.add_argument("--prefixes", type=int_between(2, MAX_PREFIXES), default=DEFAULT_PREFIXES, metavar="K",
                       help="number of prefixes on the curve (default %(default)s)")
    group.add_argument("--method", choices=METHODS, default="stream",
                       help="stream: cached engine (default); reference: full recompute per prefix")


def body(args: argparse.Namespace) -> int:
    if not args.task.strip():
        raise TopRewardError("the task is empty: pass --task \"what the robot should do\"")
    reward_settings = settings_from(args)
    output = check_report_folder(args.output or f"out/eval-{Path(args.video).stem}", REPORT_FILES, PROG)
    episode = read_episode(args.video, reward_settings.sample_fps)
    reward_model = load_reward_model(reward_settings.model_config())
    report = evaluate_video(reward_model, reward_settings.scoring, episode.frames, episode.times, args.task,
                            k=args.prefixes, method=args.method, show_progress=not args.json_summary)
    settings = {**settings_of(reward_settings, reward_model), "video": str(args.video), "task": args.task,
                "frames": len(episode.frames), "prefixes": args.prefixes, "method": args.method}
    with staged_report(output, REPORT_FILES, PROG, last=["curve.json"]) as staging:
        write_report(report, settings, staging)
    if args.json_summary:
        print(json.dumps(summary_dict(report, settings)))
    else:
        print(f"{Path(args.video).name}: {len(episode.frames)} frames, {len(report.curve.lengths)} prefixes, "
              f"VOC {format_voc(report.curve.voc)}, static VOC {format_voc(report.static.voc)}, "
              f"final reward {report.curve.values[-1]:.4f}; report in {output}")
    return 0


main = entry_point(PROG, build_parser, body)


if __name__ == "__main__":
    sys.exit(main())
