"""LeRobot's RA-BC progress file, written per LeRobot dataset from a run's frame table.

LeRobot's sample weighting (``SampleWeightingConfig(type="rabc", progress_path=...)``) reads a parquet with
``index`` (the dataset's global frame index), ``episode_index`` and ``progress_sparse`` (float32, in [0, 1]).
It weights a frame it does not find, or a NaN, as 1.0: a progress file covers every frame of the dataset, or
is not written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..sources.collections import Dataset
from ..sources.lerobot import LeRobotError
from .annotation_records import EpisodeRow, write_table
from .metrics import min_max_progress

RABC_MODES = ("causal", "episode")


def write_progress(path: Path, dataset: Dataset, frames, rows: list[EpisodeRow], mode: str, model: str) -> dict:
    """The dataset's progress file at ``path``, from ``frames`` (the run's frame table). Between sampled frames:
    ``causal``, the causal progress of the latest sampled frame (what the node published then, step-held);
    ``episode``, the episode's min-max normalised scores interpolated linearly (LeRobot's own TOPReward port).
    Not written (and a previous one removed) when an episode of the dataset failed. Returns its summary entry."""
    import pyarrow as pa
    import pyarrow.compute as pc

    entry = {"dataset": dataset.label, "root": str(dataset.dataset.root), "mode": mode}
    mine = {r.episode: r for r in rows if r.source == dataset.source and r.item == dataset.name}
    failed = sorted(e for e, r in mine.items() if r.failed)
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
        for column, value in zip(points[episode], (index, prog, score)):
            column.append(value)
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
        if mode == "causal":
            held = np.searchsorted(index, frame_of[at], side="right") - 1
            values[at] = prog[np.clip(held, 0, len(prog) - 1)]
        else:
            values[at] = np.interp(frame_of[at], index, min_max_progress(list(score)))
    progress = pa.table({"index": table["index"], "episode_index": table["episode_index"],
                         "frame_index": table["frame_index"],
                         "progress_sparse": pa.array(np.clip(values, 0.0, 1.0).astype(np.float32))})
    progress = progress.replace_schema_metadata({b"vlm_name": model.encode(), b"topreward.mode": mode.encode(),
                                                 b"topreward.dataset": str(dataset.dataset.root).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(path, progress)
    return {**entry, "path": str(path), "frames": len(progress)}
