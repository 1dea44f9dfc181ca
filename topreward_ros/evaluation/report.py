"""Writing a curve report: JSON (summary + settings), CSV (one row per prefix) and a PNG plot."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .curve import CurveReport  # noqa: E402
from .metrics import format_voc  # noqa: E402


def json_safe(value):
    """NaN (an undefined VOC) becomes null, recursively."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def summary_dict(report: CurveReport, settings: dict) -> dict:
    """The report as JSON-ready data (undefined VOC becomes null)."""
    return json_safe({**report.summary(), "settings": settings})


def write_report(report: CurveReport, settings: dict, directory: str | Path, name: str = "curve") -> dict[str, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / f"{name}.json", "csv": directory / f"{name}.csv", "png": directory / f"{name}.png"}
    paths["json"].write_text(json.dumps(summary_dict(report, settings), indent=2) + "\n", encoding="utf-8")

    curve, static = report.curve, report.static
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        num_prompts = len(curve.scores[0].true_logprobs)
        writer.writerow(["prefix", "frames", "time_s", "reward", "progress", "static_reward"]
                        + [f"logp_true_{i}" for i in range(num_prompts)]
                        + [f"logp_false_{i}" for i in range(num_prompts)])
        for i, (n, t, score, p, s) in enumerate(zip(curve.lengths, curve.times, curve.scores, curve.progress,
                                                    static.values)):
            writer.writerow([i, n, f"{t:.6f}", f"{score.value:.6f}", f"{p:.6f}", f"{s:.6f}"]
                            + [f"{v:.6f}" for v in score.true_logprobs] + [f"{v:.6f}" for v in score.false_logprobs])

    fig, (raw, norm) = plt.subplots(1, 2, figsize=(11, 4))
    raw.plot(curve.times, curve.values, "o-", label="video")
    raw.plot(static.times, static.values, "s--", color="gray", label="static control")
    raw.set_xlabel("time (s)")
    raw.set_ylabel("reward (raw)")
    raw.legend()
    norm.plot(curve.times, curve.progress, "o-")
    norm.set_xlabel("time (s)")
    norm.set_ylabel("progress (min-max)")
    norm.set_ylim(-0.05, 1.05)
    fig.suptitle(f"{name}: VOC {format_voc(curve.voc)}, static VOC {format_voc(static.voc)}")
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=100)
    plt.close(fig)
    return paths
