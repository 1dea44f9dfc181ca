"""Reading LeRobot v3 datasets directly, and video files with PyAV.

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

Frame ``j`` of an episode is at ``j / fps`` seconds. Only the frames the sampler keeps are
converted to RGB. Videos are decoded with PyAV, whose wheel bundles dav1d: LeRobot records AV1 by
default, which OpenCV's FFmpeg build cannot decode.
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
from ..stream.sampler import FrameSampler

INFO = "meta/info.json"
TASKS = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DEFAULT_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
FRAME_COLUMNS = ("index", "episode_index", "frame_index")


class LeRobotError(TopRewardError, ValueError):
    """A LeRobot dataset that cannot be read as a whole (bad or missing metadata)."""


class VideoDecodeError(TopRewardError, ValueError):
    """A video (or an episode's part of it) that cannot be decoded."""


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


def sampled_indices(length: int, fps: float, sample_fps: float) -> list[int]:
    """Frames of an episode the sampler keeps (frame j at j / fps)."""
    sampler = FrameSampler(sample_fps)
    return [j for j in range(length) if sampler.offer(j / fps) is not None]


def read_episode(root: str | Path, episode: LeRobotEpisode, fps: float, sample_fps: float
                 ) -> tuple[list[np.ndarray], list[float], list[int]]:
    """The sampled frames of an episode (cameras tiled), their times and frame indices."""
    if episode.length <= 0:
        raise VideoDecodeError(f"episode {episode.episode_index} has no frames (length {episode.length})")
    wanted = sampled_indices(episode.length, fps, sample_fps)
    per_camera = [decode_clip(Path(root) / clip.path, clip.from_timestamp, episode.length, fps, wanted, clip.key)
                  for clip in episode.clips]
    if episode.image_keys:
        per_camera += _image_frames(Path(root), episode, wanted)
    frames = [tile([camera[j] for camera in per_camera]) for j in wanted]
    return frames, [j / fps for j in wanted], wanted


def decode_clip(path: Path, start: float, length: int, fps: float, wanted: Sequence[int], key: str = ""
                ) -> dict[int, np.ndarray]:
    """RGB frames ``wanted`` (indices j: the frame at ``start + j / fps``) of a video. Every wanted frame must be
    found within half a frame period of its time."""
    import av
    import av.error

    what = f"{path}" + (f" ({key})" if key else "")
    if not path.is_file():
        raise VideoDecodeError(f"{what}: no such video file")
    wanted_set, found = set(wanted), {}
    half = 0.5 / fps
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{what}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = decoder_threads(av)
            if start > half and stream.time_base:
                container.seek(int((start - half) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                j = round((frame.time - start) * fps)
                if frame.time < start - half:
                    continue
                if j >= length:
                    break
                if j in wanted_set and j not in found:
                    found[j] = frame.to_ndarray(format="rgb24")
                    if len(found) == len(wanted_set):
                        break
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(f"{what}: cannot decode: {_reason(exc)}") from exc
    if not found:
        raise VideoDecodeError(f"{what}: no frames between {start:.3f} s and {start + length / fps:.3f} s")
    missing = [j for j in wanted if j not in found]
    if missing:
        raise VideoDecodeError(f"{what}: no frame at {start + missing[0] / fps:.3f} s "
                               f"({len(missing)} of {len(wanted)} sampled frames missing)")
    return found


def decoder_threads(av) -> str:
    """PyAV's thread_type for decoding. Before PyAV 13, FFmpeg's log messages go through Python: frame threads
    then need the GIL while a container is closed holding it, and a container the garbage collector closed
    after an early end of decoding hung for good (seen with PyAV 12 in the lowest tested set). Slice threads
    are idle between decode calls, so they are used there; frame threads from PyAV 13 on."""
    return "AUTO" if int(av.__version__.split(".")[0]) >= 13 else "SLICE"


def _reason(exc: Exception) -> str:
    """PyAV's message without the errno and the file name (the caller names the file)."""
    return " ".join(str(getattr(exc, "strerror", None) or exc).split())


def _image_frames(root: Path, episode: LeRobotEpisode, wanted: Sequence[int]) -> list[dict[int, np.ndarray]]:
    """Image features stored in the data parquet (a struct with PNG/JPEG ``bytes``), decoded with OpenCV."""
    import cv2
    import pyarrow.parquet as pq

    path = root / episode.data_path
    try:
        table = pq.read_table(path, columns=["episode_index", "frame_index", *episode.image_keys],
                              filters=[("episode_index", "==", episode.episode_index)])
    except Exception as exc:  # pyarrow raises several kinds; all mean the same here
        raise VideoDecodeError(f"{path}: cannot read images: {' '.join(str(exc).split())}") from exc
    row_of = {f: i for i, f in enumerate(table["frame_index"].to_pylist())}
    cameras = []
    for key in episode.image_keys:
        column, frames = table[key], {}
        for j in wanted:
            if j not in row_of:
                raise VideoDecodeError(f"{path}: episode {episode.episode_index} has no frame {j}")
            cell = column[row_of[j]].as_py()
            data = cell.get("bytes") if isinstance(cell, dict) else cell
            image = None if not data else cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise VideoDecodeError(f"{path}: {key} of frame {j} is not a readable image")
            frames[j] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        cameras.append(frames)
    return cameras


def read_video(path: str | Path, sample_fps: float) -> tuple[list[np.ndarray], list[float], list[int], int]:
    """A whole video file as one episode: the frames the sampler keeps (by presentation time from the first frame),
    their times, their frame numbers in decoding order, and the number of frames in the file."""
    import av
    import av.error

    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"{path}: no such video file")
    sampler = FrameSampler(sample_fps)
    frames, times, numbers = [], [], []
    first, total = None, 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = decoder_threads(av)
            for number, frame in enumerate(container.decode(stream)):
                total = number + 1
                if frame.time is None:
                    continue
                first = frame.time if first is None else first
                t = sampler.offer(frame.time - first)
                if t is not None:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    times.append(t)
                    numbers.append(number)
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(f"{path}: cannot decode: {_reason(exc)}") from exc
    if not frames:
        raise VideoDecodeError(f"{path}: no frames could be read")
    return frames, times, numbers, total
