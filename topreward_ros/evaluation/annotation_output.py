"""A ``topreward-annotate`` run's output folder: checked before any work, one part per finished episode,
and the final tables assembled from the parts::

    run.json              what is scored and how (a rerun must match it: it resumes)
    parts/<id>.parquet    one file per finished episode, written as it arrives and renamed into place
                          (its per-frame rows; the per-episode row in the file's metadata)
    frames.parquet        per-frame table, assembled from the parts at the end
    episodes.parquet      per-episode table
    progress/<dataset>.parquet   per LeRobot dataset: RA-BC progress for every frame of the dataset
    summary.json, summary.md

A part's name is a hash of the episode's identity, so a resumed run knows which episodes are done.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..outputs import OutputError, atomic_path, check_creatable, check_writable_folder, json_safe, write_text_atomic
from ..sources.collections import Dataset, Source, part_name
from ..sources.lerobot import LeRobotError
from .episode_annotator import AnnotateError, AnnotateSettings, Outcome
from .metrics import format_voc, min_max_progress

log = logging.getLogger(__name__)

TOOL = "topreward-annotate"
RUN_FILE = "run.json"
PARTS = "parts"
FRAMES_TABLE = "frames.parquet"
EPISODES_TABLE = "episodes.parquet"
PROGRESS_DIR = "progress"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
OUTPUT_ENTRIES = {RUN_FILE, PARTS, FRAMES_TABLE, EPISODES_TABLE, PROGRESS_DIR, SUMMARY_JSON, SUMMARY_MD}
RABC_MODES = ("causal", "episode")
PART_META = b"topreward.episode"
VOC_BINS = np.linspace(-1.0, 1.0, 11)


# ----------------------------------------------------------------------------------------------- output folder

def run_record(sources: Sequence[Source], settings: AnnotateSettings) -> dict:
    return {"tool": TOOL, "format": 1, "sources": [str(s.path) for s in sources], "settings": settings.fingerprint()}


def check_output(output: str | Path, record: dict) -> bool:
    """Before any work: ``output`` is new, empty, or a run of the same sources and settings (then it resumes:
    returns True). Nothing is created."""
    output = Path(output)
    if not output.exists():
        if output.is_symlink():
            raise OutputError(f"--output {output} is a broken symbolic link")
        check_creatable(output, "--output")
        return False
    if not output.is_dir():
        raise OutputError(f"--output {output} exists and is not a folder")
    entries = sorted(e.name for e in output.iterdir() if not (e.name.startswith(".") and e.name.endswith(".tmp")))
    if not entries:
        return False
    if RUN_FILE not in entries:
        raise OutputError(f"--output {output} holds files and no {RUN_FILE}: it is not a {TOOL} run; "
                          "give a new or empty folder")
    foreign = [name for name in entries if name not in OUTPUT_ENTRIES]
    if foreign:
        raise OutputError(f"--output {output} holds files that are not from {TOOL} ({', '.join(foreign[:3])})")
    try:
        previous = json.loads((output / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OutputError(f"--output {output}: cannot read {RUN_FILE}: {exc}") from exc
    if previous.get("sources") != record["sources"]:
        raise OutputError(f"--output {output} is a run over other sources ({', '.join(previous.get('sources', []))}); "
                          "resume it with the same SOURCE list, or give a new folder")
    old, new = previous.get("settings", {}), record["settings"]
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        raise OutputError(f"--output {output} is a run with other settings ({', '.join(changed)}); resume it with "
                          "the same options, or give a new folder")
    check_writable_folder(output, "--output", output)
    return True


def start_output(output: Path, record: dict) -> Path:
    """Creates the folder and its run.json, removes a part a killed run left half-written; returns the parts
    folder."""
    parts = output / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    for leftover in parts.glob(".*.tmp"):  # a part being written when a previous run was killed
        leftover.unlink(missing_ok=True)
    if not (output / RUN_FILE).exists():
        write_text_atomic(output / RUN_FILE, json.dumps(record, indent=2) + "\n")
    return parts


# ----------------------------------------------------------------------------------------------- parts

def _frames_schema():
    import pyarrow as pa

    return pa.schema([
        ("source", pa.string()), ("item", pa.string()), ("episode", pa.int64()), ("frame", pa.int64()),
        ("frame_index", pa.int64()), ("time", pa.float64()), ("stamp", pa.float64()), ("score", pa.float64()),
        ("reward", pa.float64()), ("progress", pa.float64()), ("success", pa.bool_()),
        ("logp_true", pa.list_(pa.float64())), ("logp_false", pa.list_(pa.float64())),
        ("static_score", pa.float64()), ("model_frames", pa.int64()), ("stride", pa.int64())])


EPISODE_COLUMNS = [
    ("source", "string"), ("item", "string"), ("kind", "string"), ("path", "string"), ("episode", "int64"),
    ("episodes_in_item", "int64"), ("task", "string"), ("status", "string"), ("error", "string"),
    ("frames", "int64"), ("source_frames", "int64"), ("duration_s", "float64"), ("voc", "float64"),
    ("static_voc", "float64"), ("final_score", "float64"), ("final_progress", "float64"), ("success", "bool"),
    ("wall_seconds", "float64"), ("attempts", "int64"), ("worker", "string")]


def _episodes_schema():
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, {"string": "string", "int64": "int64", "float64": "float64",
                                          "bool": "bool_"}[kind])()) for name, kind in EPISODE_COLUMNS])


def _write_parquet(path: Path, table) -> None:
    import pyarrow.parquet as pq

    try:
        with atomic_path(path) as temporary:
            pq.write_table(table, temporary)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc


def write_part(parts: Path, outcome: Outcome) -> Path:
    """One episode's file, renamed into place: a killed run leaves either the whole part or none."""
    import pyarrow as pa

    row = outcome.row
    schema = _frames_schema()
    n = len(outcome.frames.get("frame", []))
    columns = {"source": [row["source"]] * n, "item": [row["item"]] * n, "episode": [row["episode"]] * n,
               **outcome.frames}
    table = pa.table({f.name: pa.array(columns.get(f.name, [None] * n), f.type) for f in schema}, schema=schema)
    table = table.replace_schema_metadata({PART_META: json.dumps(json_safe(row)).encode()})
    path = parts / f"{part_name(row['source'], row['item'], row['episode'])}.parquet"
    _write_parquet(path, table)
    return path


