"""topreward-annotate SOURCE... --output DIR: score every episode of robot-data collections.

SOURCE: a folder tree of rosbag2 recordings (.db3, .mcap; episodes split as topreward-eval-bag splits
them), a LeRobot v3 dataset, a video file or a folder of them (one episode each), or a mix. Every
episode gets one update per sampled frame, exactly as the node publishes them, and its static-video
control. DIR gets frames.parquet (per frame), episodes.parquet (per episode), summary.{json,md} and,
per LeRobot dataset, an RA-BC progress file (progress/<dataset>.parquet) covering every frame.

Runs in this process by default; --ray-address auto | HOST:PORT | ray://HOST:PORT | local runs a pool of
Ray actors, each holding one model. Each finished episode is saved at once: rerun the same command to
finish a run that was stopped. Exit status: 0 all scored, 1 some episodes failed (listed), 2 error.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import TopRewardError
from ..evaluation.annotate import DEFAULT_MAX_ATTEMPTS, annotate
from ..evaluation.annotation_folder import check_output, run_record
from ..evaluation.episode_annotator import AnnotateSettings, Annotator, BagOptions
from ..evaluation.metrics import format_voc
from ..evaluation.rabc_progress import RABC_MODES
from ..evaluation.worker_pool import DEFAULT_CONNECT_TIMEOUT, DEFAULT_EPISODE_TIMEOUT, LocalPool, RayPool, WorkerPool
from ..method.model import load_reward_model
from ..sources.collections import find_sources
from ..options import float_between, int_between, output_folder
from .common import REWARD_SETTINGS, add_model_arguments, add_settings_arguments, settings_from
from .program import entry_point, program_parser
from .eval_bag import add_bag_arguments, listed_tasks, stamp_gap

PROG = "topreward-annotate"
FAILURES_PRINTED = 10
MAX_BATCH_EPISODES = 64
MAX_WORKERS = 4096
MAX_RESOURCES_PER_WORKER = 1024.0  # CPUs or GPUs one actor asks Ray for


def build_parser() -> argparse.ArgumentParser:
    p = program_parser(PROG, __doc__)
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="bag tree, LeRobot v3 dataset, video file or folder")
    p.add_argument("--output", type=output_folder, required=True, metavar="DIR",
                   help="run folder: new, empty, or a previous run of the same command (then it resumes)")
    add_bag_arguments(p)
    group = p.add_argument_group("collections")
    group.add_argument("--cameras", nargs="+", metavar="KEY",
                       help="LeRobot camera features scored, tiled in this order (default: every video feature)")
    group.add_argument("--rabc-progress", choices=RABC_MODES, default="causal",
                       help="LeRobot progress file between sampled frames: causal = the causal progress of the "
                            "latest sampled frame (default); episode = the episode's min-max normalised scores, "
                            "interpolated (as LeRobot's TOPReward port)")
    group.add_argument("--retry-failed", action="store_true", help="score again the episodes a previous run "
                       "recorded as failed")
    group.add_argument("--max-attempts", type=int_between(1, 10), default=DEFAULT_MAX_ATTEMPTS,
                       help="runs of an episode whose worker dies before it is recorded as failed "
                            "(default %(default)s)")
    group.add_argument("--batch-episodes", type=int_between(1, MAX_BATCH_EPISODES), metavar="K",
                       help="episodes a worker scores at once, in one forward per step (default: 4 on the CPU; "
                            "on a GPU as many as its free memory holds, up to 8; the scores do not depend on it)")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    ray = p.add_argument_group("Ray cluster (default: this process only)")
    ray.add_argument("--ray-address", metavar="ADDRESS",
                     help="auto (the cluster this machine is part of), HOST:PORT, ray://HOST:PORT (Ray Client), or "
                          "local (start a Ray instance on this machine)")
    ray.add_argument("--workers", type=int_between(1, MAX_WORKERS), metavar="N",
                     help="actors, each with one model (default: cluster GPUs / --gpus-per-worker, or CPUs / "
                          "--cpus-per-worker without GPUs)")
    ray.add_argument("--cpus-per-worker", type=float_between(0.01, MAX_RESOURCES_PER_WORKER), default=1.0,
                     help="default %(default)s")
    ray.add_argument("--gpus-per-worker", type=float_between(0.0, MAX_RESOURCES_PER_WORKER),
                     help="default 1 when the cluster has GPUs, else 0")
    ray.add_argument("--ray-connect-timeout", type=int_between(1, 3600), metavar="SECONDS",
                     help="seconds for HOST:PORT to accept a connection before the run stops with an error "
                          f"(default {DEFAULT_CONNECT_TIMEOUT})")
    ray.add_argument("--episode-timeout", type=int_between(1, 7 * 24 * 3600), metavar="SECONDS",
                     help="seconds a worker has for one episode (after loading its model); a worker that gives no "
                          "result by then is replaced and the episode retried, as for a dead one "
                          f"(default {DEFAULT_EPISODE_TIMEOUT})")
    add_settings_arguments(p, "reward (the node's parameters; the 'reward' and 'success' columns)", REWARD_SETTINGS)
    add_model_arguments(p)
    return p


def annotate_settings(args) -> AnnotateSettings:
    default_task, listed = listed_tasks(args.episodes_yaml)
    task = args.task if args.task is not None else default_task
    if task is not None and not task.strip():
        raise TopRewardError("--task is empty")
    return AnnotateSettings(
        reward=settings_from(args), task=task.strip() if task else None,
        listed_tasks=tuple(sorted(listed.items())),
        bag=BagOptions(image_topics=tuple(args.image_topics), split=args.split,
                       marker_topic=args.marker_topic if args.split == "marker" else None,
                       max_gap=stamp_gap(args)),
        cameras=tuple(args.cameras or ()))


def body(args: argparse.Namespace) -> int:
    ray_only = {"--workers": args.workers, "--gpus-per-worker": args.gpus_per_worker,
                "--ray-connect-timeout": args.ray_connect_timeout, "--episode-timeout": args.episode_timeout}
    given = [name for name, value in ray_only.items() if value is not None]
    if args.ray_address is None and given:
        raise TopRewardError(f"{' and '.join(given)} need{'s' if len(given) == 1 else ''} --ray-address "
                             "(without it, one process scores)")
    if not args.image_topics:
        raise TopRewardError("--image-topics needs at least one topic")
    settings = annotate_settings(args)
    sources = find_sources(args.sources, args.cameras)
    resumed = check_output(args.output, run_record(sources, settings))
    pool: WorkerPool
    if args.ray_address:
        pool = RayPool(settings, args.ray_address, args.workers, args.cpus_per_worker, args.gpus_per_worker,
                       connect_timeout=args.ray_connect_timeout or DEFAULT_CONNECT_TIMEOUT,
                       episode_timeout=args.episode_timeout or DEFAULT_EPISODE_TIMEOUT,
                       batch_episodes=args.batch_episodes)
    else:
        pool = LocalPool(Annotator(settings, load_reward_model(settings.reward.model_config()), args.batch_episodes))
    try:
        pool.start()
        if resumed and not args.no_progress:
            print(f"{PROG}: resuming the run in {args.output}", file=sys.stderr)
        try:
            result = annotate(sources, settings, args.output, pool, max_attempts=args.max_attempts,
                              retry_failed=args.retry_failed, rabc=args.rabc_progress,
                              show_progress=not args.no_progress,
                              run_info={"ray_address": args.ray_address, "workers": pool.size,
                                        "batch_episodes": pool.batch_episodes})
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted; finished episodes are saved: run the same command again to finish",
                  file=sys.stderr)
            return 130
    finally:
        pool.close()
    summary = result.summary
    for failure in summary["failures"][:FAILURES_PRINTED]:
        where = failure["source"] if failure["item"] == "." else f"{failure['source']}/{failure['item']}"
        print(f"{PROG}: {where} episode {failure['episode']} failed: {failure['error']}", file=sys.stderr)
    if summary["failed"] > FAILURES_PRINTED:
        print(f"{PROG}: ... and {summary['failed'] - FAILURES_PRINTED} more failures (summary.md)", file=sys.stderr)
    for entry in summary["progress_files"]:
        if not entry["path"]:
            print(f"{PROG}: no progress file for {entry['dataset']}: {entry['skipped']}", file=sys.stderr)
    voc, static = summary["voc"]["mean"], summary["static_voc"]["mean"]
    print(f"{summary['episodes']} episodes: {summary['scored']} scored, {summary['failed']} failed; VOC mean "
          f"{'n/a' if voc is None else format_voc(voc)}, static VOC mean "
          f"{'n/a' if static is None else format_voc(static)}; tables in {result.output}")
    return 1 if summary["failed"] else 0


main = entry_point(PROG, build_parser, body)


if __name__ == "__main__":
    sys.exit(main())
