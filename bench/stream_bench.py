"""Streaming benchmark: per-update cost of TOPReward over one growing synthetic episode.

Strategies, measured in the same run on the same model:
  A  full recompute: vision tower + language model over the whole prefix, per update and prompt
     (the published method);
  B  vision cached: each pair's ViT features computed once, the language model re-run over the
     whole prefix per update and prompt (the seed blog's caching);
  C  this package's StreamingEngine: cached vision and KV cache; an update runs only the new
     pair, the closing token and the prompts (batched as masked branches).

An update is one new pair of frames. Per episode length (checkpoints 8/16/32/64 frames) it
reports median and p95 latency over --repeats runs, the tokens run through the language model
and the peak memory; a table on stdout, figures with the machine in --json, and a PNG plot of
latency vs episode length. Random weights: the timings are real, the scores are not.

    python bench/stream_bench.py --shape small --frames 64 --prompts 1 3 10 --json out/bench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from topreward_ros.method.engine import StreamingEngine
from topreward_ros.method.frames import FramePair, parse_resolution, resize_frame
from topreward_ros.method.config import ModelConfig, ScoringConfig
from topreward_ros.method.model import RewardModel, load_reward_model, resolve, single_token_id
from topreward_ros.method.prompts import fill_prompt, load_prompt_set
from topreward_ros.method.rendering import Renderer
from topreward_ros.method.reference import ReferenceScorer
from topreward_ros.method.scoring import answer_logprobs
from topreward_ros.synthetic.model import SHAPES, build_model, build_processor, build_tokenizer, write_test_model
from topreward_ros.synthetic.scene import scene_frames
from topreward_ros.method.vision import encode_pairs

TASK = "put the red block in the bowl"
CHECKPOINTS = (8, 16, 32, 64)
DEFAULT_RESOLUTION = {"tiny": "256x256", "small": "256x256", "qwen3-vl-2b": "512x384"}


class PeakMemory:
    """Peak memory above the start: CUDA allocator peak on a GPU, sampled process RSS on the CPU."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.process = psutil.Process()
            self.base = self.peak_rss = self.process.memory_info().rss
            self.running = True
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self.running = False
            self.thread.join()
            self.peak = self.peak_rss - self.base
        return False


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def load_model(shape: str, dtype: str, quantization: str, device: str, workdir: Path) -> RewardModel:
    """Random weights of the given shape; quantised models go through the real loading path."""
    if quantization != "none":
        path = write_test_model(workdir / shape, shape=shape)
        return load_reward_model(ModelConfig(model=str(path), dtype=dtype, quantization=quantization, device=device))
    config = ModelConfig(model=f"random {shape}", dtype=dtype, quantization="none", device=device)
    precision = resolve(config)
    tokenizer = build_tokenizer()
    model = build_model(shape, tokenizer, dtype=precision.dtype).to(precision.device)
    return RewardModel(model=model, processor=build_processor(tokenizer), config=config, device=precision.device,
                       dtype=precision.dtype, quantization="none", true_id=single_token_id(tokenizer, " True"),
                       false_id=single_token_id(tokenizer, " False"))


class VisionCachedScorer:
    """Strategy B: ViT features cached per pair, the language model re-run over the whole prefix per prompt."""

    def __init__(self, reward_model: RewardModel, config: ScoringConfig):
        self.rm = reward_model
        self.config = config
        self.renderer = Renderer(reward_model.tokenizer)
        self.groups = []

    def add_pair(self, pair: FramePair) -> None:
        self.groups += encode_pairs(self.rm, [pair])

    @torch.inference_mode()
    def score(self, task: str) -> tuple[torch.Tensor, int]:
        video = self.renderer.groups((g.timestamp, g.num_tokens) for g in self.groups)
        features = BaseModelOutputWithPooling(pooler_output=tuple(g.embeds for g in self.groups))
        features.deepstack_features = [tuple(level) for level in zip(*(g.deepstack for g in self.groups))]
        grid = self.groups[0].grid_thw.clone()
        grid[0, 0] = len(self.groups)
        rows, tokens = [], 0
        for template in self.config.prompts:
            segment = (self.renderer.prefix() + video + self.renderer.close_video()
                       + self.renderer.prompt(fill_prompt(template, task)))
            out = self.rm.model.model(
                input_ids=torch.tensor([segment.ids], device=self.rm.device),
                mm_token_type_ids=torch.tensor([segment.types], device=self.rm.device),
                video_grid_thw=grid, mm_encoder_outputs={"video": features}, use_cache=False)
            rows.append(answer_logprobs(self.rm, out.last_hidden_state[:, -1]))
            tokens += len(segment)
        return torch.cat(rows), tokens


