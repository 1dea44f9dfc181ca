"""A ``topreward-annotate`` run's output folder: checked before any work, one part per finished episode,
and the episode and frame tables assembled from the parts::

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
from collections.abc import Sequence
from pathlib import Path

from ..outputs import OutputError, check_creatable, check_writable_folder, json_safe, write_text_atomic
from ..sources.collections import Dataset, Source, part_name
from .annotation_records import EpisodeRow, FrameRow, from_dict, schema, to_dict, to_table, write_table
from .episode_annotator import AnnotateError, AnnotateSettings, Outcome

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
PART_META = b"topreward.episode"


# ----------------------------------------------------------------------------------------------- the run file

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

def write_part(parts: Path, outcome: Outcome) -> Path:
    """One episode's file, renamed into place: a killed run leaves either the whole part or none."""
    row = outcome.row
    table = to_table(FrameRow, outcome.frames)
    table = table.replace_schema_metadata({PART_META: json.dumps(json_safe(to_dict(row))).encode()})
    path = parts / f"{part_name(row.source, row.item, row.episode)}.parquet"
    write_table(path, table)
    return path


def read_part_rows(parts: Path) -> dict[str, EpisodeRow]:
    """part name -> its episode row (from the file footers only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {}
    for path in sorted(parts.glob("*.parquet")):
        try:
            metadata = pq.read_schema(path).metadata or {}
            rows[path.stem] = from_dict(EpisodeRow, json.loads(metadata[PART_META]))
        except (OSError, KeyError, ValueError, TypeError, pa.ArrowException) as exc:
            log.warning("%s: unreadable part (%s); its episode is scored again", path, exc)
    return rows


# ----------------------------------------------------------------------------------------------- tables

def write_tables(output: Path, sources: Sequence[Source]):
    """frames.parquet and episodes.parquet from the parts of ``sources``' episodes, in the sources' order;
    AnnotateError when an episode has no part. Returns the frame table and the episode rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = output / PARTS
    rows = read_part_rows(parts)
    wanted = {(s.label, item.name) for s in sources for item in s.items}
    rank = {s.label: i for i, s in enumerate(sources)}
    keys = sorted((k for k, r in rows.items() if (r.source, r.item) in wanted),
                  key=lambda k: (rank.get(rows[k].source, len(rank)), rows[k].item, rows[k].episode))
    episode_rows = [rows[k] for k in keys]
    _check_complete(sources, episode_rows)
    frame_tables = [pq.read_table(parts / f"{k}.parquet").replace_schema_metadata(None) for k in keys]
    frames = pa.concat_tables(frame_tables) if frame_tables else schema(FrameRow).empty_table()
    write_table(output / FRAMES_TABLE, frames)
    write_table(output / EPISODES_TABLE, to_table(EpisodeRow, episode_rows))
    return frames, episode_rows


def _check_complete(sources: Sequence[Source], rows: list[EpisodeRow]) -> None:
    have = {(r.source, r.item, r.episode) for r in rows}
    counts = {(r.source, r.item): r.episodes_in_item or 1 for r in rows}
    missing = []
    for source in sources:
        for item in source.items:
            episodes = range(counts.get((item.source, item.name), 1)) if item.kind == "bag" else [item.episode]
            missing += [f"{item.source}/{item.name}#{e}" for e in episodes if (item.source, item.name, e) not in have]
    if missing:
        raise AnnotateError(f"episodes without results: {', '.join(missing[:5])}; run again with the same --output")


def progress_path(output: Path, dataset: Dataset) -> Path:
    """Where a LeRobot dataset's RA-BC progress file goes."""
    return output / PROGRESS_DIR / f"{dataset.label.replace('/', '__')}.parquet"


def write_summary(output: Path, summary: dict, markdown: str) -> None:
    write_text_atomic(output / SUMMARY_JSON, json.dumps(json_safe(summary), indent=2) + "\n")
    write_text_atomic(output / SUMMARY_MD, markdown)
