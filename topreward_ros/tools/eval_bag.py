"""topreward-eval-bag BAG: TOPReward curves of the episodes in a rosbag2 recording (.db3 or .mcap).

Frames are sampled from the image topics by header stamp with the node's sampler and scored
with the streaming engine: one update per sampled frame, as the live node would publish them.
Per episode: episode_NNN.{json,csv,png} (raw and normalised reward, VOC, static-video VOC);
for the bag: summary.md and summary.json (VOC mean and spread, static VOC, updates/s, settings).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

from ..evaluation.bag_eval import episode_tasks, evaluate_episodes, summarize
from ..sources.bags import SPLITS, read_episodes
from ..errors import TopRewardError
from ..options import float_between, output_folder
from ..sources.image_messages import DEFAULT_IMAGE_TOPIC
from ..stream.episode_stream import MAX_GAP_RANGE
from ..evaluation.metrics import format_voc
from ..method.model import load_reward_model
from ..evaluation.report import check_report_folder, staged_report, write_report
from ..outputs import json_safe, write_text_atomic
from .common import SAMPLING_SETTINGS, add_model_arguments, add_settings_arguments, settings_from, settings_of
from .program import entry_point, program_parser

PROG = "topreward-eval-bag"
REPORT_FILES = re.compile(r"summary\.(json|md)|episode_\d{3,}\.(json|csv|png)")  # what the report folder holds


def add_bag_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bag")
    group.add_argument("--image-topics", nargs="+", default=[DEFAULT_IMAGE_TOPIC],
                       help="Image or CompressedImage topics; several are paired by stamp and tiled")
    group.add_argument("--split", choices=SPLITS, default="bag",
                       help="episodes: one per bag (default), one per marker message, or split at stamp gaps")
    group.add_argument("--marker-topic", default="/episode", help="marker topic for --split marker")
    group.add_argument("--gap", type=float_between(*MAX_GAP_RANGE), default=2.0,
                       help="seconds of silence that split episodes (--split gap; default %(default)s)")
    group.add_argument("--task", help="task of every episode without one from a marker or --episodes-yaml")
    group.add_argument("--episodes-yaml", help="YAML: 'episodes: {INDEX: task, ...}' (and an optional 'task:')")
    add_settings_arguments(parser, "sampling (the node's parameters; --max-stamp-gap with --split bag or marker)",
                           SAMPLING_SETTINGS)


def listed_tasks(path: str | None) -> tuple[str | None, dict[int, str]]:
    if not path:
        return None, {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TopRewardError(f"cannot read --episodes-yaml {path}: {' '.join(str(exc).split())}") from exc
    except UnicodeDecodeError as exc:
        raise TopRewardError(f"cannot read --episodes-yaml {path}: not UTF-8 text") from exc
    episodes = data.get("episodes", {}) if isinstance(data, dict) else None
    if not isinstance(episodes, dict):
        raise TopRewardError(f"{path}: expected 'episodes:' as a mapping from episode index to task")
    for key, task in episodes.items():
        if isinstance(key, bool) or not isinstance(key, int) or key < 0:
            raise TopRewardError(f"{path}: episode {key!r} is not an episode number (0, 1, ...)")
        if not isinstance(task, str) or not task.strip():
            raise TopRewardError(f"{path}: episode {key}: the task must be a non-empty string, got {task!r}")
    default = data.get("task")
    if default is not None and not isinstance(default, str):
        raise TopRewardError(f"{path}: 'task' must be a string, got {default!r}")
    return default, dict(episodes)


def stamp_gap(args) -> float:
    """The stamp gap that starts an episode: the split itself with --split gap, else the node's rule."""
    return args.gap if args.split == "gap" else args.max_stamp_gap


def load_bag_episodes(args):
    default_task, listed = listed_tasks(args.episodes_yaml)  # checked before the bag is read
    bag = read_episodes(args.bag, args.image_topics, args.sample_fps, split=args.split, marker_topic=args.marker_topic,
                        max_gap=stamp_gap(args), camera_slop=args.camera_slop, stamp_tolerance=args.stamp_tolerance)
    tasks = episode_tasks(bag.episodes, args.task or default_task, listed)
    return bag, tasks


def markdown(summary: dict, settings: dict) -> str:
    lines = [f"# {Path(settings['bag']).name}", "",
             f"VOC mean {format_voc(summary['voc_mean'])} (std {summary['voc_std']:.3f}, "
             f"{summary['voc_defined']}/{summary['episodes']} defined), static VOC mean "
             f"{format_voc(summary['static_voc_mean'])}, {summary['updates_per_second']:.1f} updates/s", "",
             "| episode | task | frames | updates | VOC | static VOC | final reward | updates/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in summary["per_episode"]:
        lines.append(f"| {row['episode']} | {row['task']} | {row['frames']} | {row['updates']} | "
                     f"{format_voc(row['voc'])} | {format_voc(row['static_voc'])} | {row['final_reward']:.4f} | "
                     f"{row['updates_per_second']:.1f} |")
    lines += ["", "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items())]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = program_parser(PROG, __doc__)
    parser.add_argument("bag", help="rosbag2 directory (or its .db3 / .mcap file)")
    parser.add_argument("--output", type=output_folder,
                        help="report folder (default out/eval-bag-<bag name>): new, empty or a previous report of this "
                             "tool, which is replaced once the new one is complete")
    parser.add_argument("--json-summary", action="store_true", help="print the summary as JSON on stdout")
    add_bag_arguments(parser)
    add_model_arguments(parser)
    return parser


def body(args: argparse.Namespace) -> int:
    reward_settings = settings_from(args)
    output = check_report_folder(args.output or f"out/eval-bag-{Path(args.bag).name}", REPORT_FILES, PROG)
    bag, tasks = load_bag_episodes(args)
    reward_model = load_reward_model(reward_settings.model_config())
    results = evaluate_episodes(reward_model, reward_settings, bag, tasks, show_progress=not args.json_summary)
    settings = {**settings_of(reward_settings, reward_model), "bag": str(args.bag), "image_topics": args.image_topics,
                "split": args.split, "bad_messages": bag.bad_messages, "late_messages": bag.late_messages}
    summary = {**summarize(results), "settings": settings}
    with staged_report(output, REPORT_FILES, PROG, last=["summary.md", "summary.json"]) as staging:
        for result in results:
            if result.report is None:
                print(f"{PROG}: episode {result.index} failed: {result.error}", file=sys.stderr)
                continue
            write_report(result.report, {**settings, "episode": result.index, "task": result.task}, staging,
                         name=f"episode_{result.index:03d}")
        write_text_atomic(staging / "summary.json", json.dumps(json_safe(summary), indent=2) + "\n")
        write_text_atomic(staging / "summary.md", markdown(summary, settings))
    if args.json_summary:
        print(json.dumps(json_safe(summary)))
    else:
        print(f"{Path(args.bag).name}: {len(results)} episodes, VOC mean {format_voc(summary['voc_mean'])}, "
              f"static VOC mean {format_voc(summary['static_voc_mean'])}, "
              f"{summary['updates_per_second']:.1f} updates/s; report in {output}")
    return 1 if any(r.failed for r in results) else 0


main = entry_point(PROG, build_parser, body)


if __name__ == "__main__":
    sys.exit(main())