def stats(values: list[float]) -> dict:
    return {"median_ms": statistics.median(values), "p95_ms": float(np.percentile(values, 95)), "runs": len(values)}


def run_strategy(name, rm, config, frames, times, checkpoints, repeats, task=TASK) -> dict:
    """Latency, LM tokens and peak memory of the update that brings the episode to each checkpoint."""
    latencies = {n: [] for n in checkpoints}
    tokens = {}
    scores = {}
    with PeakMemory(rm.device) as memory:
        for _ in range(repeats):
            if name == "C":
                engine = StreamingEngine(rm, config, max_frames=max(64, len(frames)))
                for n in range(2, len(frames) + 1, 2):
                    engine.add_frame(frames[n - 2], times[n - 2])
                    engine.add_frame(frames[n - 1], times[n - 1])
                    sync(rm.device)
                    start = time.perf_counter()
                    update = engine.score(task)
                    sync(rm.device)
                    if n in latencies:
                        latencies[n].append((time.perf_counter() - start) * 1e3)
                        tokens[n] = update.new_tokens
                        scores[n] = list(update.score.true_logprobs)
            elif name == "B":
                scorer = VisionCachedScorer(rm, config)
                for n in range(2, len(frames) + 1, 2):
                    sync(rm.device)
                    start = time.perf_counter()
                    scorer.add_pair(FramePair(np.stack(frames[n - 2:n]), (times[n - 2] + times[n - 1]) / 2))
                    if n in latencies:
                        logprobs, tokens[n] = scorer.score(task)
                        sync(rm.device)
                        latencies[n].append((time.perf_counter() - start) * 1e3)
                        scores[n] = logprobs[:, 0].tolist()
            else:
                scorer = ReferenceScorer(rm, config)
                for n in checkpoints:
                    sync(rm.device)
                    start = time.perf_counter()
                    score = scorer.score(frames[:n], times[:n], task)
                    sync(rm.device)
                    latencies[n].append((time.perf_counter() - start) * 1e3)
                    scores[n] = list(score.true_logprobs)
                    tokens[n] = None
    return {"latency": {n: stats(v) for n, v in latencies.items()}, "lm_tokens": tokens,
            "peak_memory_mb": memory.peak / 2**20, "scores": scores}


def run_worker(args, resolution, checkpoints) -> int:
    """Measure one strategy with one prompt count in this process; write the result as JSON."""
    strategy, prompts = args.worker.split("/")
    with tempfile.TemporaryDirectory() as workdir:
        rm = load_model(args.shape, args.dtype, args.quantization, args.device, Path(workdir))
    frames = [resize_frame(f, resolution) for f in scene_frames(args.frames, *resolution)]
    times = [i / 2.0 for i in range(args.frames)]  # 2 fps
    templates = load_prompt_set()
    warmup = ScoringConfig(prompts=tuple(templates[:1]), resolution=resolution)
    run_strategy(strategy, rm, warmup, frames[:4], times[:4], [4], 1)
    config = ScoringConfig(prompts=tuple(templates[:int(prompts)]), resolution=resolution)
    result = run_strategy(strategy, rm, config, frames, times, checkpoints, args.repeats)
    result["device"] = str(rm.device)
    Path(args.worker_out).write_text(json.dumps(result))
    return 0


