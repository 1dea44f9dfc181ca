"""Scoring whole collections (bag trees, LeRobot datasets, video folders), in this process or on a Ray cluster.

Every episode is scored through the node's reward stream, one update per sampled frame (exactly what the
node publishes for those frames, ``bag_eval.run_episode``), and its static-video control (the first frame
repeated at the same times). Work is handed out as small descriptors (an ``Item`` and an episode number):
the worker reads the frames itself, so a Ray cluster never ships frames around.

A run's output folder::

    run.json              what is scored and how (a rerun must match it: it resumes)
    parts/<id>.parquet    one file per finished episode, written by the driver as it arrives and renamed
                          into place (its per-frame rows; the per-episode row in the file's metadata)
    frames.parquet        per-frame table, assembled from the parts at the end
    episodes.parquet      per-episode table
    progress/<dataset>.parquet   per LeRobot dataset: RA-BC progress for every frame of the dataset
    summary.json, summary.md

A run killed at any point and started again with the same output folder scores only the episodes without
a part: none is recomputed, lost or duplicated (a part's name is a hash of the episode's identity). A worker
that dies is replaced and its episode retried, up to ``max_attempts`` times; then the episode is recorded as
failed with the reason. Bad input (an unreadable bag, a corrupt video, an episode without frames or without a
task) is recorded on its episode and the run goes on.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import os
import socket
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import TopRewardError
from ..method.engine import DEFAULT_MAX_FRAMES, StreamingEngine
from ..method.model import ModelConfig, load_reward_model
from ..method.scoring import ScoringConfig
from ..sources import lerobot
from ..sources.bags import read_episodes
from ..sources.collections import Dataset, Item, Source, part_name
from ..stream.episode_stream import DEFAULT_CAMERA_SLOP, DEFAULT_MAX_GAP, DEFAULT_SAMPLE_FPS
from ..stream.online import DEFAULT_SUCCESS_CONSECUTIVE, DEFAULT_SUCCESS_THRESHOLD
from ..stream.reward_stream import RewardStream
from .bag_eval import run_episode
from .metrics import format_voc, min_max_progress
from .report import OutputError, atomic_path, json_safe, write_text_atomic

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
DEFAULT_MAX_ATTEMPTS = 3
PART_META = b"topreward.episode"
VOC_BINS = np.linspace(-1.0, 1.0, 11)


class AnnotateError(TopRewardError):
    """A run that cannot start as asked (its output folder, its workers)."""


# ----------------------------------------------------------------------------------------------- settings

@dataclasses.dataclass(frozen=True)
class BagOptions:
    """How bags are read and split: topreward-eval-bag's options."""

    image_topics: tuple[str, ...] = ("/camera/image_raw",)
    split: str = "bag"
    marker_topic: str | None = "/episode"
    max_gap: float = DEFAULT_MAX_GAP       # the stamp gap that starts an episode (--gap with split=gap)
    camera_slop: float = DEFAULT_CAMERA_SLOP


@dataclasses.dataclass(frozen=True)
class AnnotateSettings:
    """Everything that decides the scores; picklable, sent to every worker."""

    model: ModelConfig
    scoring: ScoringConfig
    max_frames: int = DEFAULT_MAX_FRAMES
    sample_fps: float = DEFAULT_SAMPLE_FPS
    reward_type: str = "logprob"
    success_threshold: float = DEFAULT_SUCCESS_THRESHOLD
    success_consecutive: int = DEFAULT_SUCCESS_CONSECUTIVE
    task: str | None = None                              # default task: videos, bag episodes without a marker
    listed_tasks: tuple[tuple[int, str], ...] = ()       # bag episode -> task (--episodes-yaml), every bag
    bag: BagOptions = BagOptions()
    cameras: tuple[str, ...] = ()                         # LeRobot camera keys (default: every camera)

    def fingerprint(self) -> dict:
        """What a resumed run must share with the run it continues (the device may differ)."""
        return json_safe({
            "model": self.model.model, "dtype": self.model.dtype, "quantization": self.model.quantization,
            "prompts": list(self.scoring.prompts), "contrastive": self.scoring.contrastive,
            "role_markers": self.scoring.role_markers, "resolution": list(self.scoring.resolution),
            "max_frames": self.max_frames, "sample_fps": self.sample_fps, "reward_type": self.reward_type,
            "success_threshold": self.success_threshold, "success_consecutive": self.success_consecutive,
            "task": self.task, "listed_tasks": [list(p) for p in self.listed_tasks],
            "bag": {**dataclasses.asdict(self.bag), "image_topics": list(self.bag.image_topics)},
            "cameras": list(self.cameras)})


