"""Reading LeRobot v3 datasets directly.

A LeRobot v3 dataset is read with pyarrow (parquet) and PyAV (video), without LeRobot: LeRobot
and Ray's ``read_lerobot`` (which imports it) cannot install beside this package's dependencies.
The layout (``codebase_version`` v3.x):

- ``meta/info.json``: ``fps``, ``features`` (a ``dtype: video`` feature is a camera stored in mp4
  files, a ``dtype: image`` one is stored in the data parquet), and the path templates
  ``data_path`` and ``video_path``;
- ``meta/episodes/chunk-*/file-*.parquet``: one row per episode: ``episode_index``, ``length``,
  ``dataset_from_index`` / ``dataset_to_index`` (global frame indices), ``data/chunk_index``,
  ``data/file_index`` and per camera ``videos/KEY/chunk_index``, ``videos/KEY/file_index``,
  ``videos/KEY/from_timestamp`` and ``videos/KEY/to_timestamp``: many episodes share one mp4 and
  an episode is the span from its ``from_timestamp``;
- ``meta/tasks.parquet``: the task strings (the pandas index, stored as a column) and their
  ``task_index``; every data row carries its ``task_index``;
- ``data/chunk-*/file-*.parquet``: one row per frame with ``index`` (global), ``episode_index``,
  ``frame_index``, ``timestamp``, ``task_index``.

An episode's frames are timed by their presentation timestamps in its video (``sources.video``, PyAV, which
decodes the AV1 LeRobot records by default), and at ``j / fps`` for frame ``j`` in a dataset without videos.
Only the frames the sampler keeps are converted to RGB.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import TopRewardError
from ..stream.camera_sync import tile
from ..stream.episode import Episode
from ..stream.sampler import FrameSampler
from .video import DecodedVideo, VideoError, decode_video

INFO = "meta/info.json"
TASKS = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DEFAULT_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
FRAME_COLUMNS = ("index", "episode_index", "frame_index")


class LeRobotError(TopRewardError, ValueError):
    """A LeRobot dataset that cannot be read as a whole (bad or missing metadata)."""


@dataclasses.dataclass(frozen=True)
class CameraClip:
    """One camera's part of a shared mp4: the frames from ``from_timestamp`` on."""

    key: str
    path: str              # relative to the dataset root
    from_timestamp: float
    to_timestamp: float


@dataclasses.dataclass(frozen=True)
class LeRobotEpisode:
    """What a worker needs to read one episode (paths and times, never frames)."""

    episode_index: int
    length: int                    # frames
    dataset_from_index: int        # global index of its first frame
    task: str | None               # None when the dataset gives it none
    error: str = ""                # why it cannot be scored, found in the metadata (its data file unreadable, a
                                   # task_index not in meta/tasks.parquet, an empty task)
    clips: tuple[CameraClip, ...] = ()   # video cameras
    image_keys: tuple[str, ...] = ()     # image cameras (bytes in the data parquet)
    data_path: str = ""                  # its data parquet, relative to the root


@dataclasses.dataclass
class LeRobotDataset:
    root: Path
    version: str
    fps: float
    cameras: list[str]
    episodes: list[LeRobotEpisode]
    data_files: list[str]          # every data parquet, relative to the root

    def frame_table(self):
        """``index``, ``episode_index``, ``frame_index`` of every frame of the dataset (pyarrow table, by index)."""
        import pyarrow as pa

        tables = [pa.table(_numbers(_read_parquet(self.root / name, FRAME_COLUMNS), FRAME_COLUMNS,
                                    str(self.root / name))) for name in self.data_files]
        table = pa.concat_tables(tables) if tables else pa.table({c: pa.array([], pa.int64()) for c in FRAME_COLUMNS})
        return table.sort_by("index")


def is_dataset(path: str | Path) -> bool:
    return (Path(path) / INFO).is_file()


