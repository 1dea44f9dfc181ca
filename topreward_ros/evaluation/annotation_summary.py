"""A ``topreward-annotate`` run's summary: its numbers (summary.json) and the same as a page (summary.md)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..sources.collections import Source
from .annotation_folder import TOOL
from .annotation_records import EpisodeRow
from .episode_annotator import AnnotateSettings
from .metrics import format_voc

VOC_BINS = np.linspace(-1.0, 1.0, 11)


def _stats(values: Iterable[float | None], histogram: bool = False) -> dict:
    values = sorted(v for v in values if v is not None and not math.isnan(v))
    if not values:
        return {"defined": 0, "mean": None, "std": None, "min": None, "p25": None, "median": None, "p75": None,
                "max": None, **({"histogram": None} if histogram else {})}
    q = np.quantile(values, [0.25, 0.5, 0.75])
    stats: dict[str, Any] = {"defined": len(values), "mean": statistics.fmean(values), "std": statistics.pstdev(values),
             "min": values[0], "p25": float(q[0]), "median": float(q[1]), "p75": float(q[2]), "max": values[-1]}
    if histogram:
        counts, edges = np.histogram(values, bins=VOC_BINS)
        stats["histogram"] = {"edges": [round(float(e), 3) for e in edges], "counts": counts.tolist()}
    return stats


def summarize(sources: Sequence[Source], rows: list[EpisodeRow], progress: list[dict], settings: AnnotateSettings,
              rabc: str, info: dict) -> dict:
    """The run in numbers (summary.json): episodes scored and failed, VOC statistics, the progress files, the
    failures with their reasons, the settings and ``info`` on this run."""
    ok = [r for r in rows if not r.failed]
    failed = [r for r in rows if r.failed]
    return {
        "episodes": len(rows), "scored": len(ok), "failed": len(failed),
        "voc": _stats((r.voc for r in ok), histogram=True),
        "static_voc": _stats((r.static_voc for r in ok), histogram=True),
        "final_score": _stats(r.final_score for r in ok),
        "frames_scored": sum(r.frames for r in ok),
        "compute_seconds": sum(r.wall_seconds or 0.0 for r in rows),
        "sources": [{"label": s.label, "path": str(s.path), "items": s.counts(),
                     "episodes": sum(r.source == s.label for r in rows),
                     "failed": sum(r.source == s.label for r in failed)} for s in sources],
        "progress_files": progress,
        "failures": [{k: getattr(r, k) for k in ("source", "item", "episode", "task", "error", "attempts")}
                     for r in failed],
        "settings": {**settings.fingerprint(), "rabc_progress": rabc},
        "run": info,
    }


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown(summary: dict) -> str:
    """summary.md: the summary as tables."""
    voc, static = summary["voc"], summary["static_voc"]
    lines = [f"# {TOOL}: {summary['episodes']} episodes", "",
             f"{summary['scored']} scored, {summary['failed']} failed, {summary['frames_scored']} frames scored. "
             f"VOC mean {format_voc(voc['mean'] if voc['mean'] is not None else math.nan)} "
             f"({voc['defined']} defined), static-video VOC mean "
             f"{format_voc(static['mean'] if static['mean'] is not None else math.nan)}.", "",
             "| | defined | mean | std | min | p25 | median | p75 | max |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, key in (("VOC", "voc"), ("static VOC", "static_voc"), ("final score", "final_score")):
        s = summary[key]
        cells = " | ".join(_fmt(s[k]) for k in ("mean", "std", "min", "p25", "median", "p75", "max"))
        lines.append(f"| {name} | {s['defined']} | {cells} |")
    if voc.get("histogram"):
        edges, counts = voc["histogram"]["edges"], voc["histogram"]["counts"]
        lines += ["", "VOC histogram:", "", "| VOC | episodes |", "| --- | --- |"]
        lines += [f"| {edges[i]:+.1f} .. {edges[i + 1]:+.1f} | {c} |" for i, c in enumerate(counts)]
    lines += ["", "| source | path | episodes | failed |", "| --- | --- | --- | --- |"]
    lines += [f"| {s['label']} | {s['path']} | {s['episodes']} | {s['failed']} |" for s in summary["sources"]]
    if summary["progress_files"]:
        lines += ["", "RA-BC progress files (LeRobot `progress_path`):", ""]
        lines += [f"- {p['dataset']}: " + (f"`{p['path']}` ({p['frames']} frames, {p['mode']})" if p["path"]
                                           else f"not written: {p['skipped']}") for p in summary["progress_files"]]
    lines += ["", f"## Failures ({summary['failed']})", ""]
    if summary["failures"]:
        lines += ["| source | item | episode | task | error |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {f['source']} | {f['item']} | {f['episode']} | {f['task'] or ''} | "
                  f"{(f['error'] or '').replace('|', '/')} |" for f in summary["failures"]]
    else:
        lines.append("none")
    run = summary["run"]
    lines += ["", f"This run: {run['this_run_episodes']} episodes in {run['wall_seconds']:.1f} s"
              + (f" ({run['episodes_per_hour']:.0f} episodes/h)" if run.get("episodes_per_hour") else "")
              + f", {run['resumed_episodes']} already done; {run.get('execution', '')}.", "",
              "Settings: " + ", ".join(f"{k}={v}" for k, v in summary["settings"].items() if k != "prompts")]
    return "\n".join(lines) + "\n"