@dataclasses.dataclass
class Job:
    """One episode to score: ``episode`` is the bag's episode number, the LeRobot episode_index, or 0."""

    item: Item
    episode: int
    attempts: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def key(self) -> str:
        return part_name(self.item.source, self.item.name, self.episode)


@dataclasses.dataclass
class Outcome:
    """One scored (or failed) episode: its row of the episode table and its per-frame columns."""

    row: dict
    frames: dict[str, list] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.row["status"] != "ok"


@dataclasses.dataclass
class JobResult:
    outcome: Outcome
    episodes_in_item: int | None = None   # a bag: how many episodes it has (None when it could not be read)


# ----------------------------------------------------------------------------------------------- the worker

class Annotator:
    """Reads and scores episodes; one model, one reward stream. Runs in the driver or in a Ray actor."""

    def __init__(self, settings: AnnotateSettings, reward_model=None):
        self.settings = settings
        self.reward_model = reward_model if reward_model is not None else load_reward_model(settings.model)
        self.rewards = RewardStream(StreamingEngine(self.reward_model, settings.scoring, settings.max_frames),
                                    settings.reward_type, settings.success_threshold, settings.success_consecutive)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._bag: tuple[str, object] | None = None   # (path, BagEpisodes or the error reading it): the last bag

    def run(self, job: Job) -> JobResult:
        item, start = job.item, time.perf_counter()
        row = {"source": item.source, "item": item.name, "kind": item.kind, "path": item.path,
               "episode": job.episode, "episodes_in_item": 1, "task": None, "source_frames": None}
        episodes_in_item = None
        try:
            if item.kind == "bag":
                bag = self._read_bag(item.path)
                episodes_in_item = row["episodes_in_item"] = len(bag.episodes)
                if job.episode >= len(bag.episodes):
                    raise TopRewardError(f"the bag has {len(bag.episodes)} episodes, not {job.episode + 1}")
                episode = bag.episodes[job.episode]
                row["task"] = self._bag_task(job.episode, episode.marker_task)
                self._need_task(row["task"], "no task: pass --task, or record a String marker carrying it")
                frames, times, stamps, indices = episode.frames, episode.times, episode.stamps, None
            elif item.kind == "video":
                row["task"] = self.settings.task
                self._need_task(row["task"], "no task: pass --task")
                frames, times, indices, row["source_frames"] = lerobot.read_video(item.path, self.settings.sample_fps)
                stamps = None
            elif item.kind == "lerobot":
                episode = item.lerobot
                row["source_frames"] = episode.length
                if episode.task_error:  # broken task data is an error, not a reason to use --task
                    raise TopRewardError(episode.task_error)
                row["task"] = episode.task or self.settings.task
                self._need_task(row["task"], "no task: the dataset has none for this episode; pass --task")
                frames, times, indices = lerobot.read_episode(item.path, episode, item.fps, self.settings.sample_fps)
                stamps = None
            else:
                raise TopRewardError(f"unknown item kind {item.kind!r}")
            if not frames:
                raise TopRewardError("the episode has no frames")
            curve = run_episode(self.rewards, frames, times, row["task"], stamps)
            static = run_episode(self.rewards, [frames[0]] * len(frames), times, row["task"])
        except Exception as exc:  # noqa: BLE001 - bad input of any kind is recorded on its episode, never stops the run
            message = str(exc) if isinstance(exc, TopRewardError) else f"{type(exc).__name__}: {exc}"
            row.update(_failed_row(" ".join(message.split()) or type(exc).__name__, time.perf_counter() - start),
                       worker=self.worker)
            return JobResult(Outcome(row), episodes_in_item)
        updates = curve.updates
        row.update(status="ok", error="", frames=len(updates), duration_s=times[-1], voc=_defined(curve.voc),
                   static_voc=_defined(static.voc), final_score=updates[-1].score, final_progress=updates[-1].progress,
                   success=updates[-1].success, wall_seconds=time.perf_counter() - start, worker=self.worker)
        frames_columns = {
            "frame": list(range(len(updates))),
            "frame_index": list(indices) if indices is not None else [None] * len(updates),
            "time": [u.time for u in updates],
            "stamp": [u.stamp for u in updates] if stamps is not None else [None] * len(updates),
            "score": [u.score for u in updates], "reward": [u.reward for u in updates],
            "progress": [u.progress for u in updates], "success": [u.success for u in updates],
            "logp_true": [list(u.true_logprobs) for u in updates],
            "logp_false": [list(u.false_logprobs) for u in updates],
            "static_score": list(static.values),
            "model_frames": [u.frames for u in updates], "stride": [u.stride for u in updates]}
        return JobResult(Outcome(row, frames_columns), episodes_in_item)

    def _read_bag(self, path: str):
        if self._bag is None or self._bag[0] != path:
            self._bag = None  # free the previous bag's frames first
            options = self.settings.bag
            try:
                read = read_episodes(path, list(options.image_topics), self.settings.sample_fps, split=options.split,
                                     marker_topic=options.marker_topic, max_gap=options.max_gap,
                                     camera_slop=options.camera_slop)
            except Exception as exc:  # noqa: BLE001 - cached like a good read: the bag's other episodes fail alike
                read = exc
            self._bag = (path, read)
        if isinstance(self._bag[1], Exception):
            raise self._bag[1]
        return self._bag[1]

    def _bag_task(self, index: int, marker_task: str | None) -> str | None:
        task = dict(self.settings.listed_tasks).get(index) or marker_task or self.settings.task
        return task.strip() if task and task.strip() else None

    @staticmethod
    def _need_task(task: str | None, reason: str) -> None:
        if not task:
            raise TopRewardError(reason)


