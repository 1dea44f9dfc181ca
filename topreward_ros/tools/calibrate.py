"""topreward-calibrate LABELS.yaml: the success threshold from labelled episodes.

LABELS.yaml lists episodes of bags with their outcome (bag paths relative to the file):

    task: put the red block in the bowl        # optional default task
    episodes:
      - {bag: runs/day1, episode: 0, success: true}
      - {bag: runs/day1, episode: 1, success: false, task: open the drawer}

Each episode is scored as topreward-eval-bag scores it (same options); its final raw score
is the last update's. Prints ROC AUC and the threshold table, picks the threshold with the
best F1 (Youden J shown too) and writes a params YAML the reward node loads
(`params_file:=` or `--ros-args --params-file`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from ..evaluation.bag_eval import episode_tasks, evaluate_episodes
from ..sources.bags import open_bag, read_episodes
from ..evaluation.calibration import calibrate, format_table, params_yaml
from ..errors import TopRewardError
from ..method.model import load_reward_model
from ..options import int_between, output_file
from ..outputs import write_text_atomic
from ..stream.online import SUCCESS_CONSECUTIVE_RANGE
from .common import add_model_arguments, settings_from
from .program import entry_point, program_parser
from .eval_bag import add_bag_arguments, stamp_gap

PROG = "topreward-calibrate"


def read_labels(path: Path) -> tuple[str | None, list[dict]]:
    if not path.is_file():
        raise TopRewardError(f"no such labels file: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TopRewardError(f"cannot read labels file {path}: not UTF-8 text") from exc
    except OSError as exc:
        raise TopRewardError(f"cannot read labels file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise TopRewardError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    entries = data.get("episodes") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise TopRewardError(f"{path}: expected an 'episodes:' list of {{bag, episode, success}}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"bag", "episode", "success"} <= set(entry):
            raise TopRewardError(f"{path}: entry {i} needs bag, episode and success")
        if not isinstance(entry["success"], bool):
            raise TopRewardError(f"{path}: entry {i}: success must be true or false")
        if isinstance(entry["episode"], bool) or not isinstance(entry["episode"], int) or entry["episode"] < 0:
            raise TopRewardError(f"{path}: entry {i}: episode must be an episode number, got {entry['episode']!r}")
        if "task" in entry and not (isinstance(entry["task"], str) and entry["task"].strip()):
            raise TopRewardError(f"{path}: entry {i}: task must be a non-empty string, got {entry['task']!r}")
        entry["bag"] = str((path.parent / str(entry["bag"])).resolve())
    labels: dict[tuple[str, int], bool] = {}
    for i, entry in enumerate(entries):
        key = (entry["bag"], entry["episode"])
        if labels.setdefault(key, entry["success"]) != entry["success"]:
            raise TopRewardError(f"{path}: entry {i}: episode {entry['episode']} of {entry['bag']} is labelled both "
                                 "success and failure")
    if len(set(labels.values())) < 2:
        raise TopRewardError(f"{path}: need at least one success and one failure episode, got only "
                             f"{'successes' if True in labels.values() else 'failures'}")
    default = data.get("task")
    if default is not None and not isinstance(default, str):
        raise TopRewardError(f"{path}: 'task' must be a string, got {default!r}")
    return default, entries


def final_scores(args, reward_model, settings, default_task: str | None, entries: list[dict]) -> list[float]:
    """The final raw score of every listed episode, scoring each bag once."""
    scores: dict[tuple[str, int], float] = {}
    for bag_path in dict.fromkeys(e["bag"] for e in entries):
        wanted = {int(e["episode"]): e.get("task") for e in entries if e["bag"] == bag_path}
        bag = read_episodes(bag_path, args.image_topics, args.sample_fps, split=args.split,
                            marker_topic=args.marker_topic, max_gap=stamp_gap(args), camera_slop=args.camera_slop,
                            stamp_tolerance=args.stamp_tolerance)
        missing = sorted(set(wanted) - {e.index for e in bag.episodes})
        if missing:
            raise TopRewardError(f"{bag_path} has {len(bag.episodes)} episodes; episode {missing[0]} is not one")
        bag.episodes = [e for e in bag.episodes if e.index in wanted]
        tasks = episode_tasks(bag.episodes, args.task or default_task,
                              {i: t for i, t in wanted.items() if t})
        for result in evaluate_episodes(reward_model, settings, bag, tasks, show_progress=False):
            if result.report is None:
                raise TopRewardError(f"{bag_path}: episode {result.index} failed: {result.error}")
            scores[(bag_path, result.index)] = result.report.curve.values[-1]
    return [scores[(e["bag"], int(e["episode"]))] for e in entries]


def build_parser() -> argparse.ArgumentParser:
    parser = program_parser(PROG, __doc__)
    parser.add_argument("labels", help="YAML listing bag, episode and success of each labelled episode")
    parser.add_argument("--output", type=output_file, default="out/calibration/success.yaml",
                        help="params YAML to write (default %(default)s)")
    parser.add_argument("--consecutive", type=int_between(*SUCCESS_CONSECUTIVE_RANGE), metavar="K",
                        help="also set success_consecutive in the params YAML")
    add_bag_arguments(parser)
    add_model_arguments(parser)
    return parser


def body(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    output = Path(args.output)
    default_task, entries = read_labels(Path(args.labels))
    for bag_path in dict.fromkeys(e["bag"] for e in entries):
        open_bag(bag_path)  # every listed bag exists and has its metadata, before the model loads
    reward_model = load_reward_model(settings.model_config())
    scores = final_scores(args, reward_model, settings, default_task, entries)
    result = calibrate(scores, [e["success"] for e in entries])
    print(format_table(result))
    if result.auc <= 0.5:
        print(f"warning: ROC AUC {result.auc:.3f} <= 0.5: the score does not separate success from failure here",
              file=sys.stderr)
    threshold = result.best_f1.threshold
    write_text_atomic(output, params_yaml(threshold, args.consecutive))
    print(f"success_threshold {threshold!r} (best F1 {result.best_f1.f1:.3f}; best Youden J at "
          f"{result.best_youden.threshold!r}); wrote {output}")
    return 0


main = entry_point(PROG, build_parser, body)


if __name__ == "__main__":
    sys.exit(main())
