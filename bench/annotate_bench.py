"""Collection throughput: episodes per hour of topreward-annotate, one process vs a Ray pool, same collection.

Builds a bag tree (``--bags`` rosbag2 recordings of two marker-split episodes each, .mcap and .db3 alternately,
synthetic scenes at 320x240 15 fps) and a random checkpoint (``--shape``: tiny, small or the 2B shape), then
scores the collection: embedded with one torch thread for each ``--batch-episodes`` K (K episodes scored at
once), embedded (this process, torch with every core), and with ``--ray-workers`` Ray actors on a local Ray
instance (one core and one torch thread each).
Reports episodes per hour of the scoring (the pool already started, so model loading is reported apart), the
start-up times, and the largest score difference between the default one-process run and the Ray run.
Prints JSON (and writes it to ``--json``). Random weights: the timings are real, the scores are not.

    python bench/annotate_bench.py --bags 6 --shape small --json out/annotate-bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import stream_bench


def build_collection(root: Path, bags: int, seconds: float) -> Path:
    from topreward_ros.tools.make_sample_bag import write_sample_bag

    for i in range(bags):
        write_sample_bag(root / f"day{i // 2}" / f"run{i}", storage="mcap" if i % 2 == 0 else "sqlite3",
                         progress=(1.0, 0.6), seconds=seconds, fps=15.0)
    return root


def timed_run(collection: Path, model: Path, output: Path, resolution: str, ray_workers: int | None,
              threads: int | None = None, batch_episodes: int = 1) -> dict:
    import torch

    from topreward_ros.evaluation.annotate import annotate
    from topreward_ros.evaluation.episode_annotator import Annotator
    from topreward_ros.evaluation.worker_pool import LocalPool, RayPool
    from topreward_ros.method.model import load_reward_model
    from topreward_ros.sources.collections import find_sources
    from topreward_ros.tools.annotate import annotate_settings, build_parser

    args = build_parser().parse_args([str(collection), "--output", str(output), "--split", "marker",
                                      "--model", str(model),
                                "--resolution", resolution, "--device", "cpu", "--dtype", "fp32"])
    settings = annotate_settings(args)
    sources = find_sources([collection])
    default_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    if ray_workers:
        pool = RayPool(settings, "local", workers=ray_workers, cpus_per_worker=1)
    else:
        pool = LocalPool(Annotator(settings, load_reward_model(settings.reward.model_config()), batch_episodes))
    pool.start()
    started = time.perf_counter()
    try:
        result = annotate(sources, settings, output, pool, show_progress=False)
    finally:
        pool.close()
        torch.set_num_threads(default_threads)
    scoring = time.perf_counter() - started
    summary = result.summary
    return {"startup_seconds": round(started - start, 2), "scoring_seconds": round(scoring, 2),
            "episodes": summary["episodes"], "failed": summary["failed"], "frames_scored": summary["frames_scored"],
            "episodes_per_hour": round(summary["episodes"] / scoring * 3600, 1),
            "episodes_per_hour_with_startup": round(summary["episodes"] / (scoring + started - start) * 3600, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bags", type=int, default=6, help="recordings, 2 episodes each (default %(default)s)")
    p.add_argument("--seconds", type=float, default=4.0, help="episode length (default %(default)s; 2 fps sampled)")
    p.add_argument("--shape", choices=("tiny", "small", "qwen3-vl-2b"), default="small")
    p.add_argument("--resolution", default="128x96", help="frame size fed to the model (default %(default)s)")
    p.add_argument("--ray-workers", type=int, default=2)
    p.add_argument("--batch-episodes", type=int, nargs="+", default=[1, 8],
                   help="episodes scored at once, one process with one torch thread (default %(default)s)")
    p.add_argument("--batches-only", action="store_true", help="only the --batch-episodes runs (no Ray)")
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from topreward_ros.synthetic.model import write_test_model

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="annotate-bench-") as tmp:
        tmp = Path(tmp)
        model = write_test_model(tmp / "model", shape=args.shape)
        collection = build_collection(tmp / "collection", args.bags, args.seconds)
        batched = {k: timed_run(collection, model, tmp / f"batch-{k}", args.resolution, None, threads=1,
                                batch_episodes=k) for k in args.batch_episodes}
        scores = {k: pq.read_table(tmp / f"batch-{k}" / "frames.parquet")["score"].to_pylist() for k in batched}
        if not args.batches_only:
            one_thread = batched.get(1) or timed_run(collection, model, tmp / "one-thread", args.resolution, None,
                                                     threads=1)
            ray = timed_run(collection, model, tmp / "ray", args.resolution, args.ray_workers)
            one = timed_run(collection, model, tmp / "one", args.resolution, None)
            a = pq.read_table(tmp / "one" / "frames.parquet")["score"].to_pylist()
            b = pq.read_table(tmp / "ray" / "frames.parquet")["score"].to_pylist()
            difference = max(abs(x - y) for x, y in zip(a, b)) if len(a) == len(b) else None
    first = next(iter(batched.values()))
    result = {
        "machine": {**stream_bench.machine(), "torch_threads": torch.get_num_threads(),
                    "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)]},
        "collection": {"bags": args.bags, "episodes": first["episodes"], "seconds_per_episode": args.seconds,
                       "frames_scored": first["frames_scored"], "updates": 2 * first["frames_scored"]},
        "model": args.shape, "resolution": args.resolution,
        **{f"one_process_1_thread_batch_{k}": run for k, run in batched.items()},
        "max_score_difference_between_batch_sizes": max(
            (abs(x - y) for k in scores for x, y in zip(scores[k], scores[args.batch_episodes[0]])), default=0.0),
    }
    if not args.batches_only:
        result.update({
            "one_process": one, "one_process_1_thread": one_thread, f"ray_{args.ray_workers}_workers": ray,
            "ray_speedup_vs_one_process": round(ray["episodes_per_hour"] / one["episodes_per_hour"], 2),
            "ray_speedup_vs_one_process_1_thread": round(ray["episodes_per_hour"] / one_thread["episodes_per_hour"],
                                                         2),
            "max_score_difference": difference})
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