def _defined(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _failed_row(error: str, seconds: float) -> dict:
    return {"status": "failed", "error": error, "frames": 0, "duration_s": None, "voc": None, "static_voc": None,
            "final_score": None, "final_progress": None, "success": None, "wall_seconds": seconds}


class AnnotateWorker:
    """The Ray actor: one loaded model. A model that cannot load is reported by ``ready()``, not raised."""

    def __init__(self, settings: AnnotateSettings, threads: int = 0):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.error = None
        self.annotator = None
        try:
            self.annotator = Annotator(settings)
        except TopRewardError as exc:
            self.error = str(exc)

    def ready(self) -> tuple[int, str, str | None]:
        return os.getpid(), socket.gethostname(), self.error

    def run(self, job: Job) -> JobResult:
        if self.annotator is None:
            raise AnnotateError(self.error)
        return self.annotator.run(job)


# ----------------------------------------------------------------------------------------------- pools

@dataclasses.dataclass
class Lost:
    """A job that did not come back: its worker died (replaced) or the call itself failed."""

    message: str
    worker_died: bool


class LocalPool:
    """One worker: this process."""

    size = 1
    description = "embedded (this process)"

    def __init__(self, annotator: Annotator):
        self.annotator = annotator
        self._done: collections.deque = collections.deque()

    def start(self) -> None:
        pass

    def submit(self, worker: int, job: Job) -> None:
        self._done.append((worker, job, self.annotator.run(job)))

    def wait(self):
        return self._done.popleft()

    def replace(self, worker: int) -> None:  # pragma: no cover - this process never dies and comes back
        pass

    def pid(self, worker: int) -> int:
        return os.getpid()

    def close(self) -> None:
        pass


class RayPool:
    """``workers`` Ray actors, each holding one loaded model; a dead one is replaced by a new one."""

    def __init__(self, settings: AnnotateSettings, address: str, workers: int | None = None,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float | None = None):
        self.settings, self.address = settings, address
        self.size, self.cpus, self.gpus = workers, cpus_per_worker, gpus_per_worker
        self.actors: list = []
        self._ready: list = []
        self._pids: dict[int, int] = {}
        self._inflight: dict = {}
        self._started_ray = False
        self.replaced = 0

    @property
    def description(self) -> str:
        return f"Ray ({self.address}), {self.size} workers x {self.cpus} CPU, {self.gpus} GPU"

    def start(self) -> None:
        """Connect (or start a local Ray with address ``local``), check the resources, start the actors and wait
        until each has loaded the model. Raises AnnotateError (before any work) when that fails."""
        try:
            import ray
        except ImportError as exc:
            raise AnnotateError("--ray-address needs Ray: pip install 'ray==2.60.0'") from exc
        self.ray = ray
        if not ray.is_initialized():
            try:
                if self.address == "local":
                    ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
                else:
                    ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
            except Exception as exc:  # noqa: BLE001 - ConnectionError, ValueError, RuntimeError ...
                raise AnnotateError(f"cannot connect to the Ray cluster at {self.address}: "
                                    f"{' '.join(str(exc).split())}") from exc
            self._started_ray = True
        resources = ray.cluster_resources()
        cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        if self.gpus is None:
            self.gpus = 1.0 if gpus >= 1 else 0.0
        if self.size is None:
            self.size = int(gpus // self.gpus) if self.gpus > 0 else int(cpus // self.cpus) if self.cpus > 0 else 1
        if self.size < 1 or self.size * self.cpus > cpus + 1e-9 or self.size * self.gpus > gpus + 1e-9:
            raise AnnotateError(f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs: {max(self.size, 1)} workers "
                                f"with {self.cpus:g} CPUs and {self.gpus:g} GPUs each do not fit")
        self._remote = ray.remote(AnnotateWorker)
        self.actors = [self._new_actor() for _ in range(self.size)]
        self._ready = [actor.ready.remote() for actor in self.actors]
        try:
            answers = ray.get(self._ready)
        except ray.exceptions.RayError as exc:
            self.close()
            raise AnnotateError(f"Ray workers could not start: {' '.join(str(exc).split())[:500]}") from exc
        for worker, (pid, _, error) in enumerate(answers):
            if error:
                self.close()
                raise AnnotateError(f"a Ray worker cannot load the model: {error}")
            self._pids[worker] = pid

    def _new_actor(self):
        return self._remote.options(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0).remote(
            self.settings, max(1, int(self.cpus)))

    def submit(self, worker: int, job: Job) -> None:
        self._inflight[self.actors[worker].run.remote(job)] = (worker, job)

    def wait(self):
        ready, _ = self.ray.wait(list(self._inflight), num_returns=1)
        worker, job = self._inflight.pop(ready[0])
        exceptions = self.ray.exceptions
        try:
            return worker, job, self.ray.get(ready[0])
        except (exceptions.RayActorError, exceptions.WorkerCrashedError, exceptions.ObjectLostError) as exc:
            return worker, job, Lost(f"worker {self._pids.get(worker, '?')} died: "
                                     f"{' '.join(str(exc).split())[:300]}", worker_died=True)
        except exceptions.RayError as exc:
            return worker, job, Lost(" ".join(str(exc).split())[:300], worker_died=False)

    def busy(self) -> list[int]:
        """The workers with a job in flight."""
        return [worker for worker, _ in self._inflight.values()]

    def replace(self, worker: int) -> None:
        self.replaced += 1
        self.ray.kill(self.actors[worker], no_restart=True)
        self.actors[worker] = self._new_actor()
        self._ready[worker] = self.actors[worker].ready.remote()
        self._pids.pop(worker, None)

    def pid(self, worker: int) -> int:
        """The process id of a worker's actor (waits until it has started)."""
        if worker not in self._pids:
            self._pids[worker] = self.ray.get(self._ready[worker])[0]
        return self._pids[worker]

    def close(self) -> None:
        if not hasattr(self, "ray"):
            return
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []
        if self._started_ray:
            self.ray.shutdown()
            self._started_ray = False


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
        ancestor = output.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise OutputError(f"--output {output}: cannot create it under {ancestor}")
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
    if not os.access(output, os.W_OK | os.X_OK):
        raise OutputError(f"--output {output} is not writable")
    return True


def _start_output(output: Path, record: dict) -> Path:
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


def write_part(parts: Path, outcome: Outcome) -> Path:
    """One episode's file, renamed into place: a killed run leaves either the whole part or none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = outcome.row
    schema = _frames_schema()
    n = len(outcome.frames.get("frame", []))
    columns = {"source": [row["source"]] * n, "item": [row["item"]] * n, "episode": [row["episode"]] * n,
               **outcome.frames}
    table = pa.table({f.name: pa.array(columns.get(f.name, [None] * n), f.type) for f in schema}, schema=schema)
    table = table.replace_schema_metadata({PART_META: json.dumps(json_safe(row)).encode()})
    path = parts / f"{part_name(row['source'], row['item'], row['episode'])}.parquet"
    try:
        with atomic_path(path) as temporary:
            pq.write_table(table, temporary)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc
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


# ----------------------------------------------------------------------------------------------- the run

@dataclasses.dataclass
class RunResult:
    summary: dict
    output: Path

    @property
    def failed(self) -> int:
        return self.summary["failed"]


def annotate(sources: Sequence[Source], settings: AnnotateSettings, output: str | Path, pool, *,
             max_attempts: int = DEFAULT_MAX_ATTEMPTS, retry_failed: bool = False, rabc: str = "causal",
             show_progress: bool = True, after_part: Callable | None = None, run_info: dict | None = None
             ) -> RunResult:
    """Score every episode of ``sources`` not already in ``output`` with ``pool`` (started), then assemble the
    tables. ``after_part(path, outcome, pool)`` is called after each part is written (tests use it)."""
    from tqdm import tqdm

    if rabc not in RABC_MODES:
        raise AnnotateError(f"unknown RA-BC progress mode {rabc!r}: use {', '.join(RABC_MODES)}")
    output = Path(os.path.abspath(output))
    record = run_record(sources, settings)
    check_output(output, record)
    parts = _start_output(output, record)
    done = read_part_rows(parts)
    if retry_failed:
        done = {key: row for key, row in done.items() if row.get("status") == "ok"}
    resumed = len(done)

    queue: collections.deque[Job] = collections.deque()
    queued: set[str] = set()
    expected: dict[str, int] = {}      # bag group -> episodes counted in the bar's total

    def enqueue(item: Item, episode: int, front: bool = False) -> None:
        job = Job(item, episode)
        if job.key in done or job.key in queued:
            return
        queued.add(job.key)
        (queue.appendleft if front else queue.append)(job)

    for source in sources:
        for item in source.items:
            if item.kind != "bag":
                enqueue(item, item.episode)
                continue
            known = [row for row in done.values() if row["source"] == item.source and row["item"] == item.name]
            count = max((row.get("episodes_in_item") or 1 for row in known), default=None)
            expected[item.group] = count or 1
            for episode in range(count or 1):
                enqueue(item, episode)
    total = resumed + len(queue)

    bar = tqdm(total=total, initial=resumed, desc="episodes", unit="episode", disable=not show_progress,
               dynamic_ncols=True)
    started, completed, failures = time.perf_counter(), 0, sum(r.get("status") != "ok" for r in done.values())
    busy: dict[int, Job] = {}
    cache: dict[int, str] = {}

    def record_outcome(outcome: Outcome, job: Job, attempts: int) -> None:
        nonlocal completed, failures
        outcome.row["attempts"] = attempts
        path = write_part(parts, outcome)
        done[path.stem] = outcome.row
        queued.discard(job.key)
        completed += 1
        failures += outcome.failed
        rate = completed / max(time.perf_counter() - started, 1e-9) * 3600
        bar.set_postfix_str(f"{rate:.0f} episodes/h, {failures} failed", refresh=False)
        bar.update(1)
        if after_part is not None:
            after_part(path, outcome, pool)

    try:
        while queue or busy:
            for worker in range(pool.size):
                if worker in busy or not queue:
                    continue
                job = _pick(queue, cache.get(worker))
                busy[worker] = job
                cache[worker] = job.item.group
                pool.submit(worker, job)
            worker, job, result = pool.wait()
            del busy[worker]
            if isinstance(result, Lost):
                if result.worker_died:
                    pool.replace(worker)
                    cache.pop(worker, None)
                job.attempts += 1
                job.errors.append(result.message)
                if job.attempts < max_attempts:
                    queue.appendleft(job)
                    continue
                row = {"source": job.item.source, "item": job.item.name, "kind": job.item.kind,
                       "path": job.item.path, "episode": job.episode, "episodes_in_item": 1,
                       "task": None, "source_frames": None, "worker": None,
                       **_failed_row(f"gave up after {job.attempts} attempts: {result.message}", 0.0)}
                record_outcome(Outcome(row), job, job.attempts)
                continue
            record_outcome(result.outcome, job, job.attempts + 1)
            if result.episodes_in_item is not None and job.item.kind == "bag":
                group = job.item.group
                if result.episodes_in_item > expected.get(group, 1):
                    bar.total += result.episodes_in_item - expected.get(group, 1)
                    expected[group] = result.episodes_in_item
                    bar.refresh()
                for episode in reversed(range(result.episodes_in_item)):  # next: the same worker, its bag cached
                    enqueue(job.item, episode, front=True)
    finally:
        bar.close()
    wall = time.perf_counter() - started
    info = {"this_run_episodes": completed, "resumed_episodes": resumed, "wall_seconds": wall,
            "episodes_per_hour": completed / wall * 3600 if wall > 0 and completed else None,
            "execution": getattr(pool, "description", ""), "workers_replaced": getattr(pool, "replaced", 0),
            **(run_info or {})}
    summary = assemble(output, sources, settings, rabc, info)
    return RunResult(summary, output)


def _pick(queue: collections.deque, cached: str | None) -> Job:
    """The first job reading what the worker read last (a bag's frames stay in its memory), else the first."""
    if cached is not None:
        for i, job in enumerate(queue):
            if job.item.group == cached:
                del queue[i]
                return job
    return queue.popleft()


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


def _write_parquet(path: Path, table) -> None:
    import pyarrow.parquet as pq

    try:
        with atomic_path(path) as temporary:
            pq.write_table(table, temporary)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc


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
    table = dataset.dataset.frame_table()
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
    progress = progress.replace_schema_metadata({b"vlm_name": settings.model.model.encode(),
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