def _read_parquet(path: Path, columns=None, schema_only: bool = False):
    """The table (``columns`` of it), or only its schema; a file pyarrow cannot read is a LeRobotError naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if schema_only:
            return pq.read_schema(path)
        return pq.read_table(path, columns=list(columns) if columns else None)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise LeRobotError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc


def _numbers(table, columns: Sequence[str], where: str) -> dict:
    """Columns as numbers (``*_timestamp`` float64, the rest int64); a value of another type, or none, is a
    LeRobotError: the file is corrupt or was edited by hand."""
    import pyarrow as pa

    values = {}
    for name in columns:
        try:
            column = table[name].cast(pa.float64() if name.endswith("_timestamp") else pa.int64())
        except (pa.ArrowException, ValueError) as exc:
            raise LeRobotError(f"{where}: column {name}: {' '.join(str(exc).split())}") from exc
        if column.null_count:
            raise LeRobotError(f"{where}: column {name} has empty values")
        values[name] = column
    return values


def _template(info: dict, key: str, default: str) -> str:
    value = info.get(key) or default
    if not isinstance(value, str):
        raise LeRobotError(f"meta/info.json: {key} must be a path template, got {value!r}")
    return value


def open_dataset(root: str | Path, cameras: Sequence[str] | None = None) -> LeRobotDataset:
    """The episodes of a LeRobot v3 dataset, with their tasks and the files they are in.

    ``cameras``: the feature keys scored (tiled side by side, in the order given); default every
    video feature (or, without videos, every image feature) in ``info.json`` order. Raises
    LeRobotError when the dataset as a whole cannot be read; a problem of one episode (a task
    missing from ``meta/tasks.parquet``) is recorded on that episode.
    """
    root = Path(root)
    try:
        info = json.loads((root / INFO).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LeRobotError(f"{root}: cannot read {INFO}: {' '.join(str(exc).split())}") from exc
    if not isinstance(info, dict):
        raise LeRobotError(f"{root}: {INFO} is not a JSON object")
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise LeRobotError(f"{root}: codebase_version {version or '(none)'} is not supported; only LeRobot v3 "
                           "datasets are read (convert older ones with LeRobot's v30 conversion script)")
    fps = info.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (math.isfinite(fps) and fps > 0):
        raise LeRobotError(f"{root}: {INFO} has no positive fps (got {fps!r})")
    features = info.get("features")
    if not isinstance(features, dict):
        raise LeRobotError(f"{root}: {INFO} has no features")
    videos = [k for k, v in features.items() if isinstance(v, dict) and v.get("dtype") == "video"]
    images = [k for k, v in features.items() if isinstance(v, dict) and v.get("dtype") == "image"]
    if cameras:
        unknown = [c for c in cameras if c not in videos and c not in images]
        if unknown:
            raise LeRobotError(f"{root}: no camera {', '.join(unknown)}; "
                               f"it has: {', '.join(videos + images) or 'none'}")
        chosen = list(cameras)
    else:
        chosen = videos or images
    if not chosen:
        raise LeRobotError(f"{root}: {INFO} declares no video or image feature to score")
    data_path = _template(info, "data_path", DEFAULT_DATA_PATH)
    video_path = _template(info, "video_path", DEFAULT_VIDEO_PATH) if any(c in videos for c in chosen) else ""

    episode_files = sorted((root / EPISODES_DIR).rglob("*.parquet"))
    if not episode_files:
        raise LeRobotError(f"{root}: no episode metadata ({EPISODES_DIR}/chunk-*/file-*.parquet)")
    import pyarrow as pa

    meta = pa.concat_tables([_read_parquet(p) for p in episode_files], promote_options="permissive")
    needed = ["episode_index", "dataset_from_index", "dataset_to_index", "data/chunk_index", "data/file_index"]
    for key in chosen:
        if key in videos:
            needed += [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    missing = [c for c in needed if c not in meta.column_names]
    if missing:
        raise LeRobotError(f"{root}: {EPISODES_DIR} has no column {', '.join(missing)}")
    columns = {name: column.to_pylist() for name, column in _numbers(meta, needed, f"{root}: {EPISODES_DIR}").items()}
    if "tasks" in meta.column_names:
        columns["tasks"] = meta["tasks"].to_pylist()
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]

    tasks = _tasks(root)
    data_files = sorted({data_path.format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
                         for r in rows})
    first_task, unreadable = _first_task_index(root, data_files)
    episodes = []
    for row in sorted(rows, key=lambda r: r["episode_index"]):
        index = int(row["episode_index"])
        episode_data = data_path.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
        task, error = None, ""
        if index in first_task:
            task_index = first_task[index]
            task = tasks.get(task_index)
            if task is None:
                error = f"task_index {task_index} is not in {TASKS}"
        elif row.get("tasks"):
            task = row["tasks"][0]
        if task is not None and not str(task).strip():
            task, error = None, "its task is empty"
        error = unreadable.get(episode_data, error)
        clips = tuple(CameraClip(key, video_path.format(video_key=key, chunk_index=row[f"videos/{key}/chunk_index"],
                                                        file_index=row[f"videos/{key}/file_index"]),
                                 float(row[f"videos/{key}/from_timestamp"]), float(row[f"videos/{key}/to_timestamp"]))
                      for key in chosen if key in videos)
        episodes.append(LeRobotEpisode(
            episode_index=index, length=int(row["dataset_to_index"]) - int(row["dataset_from_index"]),
            dataset_from_index=int(row["dataset_from_index"]), task=None if task is None else str(task).strip(),
            error=error, clips=clips, image_keys=tuple(k for k in chosen if k in images), data_path=episode_data))
    if not episodes:
        raise LeRobotError(f"{root}: the dataset has no episodes")
    return LeRobotDataset(root=root, version=version, fps=float(fps), cameras=chosen, episodes=episodes,
                          data_files=data_files)


def _tasks(root: Path) -> dict[int, str]:
    """task_index -> task, from meta/tasks.parquet (the task is the pandas index, stored as a column)."""
    path = root / TASKS
    if not path.is_file():
        raise LeRobotError(f"{root}: no {TASKS}")
    table = _read_parquet(path)
    if "task_index" not in table.column_names:
        raise LeRobotError(f"{path}: no task_index column")
    names = [c for c in table.column_names if c != "task_index"]
    pandas_meta = table.schema.pandas_metadata or {}
    index_columns = [c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)]
    column = next((c for c in ["task", *index_columns, "__index_level_0__", *names] if c in names), None)
    if column is None:
        raise LeRobotError(f"{path}: no task column beside task_index")
    return {i: str(t) for i, t in zip(_numbers(table, ["task_index"], str(path))["task_index"].to_pylist(),
                                      table[column].to_pylist()) if t is not None}


def _first_task_index(root: Path, data_files: list[str]) -> tuple[dict[int, int], dict[str, str]]:
    """episode_index -> task_index of its first frame (none from a file without task_index), and the data files
    that cannot be read -> why: their episodes fail, the others are scored."""
    first: dict[int, tuple[int, int]] = {}
    unreadable: dict[str, str] = {}
    for name in data_files:
        path = root / name
        if not path.is_file():
            unreadable[name] = f"its data file {path} is missing"
            continue
        try:
            if "task_index" not in _read_parquet(path, schema_only=True).names:
                continue
            columns = ["episode_index", "frame_index", "task_index"]
            table = _numbers(_read_parquet(path, columns), columns, str(path))
        except LeRobotError as exc:
            unreadable[name] = str(exc)
            continue
        for episode, frame, task in zip(*(column.to_pylist() for column in table.values())):
            if episode not in first or frame < first[episode][0]:
                first[episode] = (frame, task)
    return {episode: task for episode, (_, task) in first.items()}, unreadable


def read_episode(root: str | Path, episode: LeRobotEpisode, fps: float, sample_fps: float) -> Episode:
    """The episode's sampled frames (cameras tiled) with their times and frame indices, and its task ("" when the
    dataset gives it none).

    The first video camera is sampled by its frames' presentation times, from the episode's first frame; the
    other cameras give the frames of the same frame indices. Without videos, frame ``j`` is at ``j / fps``. Every
    camera must hold the episode's ``length`` frames from its ``from_timestamp``.
    """
    if episode.length <= 0:
        raise VideoError(f"episode {episode.episode_index} has no frames (length {episode.length})")
    sampler = FrameSampler(sample_fps)
    root = Path(root)
    if episode.clips:
        first = _decode_clip(root, episode, episode.clips[0], fps, lambda j, time: sampler.offer(time) is not None)
        wanted, times = first.numbers, first.times
        per_camera = [dict(zip(wanted, first.frames))]
        wanted_set = set(wanted)
        for clip in episode.clips[1:]:
            other = _decode_clip(root, episode, clip, fps, lambda j, time: j in wanted_set, count=wanted[-1] + 1)
            per_camera.append(dict(zip(other.numbers, other.frames)))
    else:
        wanted = [j for j in range(episode.length) if sampler.offer(j / fps) is not None]
        times, per_camera = [j / fps for j in wanted], []
    if episode.image_keys:
        per_camera += _image_frames(root, episode, wanted)
    return Episode(str(root), episode.episode_index, episode.task or "",
                   frames=[tile([camera[j] for camera in per_camera]) for j in wanted], times=times,
                   frame_indices=wanted, source_frames=episode.length)


def _decode_clip(root: Path, episode: LeRobotEpisode, clip: CameraClip, fps: float, keep,
                 count: int | None = None) -> DecodedVideo:
    """One camera's frames of an episode: those presented from its ``from_timestamp`` to its ``to_timestamp``
    (each less half a frame period, for rounding), all ``length`` of them unless ``count`` stops sooner."""
    half = 0.5 / fps
    what = f"{root / clip.path} ({clip.key})"
    video = decode_video(root / clip.path, keep, clip.from_timestamp - half, clip.to_timestamp - half,
                         count or episode.length, what)
    if not video.total:
        raise VideoError(f"{what}: no frames between {clip.from_timestamp:.3f} s and {clip.to_timestamp:.3f} s")
    if video.total < (count or episode.length):
        raise VideoError(f"{what}: {video.total} frames between {clip.from_timestamp:.3f} s and "
                         f"{clip.to_timestamp:.3f} s, expected {count or episode.length}")
    return video


def _image_frames(root: Path, episode: LeRobotEpisode, wanted: Sequence[int]) -> list[dict[int, np.ndarray]]:
    """Image features stored in the data parquet (a struct with PNG/JPEG ``bytes``), decoded with OpenCV."""
    import cv2
    import pyarrow.parquet as pq

    path = root / episode.data_path
    try:
        table = pq.read_table(path, columns=["episode_index", "frame_index", *episode.image_keys],
                              filters=[("episode_index", "==", episode.episode_index)])
    except Exception as exc:  # pyarrow raises several kinds; all mean the same here
        raise VideoError(f"{path}: cannot read images: {' '.join(str(exc).split())}") from exc
    row_of = {f: i for i, f in enumerate(table["frame_index"].to_pylist())}
    cameras = []
    for key in episode.image_keys:
        column, frames = table[key], {}
        for j in wanted:
            if j not in row_of:
                raise VideoError(f"{path}: episode {episode.episode_index} has no frame {j}")
            cell = column[row_of[j]].as_py()
            data = cell.get("bytes") if isinstance(cell, dict) else cell
            image = None if not data else cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise VideoError(f"{path}: {key} of frame {j} is not a readable image")
            frames[j] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        cameras.append(frames)
    return cameras