def read_part_rows(parts: Path) -> dict[str, dict]:
    """part name -> its episode row (from the file footers only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {}
    for path in sorted(parts.glob("*.parquet")):
        try:
            metadata = pq.read_schema(path).metadata or {}
            rows[path.stem] = json.loads(metadata[PART_META])
        except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
            log.warning("%s: unreadable part (%s); its episode is scored again", path, exc)
    return rows


# ----------------------------------------------------------------------------------------------- tables

def _order(sources: Sequence[Source]):
    rank = {s.label: i for i, s in enumerate(sources)}
    return lambda row: (rank.get(row["source"], len(rank)), row["item"], row["episode"])


def assemble(output: Path, sources: Sequence[Source], settings: AnnotateSettings, rabc: str, info: dict) -> dict:
    """The final tables from the parts: frames.parquet, episodes.parquet, progress files, summary.{json,md}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = output / PARTS
    rows = read_part_rows(parts)
    wanted = {(s.label, item.name) for s in sources for item in s.items}
    order = _order(sources)
    keys = sorted((k for k, r in rows.items() if (r["source"], r["item"]) in wanted), key=lambda k: order(rows[k]))
    _check_complete(sources, [rows[k] for k in keys])
    frame_tables = [pq.read_table(parts / f"{k}.parquet").replace_schema_metadata(None) for k in keys]
    frames = pa.concat_tables(frame_tables) if frame_tables else _frames_schema().empty_table()
    episode_rows = [rows[k] for k in keys]
    schema = _episodes_schema()
    episodes = pa.table({f.name: pa.array([r.get(f.name) for r in episode_rows], f.type) for f in schema},
                        schema=schema)
    _write_parquet(output / FRAMES_TABLE, frames)
    _write_parquet(output / EPISODES_TABLE, episodes)
    progress = [_write_progress(output, dataset, frames, episode_rows, rabc, settings)
                for source in sources for dataset in source.datasets]
    summary = _summary(sources, episode_rows, progress, settings, rabc, info)
    write_text_atomic(output / SUMMARY_JSON, json.dumps(json_safe(summary), indent=2) + "\n")
    write_text_atomic(output / SUMMARY_MD, _markdown(summary))
    return summary


def _check_complete(sources: Sequence[Source], rows: list[dict]) -> None:
    have = {(r["source"], r["item"], r["episode"]) for r in rows}
    counts = {(r["source"], r["item"]): r.get("episodes_in_item") or 1 for r in rows}
    missing = []
    for source in sources:
        for item in source.items:
            episodes = range(counts.get((item.source, item.name), 1)) if item.kind == "bag" else [item.episode]
            missing += [f"{item.source}/{item.name}#{e}" for e in episodes if (item.source, item.name, e) not in have]
    if missing:
        raise AnnotateError(f"episodes without results: {', '.join(missing[:5])}; run again with the same --output")


