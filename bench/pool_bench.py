"""Batched sessions: updates per second of N episodes scored in one forward (SessionPool) against the same
N episodes scored by N single StreamingEngines one after another, in the same run on the same model.

Each of the N episodes first grows to --warm-frames frames, then takes --updates updates of one new pair
each (every episode is at a different phase of the synthetic clip, so the frames differ). Both ways see the
same frames; the largest score difference between them is reported (exact in float32; in bf16 it is the
rounding of different kernel shapes). Memory: the pool's memory (CUDA allocation on a GPU, process RSS on
the CPU) before its sessions open, with them full, and after they are all closed.

    python bench/pool_bench.py --shape small --sessions 1 2 4 8 16 --json out/pool-small.json
    python bench/pool_bench.py --shape qwen3-vl-2b --dtype bf16 --json out/pool-2b-bf16.json   # on a GPU
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch

from stream_bench import DEFAULT_RESOLUTION, TASK, add_model_options, load_model, machine, sync

from topreward_ros.method.engine import StreamingEngine
from topreward_ros.method.frames import parse_resolution, resize_frame
from topreward_ros.method.prompts import load_prompt_set
from topreward_ros.method.config import ScoringConfig
from topreward_ros.method.sessions import SessionPool
from topreward_ros.synthetic.scene import scene_frames


def memory_mb(device: torch.device) -> float:
    """The CUDA allocation on a GPU; on the CPU the process RSS, after glibc hands freed heap pages back
    (it keeps them by default, so RSS alone would not show a session's memory being freed)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.memory_allocated() / 2**20
    gc.collect()
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return psutil.Process().memory_info().rss / 2**20


def episode_frames(frames: list, session: int, count: int) -> list:
    """Session ``session``'s frames: the clip from a different starting phase."""
    return [frames[(7 * session + i) % len(frames)] for i in range(count)]


def run_pool(rm, config, n, frames, warm, updates, max_frames):
    device = rm.device
    before = memory_mb(device)
    pool = SessionPool(rm, config, max_frames=max_frames, capacity=n)
    ids = [pool.open() for _ in range(n)]
    episodes = [episode_frames(frames, s, warm + 2 * updates) for s in range(n)]
    times = [i / 2.0 for i in range(warm + 2 * updates)]
    for i in range(warm):
        for s in ids:
            pool.add_frame(s, episodes[s][i], times[i])
    pool.score({s: TASK for s in ids})
    scores, elapsed, split = [], 0.0, [0.0, 0.0]
    for u in range(updates):
        for s in ids:
            for i in (warm + 2 * u, warm + 2 * u + 1):
                pool.add_frame(s, episodes[s][i], times[i])
        sync(device)
        start = time.perf_counter()
        result = pool.score({s: TASK for s in ids})
        sync(device)
        elapsed += time.perf_counter() - start
        scores.append([result[s].score.true_logprobs for s in ids])
        split[0] += result[ids[0]].vision_ms / updates
        split[1] += result[ids[0]].language_ms / updates
    full = memory_mb(device)
    for s in ids:
        pool.close(s)
    del pool
    after = memory_mb(device)
    return elapsed, scores, {"before_mb": before, "full_mb": full, "after_close_mb": after,
                             "vision_ms": split[0], "language_ms": split[1]}


def run_engines(rm, config, n, frames, warm, updates, max_frames):
    device = rm.device
    engines = [StreamingEngine(rm, config, max_frames=max_frames) for _ in range(n)]
    episodes = [episode_frames(frames, s, warm + 2 * updates) for s in range(n)]
    times = [i / 2.0 for i in range(warm + 2 * updates)]
    for s, engine in enumerate(engines):
        for i in range(warm):
            engine.add_frame(episodes[s][i], times[i])
        engine.score(TASK)
    scores, elapsed = [], 0.0
    for u in range(updates):
        row = []
        for s, engine in enumerate(engines):
            for i in (warm + 2 * u, warm + 2 * u + 1):
                engine.add_frame(episodes[s][i], times[i])
            sync(device)
            start = time.perf_counter()
            row.append(engine.score(TASK).score.true_logprobs)
            sync(device)
            elapsed += time.perf_counter() - start
        scores.append(row)
    return elapsed, scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="N values to measure")
    parser.add_argument("--prompts", type=int, default=1, help="prompts per update (default %(default)s)")
    parser.add_argument("--warm-frames", type=int, default=16, help="frames per episode before timing")
    parser.add_argument("--updates", type=int, default=8, help="timed updates (one new pair each)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    resolution = parse_resolution(args.resolution or DEFAULT_RESOLUTION[args.shape])
    with tempfile.TemporaryDirectory() as workdir:
        rm = load_model(args.shape, args.dtype, args.quantization, args.device, Path(workdir))
    config = ScoringConfig(prompts=tuple(load_prompt_set()[:args.prompts]), resolution=resolution)
    frames = [resize_frame(f, resolution) for f in scene_frames(48, *resolution)]
    max_frames = args.warm_frames + 2 * args.updates + 2
    max_frames += max_frames % 2
    # Warm-up at the measured lengths (kernel choices and the allocator settle per shape): a GPU run on the
    # 2B shape measured a cold N=1 at a tenth of its warm rate.
    run_pool(rm, config, 2, frames, args.warm_frames, args.updates, max_frames)
    run_engines(rm, config, 1, frames, args.warm_frames, args.updates, max_frames)

    rows = []
    for n in args.sessions:
        pool_s, pool_scores, memory = run_pool(rm, config, n, frames, args.warm_frames, args.updates, max_frames)
        single_s, single_scores = run_engines(rm, config, n, frames, args.warm_frames, args.updates, max_frames)
        difference = max(abs(a - b) for pu, su in zip(pool_scores, single_scores) for ps, ss in zip(pu, su)
                         for a, b in zip(ps, ss))
        updates = n * args.updates
        rows.append({"sessions": n, "batched_updates_per_s": updates / pool_s,
                     "sequential_updates_per_s": updates / single_s, "speedup": single_s / pool_s,
                     "max_score_difference": difference, **memory})
        print(f"N={n}: batched {updates / pool_s:.1f} updates/s, sequential {updates / single_s:.1f} updates/s "
              f"({single_s / pool_s:.2f}x), max |diff| {difference:.2e}, memory {memory['before_mb']:.0f} -> "
              f"{memory['full_mb']:.0f} -> {memory['after_close_mb']:.0f} MB; "
              f"a batched update: ViT {memory['vision_ms']:.1f} ms, "
              f"LM {memory['language_ms']:.1f} ms", file=sys.stderr, flush=True)
    base = rows[0]["batched_updates_per_s"] if rows and rows[0]["sessions"] == 1 else None
    where = machine().get("gpu", machine()["processor"])
    print(f"\nQwen3-VL shape {args.shape}, {args.dtype}/{args.quantization}, {rm.device}, "
          f"{resolution[0]}x{resolution[1]}, {args.prompts} prompt(s), {where}\n")
    print("| N | batched updates/s | N engines in turn, updates/s | batched / in turn | batched vs N=1 batched "
          "| max \\|score diff\\| | memory before / full / closed (MB) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        gain = f"{row['batched_updates_per_s'] / base:.2f}x" if base else ""
        print(f"| {row['sessions']} | {row['batched_updates_per_s']:.1f} | {row['sequential_updates_per_s']:.1f} | "
              f"{row['speedup']:.2f}x | {gain} | {row['max_score_difference']:.1e} | "
              f"{row['before_mb']:.0f} / {row['full_mb']:.0f} / {row['after_close_mb']:.0f} |")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"machine": machine(), "settings": {**vars(args), "device": str(rm.device)},
                                    "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