def machine() -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": psutil.cpu_count(logical=True), "python": sys.version.split()[0], "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"A": "o-", "B": "s-", "C": "^-"}
    for key, result in results.items():
        strategy, prompts = key.split("/")
        xs = sorted(result["latency"])
        ax.plot(xs, [result["latency"][x]["median_ms"] for x in xs], styles[strategy],
                label=f"{strategy}, {prompts} prompt(s)")
    ax.set_xlabel("episode length (frames)")
    ax.set_ylabel("latency per update (ms, median)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model, its precision and device, and the figures file: shared by the benchmarks."""
    parser.add_argument("--shape", choices=sorted(SHAPES), default="small")
    parser.add_argument("--resolution", help="frame size WxH (default 256x256 on tiny/small, 512x384 on 2B)")
    parser.add_argument("--dtype", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    parser.add_argument("--quantization", default="none", choices=("none", "4bit", "8bit"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", help="write all figures (and the machine) to this file")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--frames", type=int, default=64, help="episode length (even, at most 64)")
    parser.add_argument("--prompts", type=int, nargs="+", default=[1, 3, 10], help="prompt counts to measure")
    parser.add_argument("--strategies", default="ABC", help="subset of ABC (default all)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--plot", help="PNG of latency vs episode length (default: beside --json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.frames % 2 or not 2 <= args.frames <= 64:
        parser.error("--frames must be even, between 2 and 64")
    if args.threads:
        torch.set_num_threads(args.threads)
    resolution = parse_resolution(args.resolution or DEFAULT_RESOLUTION[args.shape])
    checkpoints = sorted({n for n in CHECKPOINTS if n <= args.frames} | {args.frames})

    if args.worker:
        return run_worker(args, resolution, checkpoints)
    results = {}
    for prompts in args.prompts:
        for strategy in args.strategies:
            # One process per measurement: peak memory is then that strategy's own.
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                command = [sys.executable, __file__, "--worker", f"{strategy}/{prompts}", "--worker-out", out.name,
                           *(sys.argv[1:] if argv is None else argv)]
                subprocess.run(command, check=True)
                results[f"{strategy}/{prompts}"] = json.loads(Path(out.name).read_text())
            print(f"done {strategy} with {prompts} prompt(s)", file=sys.stderr, flush=True)
    device = results[next(iter(results))].pop("device")
    for result in results.values():
        result.pop("device", None)
        result["latency"] = {int(n): v for n, v in result["latency"].items()}
        result["lm_tokens"] = {int(n): v for n, v in result["lm_tokens"].items()}
        result["scores"] = {int(n): v for n, v in result["scores"].items()}

    for key, result in results.items():  # A and B run the same token sequences
        if key.startswith("A/"):
            result["lm_tokens"] = results.get("B/" + key[2:], {}).get("lm_tokens", result["lm_tokens"])
    exactness = {}
    for prompts in args.prompts:
        c = results.get(f"C/{prompts}")
        for other in "AB":
            o = results.get(f"{other}/{prompts}")
            if c and o:
                exactness[f"C vs {other}, {prompts} prompt(s)"] = max(
                    abs(x - y) for n in checkpoints for x, y in zip(c["scores"][n], o["scores"][n]))

    header = (f"Qwen3-VL shape {args.shape}, {args.dtype}/{args.quantization}, {device}, "
              f"{resolution[0]}x{resolution[1]}, {machine().get('gpu', machine()['processor'])}")
    print(f"\n{header}\n")
    print("| strategy | prompts | frames | median ms | p95 ms | LM tokens | peak MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key, result in results.items():
        strategy, prompts = key.split("/")
        for n in checkpoints:
            lat = result["latency"][n]
            print(f"| {strategy} | {prompts} | {n} | {lat['median_ms']:.1f} | {lat['p95_ms']:.1f} | "
                  f"{result['lm_tokens'].get(n)} | {result['peak_memory_mb']:.0f} |")
    ratios = {}
    for prompts in args.prompts:
        c = results.get(f"C/{prompts}")
        if not c:
            continue
        for other in "AB":
            o = results.get(f"{other}/{prompts}")
            if o:
                for n in checkpoints:
                    ratios[f"{other}/C speed-up, {prompts} prompt(s), {n} frames"] = (
                        o["latency"][n]["median_ms"] / c["latency"][n]["median_ms"])
        ratios[f"C {prompts} prompt(s): {checkpoints[-1]} frames / {checkpoints[0]} frames"] = (
            c["latency"][checkpoints[-1]]["median_ms"] / c["latency"][checkpoints[0]]["median_ms"])
    c1, c_max = results.get(f"C/{min(args.prompts)}"), results.get(f"C/{max(args.prompts)}")
    if c1 and c_max and c1 is not c_max:
        for n in checkpoints:
            ratios[f"C {max(args.prompts)} prompts / {min(args.prompts)} prompt, {n} frames"] = (
                c_max["latency"][n]["median_ms"] / c1["latency"][n]["median_ms"])
    print()
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}x")
    for name, value in exactness.items():
        print(f"max |score difference| {name}: {value:.2e}")

    figures = {"machine": machine(), "settings": {**vars(args), "resolution": list(resolution),
                                                  "device": device, "checkpoints": checkpoints},
               "results": results, "ratios": ratios, "max_score_difference": exactness}
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n")
    plot_path = Path(args.plot) if args.plot else (Path(args.json).with_suffix(".png") if args.json else None)
    if plot_path:
        plot(results, plot_path, header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