def _write_progress(output: Path, dataset: Dataset, frames, rows: list[dict], rabc: str,
                    settings: AnnotateSettings) -> dict:
    """A LeRobot RA-BC progress file covering every frame of the dataset (LeRobot weights a frame it does not
    find, or a NaN, as 1.0). Between sampled frames: ``causal``, the causal progress of the latest sampled frame
    (what the node published then, step-held); ``episode``, the episode's min-max normalised scores interpolated
    linearly (LeRobot's own TOPReward port). Not written when an episode of the dataset failed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    name = dataset.label.replace("/", "__")
    path = output / PROGRESS_DIR / f"{name}.parquet"
    entry = {"dataset": dataset.label, "root": str(dataset.dataset.root), "mode": rabc}
    mine = {r["episode"]: r for r in rows if r["source"] == dataset.source and r["item"] == dataset.name}
    failed = sorted(e for e, r in mine.items() if r["status"] != "ok")
    if failed:
        with_path = path.exists()
        path.unlink(missing_ok=True)
        return {**entry, "path": None, "skipped": f"episodes {', '.join(map(str, failed[:10]))} failed: a progress "
                f"file must cover every frame" + (" (the previous one was removed)" if with_path else "")}
    try:
        table = dataset.dataset.frame_table()
    except LeRobotError as exc:  # a data file read only now (one without task_index), or changed since
        path.unlink(missing_ok=True)
        return {**entry, "path": None, "skipped": str(exc)}
    mask = pc.and_(pc.equal(frames["source"], dataset.source), pc.equal(frames["item"], dataset.name))
    sampled = frames.filter(mask).select(["episode", "frame_index", "progress", "score"]).to_pydict()
    points: dict[int, tuple[list, list, list]] = {}
    for episode, index, prog, score in zip(sampled["episode"], sampled["frame_index"], sampled["progress"],
                                           sampled["score"]):
        points.setdefault(episode, ([], [], []))
        for values, value in zip(points[episode], (index, prog, score)):
            values.append(value)
    episode_of = table["episode_index"].to_numpy()
    frame_of = table["frame_index"].to_numpy()
    values = np.full(len(table), np.nan)
    for episode in np.unique(episode_of):
        at = np.nonzero(episode_of == episode)[0]
        if int(episode) not in points:
            path.unlink(missing_ok=True)
            return {**entry, "path": None, "skipped": f"the data has frames of episode {episode}, which has no "
                    "metadata in meta/episodes"}
        index, prog, score = (np.asarray(v, dtype=float) for v in points[int(episode)])
        if rabc == "causal":
            held = np.searchsorted(index, frame_of[at], side="right") - 1
            values[at] = prog[np.clip(held, 0, len(prog) - 1)]
        else:
            values[at] = np.interp(frame_of[at], index, min_max_progress(list(score)))
    progress = pa.table({"index": table["index"], "episode_index": table["episode_index"],
                         "frame_index": table["frame_index"],
                         "progress_sparse": pa.array(np.clip(values, 0.0, 1.0).astype(np.float32))})
    progress = progress.replace_schema_metadata({b"vlm_name": settings.reward.model.encode(),
                                                 b"topreward.mode": rabc.encode(),
                                                 b"topreward.dataset": str(dataset.dataset.root).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_parquet(path, progress)
    return {**entry, "path": str(path), "frames": len(progress)}


def _stats(values: Iterable[float | None], histogram: bool = False) -> dict:
    values = sorted(v for v in values if v is not None and not math.isnan(v))
    if not values:
        return {"defined": 0, "mean": None, "std": None, "min": None, "p25": None, "median": None, "p75": None,
                "max": None, **({"histogram": None} if histogram else {})}
    q = np.quantile(values, [0.25, 0.5, 0.75])
    stats = {"defined": len(values), "mean": statistics.fmean(values), "std": statistics.pstdev(values),
             "min": values[0], "p25": float(q[0]), "median": float(q[1]), "p75": float(q[2]), "max": values[-1]}
    if histogram:
        counts, edges = np.histogram(values, bins=VOC_BINS)
        stats["histogram"] = {"edges": [round(float(e), 3) for e in edges], "counts": counts.tolist()}
    return stats


def _summary(sources, rows, progress, settings: AnnotateSettings, rabc: str, info: dict) -> dict:
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    return {
        "episodes": len(rows), "scored": len(ok), "failed": len(failed),
        "voc": _stats((r["voc"] for r in ok), histogram=True),
        "static_voc": _stats((r["static_voc"] for r in ok), histogram=True),
        "final_score": _stats(r["final_score"] for r in ok),
        "frames_scored": sum(r["frames"] for r in ok),
        "compute_seconds": sum(r.get("wall_seconds") or 0.0 for r in rows),
        "sources": [{"label": s.label, "path": str(s.path), "items": s.counts(),
                     "episodes": sum(r["source"] == s.label for r in rows),
                     "failed": sum(r["source"] == s.label for r in failed)} for s in sources],
        "progress_files": progress,
        "failures": [{k: r.get(k) for k in ("source", "item", "episode", "task", "error", "attempts")} for r in failed],
        "settings": {**settings.fingerprint(), "rabc_progress": rabc},
        "run": info,
    }


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _markdown(summary: dict) -> str:
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
