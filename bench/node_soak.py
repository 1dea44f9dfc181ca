"""Node soak: a 30 Hz camera into reward_node for a minute; is memory flat, is latency bounded, what CPU?

Runs the node (tiny random model unless --model), a camera process and a listener over real
DDS on this machine. Reports the node's RSS over time, its CPU use (user + system seconds per
wall second, from psutil), the publish latency (reward receipt time minus the newest frame's
header stamp; same clock) and the update counters. ``--checkout DIR`` runs the node from
another checkout of the package (e.g. an earlier commit, for a before/after comparison).

    python bench/node_soak.py --seconds 60 --size 1920x1080 --json out/node-soak.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test"))
from dds import Listener, ros_environment, start_camera, start_node

TASK = "put the red block in the bowl"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sample-fps", type=float, default=2.0)
    parser.add_argument("--model", help="checkpoint directory (default: a tiny random model)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before memory is compared")
    parser.add_argument("--size", default="640x480", help="camera frame size (default 640x480)")
    parser.add_argument("--transport", choices=("raw", "compressed"), default="raw",
                        help="raw rgb8 Image or JPEG CompressedImage (default raw)")
    parser.add_argument("--checkout", help="run the node from this checkout (PYTHONPATH) instead of this one")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    import os

    os.environ.update(ros_environment())
    if args.checkout:
        os.environ["PYTHONPATH"] = str(Path(args.checkout).resolve())
    import rclpy

    from topreward_ros.synthetic.model import write_test_model

    rclpy.init()
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        model = args.model or str(write_test_model(workdir / "tiny-model"))
        listener = Listener()
        topic = "/camera/image_raw" + ("/compressed" if args.transport == "compressed" else "")
        node = start_node(workdir, model=model, quantization="none", task=TASK, sample_fps=args.sample_fps,
                          transport=args.transport, image_topics=topic)
        process = psutil.Process(node.popen.pid)
        listener.wait_for(lambda s: any(d[2]["state"] == "active" for _, d in s.diagnostics), what="active node")
        camera = start_camera(workdir, topic=topic, transport=args.transport, rate=30, seconds=args.seconds + 5,
                              size=args.size)
        start = time.time()
        cpu_start = process.cpu_times()
        memory = []
        while time.time() - start < args.seconds:
            memory.append((time.time() - start, process.memory_info().rss / 2**20))
            time.sleep(1.0)
        cpu_end, wall = process.cpu_times(), time.time() - start
        camera.stop()
        with listener.lock:
            updates = list(listener.updates)
            diagnostics = listener.diagnostics[-1][1][2] if listener.diagnostics else {}
        node.stop()
        listener.close()
    rclpy.try_shutdown()

    latencies = [(received - u["stamp"]) * 1e3 for received, u in updates]
    model_ms = [u["latency_ms"] for _, u in updates]
    after = [rss for t, rss in memory if t >= args.warmup]
    figures = {
        "machine": {"platform": platform.platform(), "cpus": psutil.cpu_count()},
        "seconds": args.seconds, "sample_fps": args.sample_fps,
        "camera": f"30 Hz {args.size} {'jpeg' if args.transport == 'compressed' else 'rgb8'}, best effort",
        "checkout": args.checkout or "this one",
        "updates": len(updates), "frames_scored": sum(u.get("added", 1) for _, u in updates),
        "expected_frames": int(args.seconds * args.sample_fps),
        "node_cpu_cores": ((cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)) / wall,
        "publish_latency_ms": {"median": statistics.median(latencies), "p95": float(np.percentile(latencies, 95)),
                               "max": max(latencies)},
        "model_update_ms": {"median": statistics.median(model_ms), "p95": float(np.percentile(model_ms, 95)),
                            "max": max(model_ms)},
        "node_rss_mb": {"after_warmup": after[0], "end": after[-1], "max_after_warmup": max(after),
                        "min_after_warmup": min(after)},
        "final_diagnostics": diagnostics, "rss_trace": memory,
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "rss_trace"}, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
