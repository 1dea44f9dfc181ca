"""topreward-annotate: bag trees, LeRobot v3 datasets and video folders, in one process and on a local Ray cluster
started by the tests; resumable (a killed driver), fault tolerant (a killed worker), bad input recorded per episode.

Light on purpose (about 2 minutes): the tiny model, 64x64 frames, seven episodes of three or four frames.
"""

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import av
import pyarrow as pa
import pyarrow.parquet as pq

from topreward_ros.evaluation.annotate import annotate
from topreward_ros.evaluation.episode_annotator import (CPU_BATCH_EPISODES, GPU_BATCH_EPISODES, Annotator,
                                                         default_batch_episodes)
from topreward_ros.evaluation.worker_pool import LocalPool, RayPool
from topreward_ros.method.sessions import session_cache_bytes
from topreward_ros.sources.collections import find_sources
from topreward_ros.synthetic.scene import render_scene
from topreward_ros.tools.annotate import build_parser, main, annotate_settings
from topreward_ros.tools.make_sample_bag import DEFAULT_TASK

from test_eval_video import BIN, run_tool
from videos import write_video

pytestmark = pytest.mark.ray
os.environ.setdefault("SVT_LOG", "1")  # the AV1 encoder: errors only (its child processes inherit it)

FPS = 10


def _encoder(*names: str) -> str:
    for name in names:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - UnknownCodecError, by version
            continue
    return names[-1]


# AV1 as LeRobot records it (SVT-AV1 in newer PyAV wheels, libaom in older ones), and H.264
CAMERAS = {"observation.images.top": _encoder("libsvtav1", "libaom-av1", "libx264"),
           "observation.images.wrist": "libx264"}
TASKS = ["put the red block in the bowl", "lift the red block"]
VOLATILE = {"wall_seconds", "worker", "attempts", "path"}  # episode columns that differ between equal runs


# ------------------------------------------------------------------------------------------ a LeRobot v3 dataset

def write_lerobot(root: Path, episodes: list[dict], tasks=TASKS) -> Path:
    """A LeRobot v3 dataset in the documented layout. ``episodes``: dicts with ``length``, ``task_index``,
    ``file`` (the data and video file index: episodes of one file share its mp4) and optionally ``shift``
    (seconds added to its from_timestamp, to point it past its video) and ``times`` (its frames' times in
    seconds, in ms, default ``j / FPS``: uneven times make the videos of its file variable-frame-rate, each
    episode starting one period after the previous one's last frame)."""
    info = {"codebase_version": "v3.0", "robot_type": "test", "fps": FPS, "total_episodes": len(episodes),
            "total_frames": sum(e["length"] for e in episodes), "total_tasks": len(tasks), "chunks_size": 1000,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": {**{key: {"dtype": "video", "shape": [48, 64, 3], "names": ["height", "width", "channels"]}
                            for key in CAMERAS},
                         "action": {"dtype": "float32", "shape": [2], "names": None},
                         **{k: {"dtype": "int64", "shape": [1], "names": None}
                            for k in ("frame_index", "episode_index", "index", "task_index")},
                         "timestamp": {"dtype": "float32", "shape": [1], "names": None}}}
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    task_table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": tasks})
    pandas_meta = {"index_columns": ["task"], "columns": [], "pandas_version": "2.2.3"}  # as pandas writes its index
    pq.write_table(task_table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()}),
                   root / "meta" / "tasks.parquet")
    meta_rows, data_rows, video_frames, video_times = [], {}, {}, {}
    index = 0
    for number, episode in enumerate(episodes):
        file, length = episode["file"], episode["length"]
        times = episode.get("times", [j / FPS for j in range(length)])
        row = {"episode_index": number, "tasks": [tasks[episode["task_index"]] if episode["task_index"] < len(tasks)
                                                  else "?"], "length": length,
               "data/chunk_index": 0, "data/file_index": file, "dataset_from_index": index,
               "dataset_to_index": index + length, "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for camera_number, key in enumerate(CAMERAS):
            frames, file_times = video_frames.setdefault((key, file), []), video_times.setdefault((key, file), [])
            start = round(file_times[-1] + 1 / FPS, 3) if file_times else 0.0
            frames += [np.roll(render_scene((j / (length - 1)) * (1.0 - 0.3 * number), 64, 48), 4 * camera_number, 1)
                       for j in range(length)]
            file_times += [round(start + t, 3) for t in times]
            row.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": file,
                        f"videos/{key}/from_timestamp": start + episode.get("shift", 0.0),
                        f"videos/{key}/to_timestamp": start + times[-1] + 1 / FPS + episode.get("shift", 0.0)})
        meta_rows.append(row)
        rows = data_rows.setdefault(file, [])
        rows += [{"action": [0.1 * j, 0.0], "timestamp": times[j], "frame_index": j, "episode_index": number,
                  "index": index + j, "task_index": episode["task_index"]} for j in range(length)]
        index += length
    for file, rows in data_rows.items():
        path = root / info["data_path"].format(chunk_index=0, file_index=file)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(rows)
        pq.write_table(table.set_column(table.schema.get_field_index("timestamp"), "timestamp",
                                        table["timestamp"].cast(pa.float32())), path)
    uneven = any("times" in episode for episode in episodes)
    for (key, file), frames in video_frames.items():
        write_video(root / info["video_path"].format(video_key=key, chunk_index=0, file_index=file), frames, FPS,
                    CAMERAS[key], video_times[(key, file)] if uneven else None)
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(meta_rows), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    return root


# ------------------------------------------------------------------------------------------ fixtures

def make_bag(path: Path, storage: str, *progress: float) -> None:
    result = run_tool("topreward-make-sample-bag", str(path), "--storage", storage, "--progress",
                      *map(str, progress), "--seconds", "1.6", "--fps", "5", "--size", "64x48")
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """A tree (two bags: mcap with 2 episodes, sqlite3 with 1, deeper; one video) and a LeRobot v3 dataset of
    three episodes in two data files and two mp4 files per camera (episodes 0 and 1 share one)."""
    root = tmp_path_factory.mktemp("collection")
    tree = root / "robot-runs"
    make_bag(tree / "bags" / "day1", "mcap", 1.0, 0.5)
    make_bag(tree / "bags" / "older" / "day0", "sqlite3", 1.0)
    write_video(tree / "clips" / "clip.mp4", [render_scene(j / 14, 64, 48) for j in range(15)], FPS, "libx264")
    dataset = write_lerobot(root / "koch_pick", [{"length": 15, "task_index": 0, "file": 0},
                                                 {"length": 12, "task_index": 1, "file": 0},
                                                 {"length": 16, "task_index": 0, "file": 1}])
    return [tree, dataset]


def common_args(tiny_model_dir, *extra):
    return ["--split", "marker", "--task", DEFAULT_TASK, "--model", str(tiny_model_dir), "--resolution", "64x64",
            "--device", "cpu", "--dtype", "fp32", *extra]


EXPECTED = {("robot-runs", "bags/day1", 0): 3, ("robot-runs", "bags/day1", 1): 3,   # sampled frames per episode
            ("robot-runs", "bags/older/day0", 0): 3, ("robot-runs", "clips/clip.mp4", 0): 3,
            ("koch_pick", ".", 0): 3, ("koch_pick", ".", 1): 3, ("koch_pick", ".", 2): 4}


@pytest.fixture(scope="module")
def baseline(collection, tiny_model_dir, reward_model, tmp_path_factory):
    """The single-process run (in this process, with the session's model)."""
    args = build_parser().parse_args([*map(str, collection), "--output", "unused", *common_args(tiny_model_dir)])
    settings = annotate_settings(args)
    output = tmp_path_factory.mktemp("baseline") / "run"
    result = annotate(find_sources(collection), settings, output, LocalPool(Annotator(settings, reward_model)),
                      show_progress=False)
    assert result.summary["failed"] == 0, result.summary["failures"]
    return output


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster for the module (2 CPUs); yields its address for drivers in other processes."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


# ------------------------------------------------------------------------------------------ helpers

def actor_pids(pool: RayPool) -> list[int]:
    """Each worker's process id, asked of its actor (which answers once it is idle)."""
    import ray

    return [pid for pid, *_ in ray.get([actor.ready.remote() for actor in pool.actors])]


def table(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def assert_close(a, b, where):
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-4), where
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for x, y in zip(a, b):
            assert_close(x, y, where)
    elif isinstance(a, dict):  # a table row
        assert a.keys() == b.keys(), where
        for key in a:
            assert_close(a[key], b[key], f"{where} {key}")
    else:
        assert a == b, where


def assert_same_run(run: Path, reference: Path) -> None:
    """Every table equal (floats within 1e-4), in the same order; every episode exactly once."""
    for name, skip in (("episodes.parquet", VOLATILE), ("frames.parquet", set())):
        rows, expected = table(run / name), table(reference / name)
        assert len(rows) == len(expected), name
        for row, want in zip(rows, expected):
            for key in want:
                if key not in skip:
                    assert_close(row[key], want[key], f"{name} {key} {want['source']}/{want['item']}#{want['episode']}")
    episodes = table(run / "episodes.parquet")
    keys = [(r["source"], r["item"], r["episode"]) for r in episodes]
    assert len(keys) == len(set(keys)) == len(EXPECTED)
    for progress in sorted((reference / "progress").glob("*.parquet")):
        assert_close(table(run / "progress" / progress.name), table(progress), progress.name)
    assert len(list((run / "parts").glob("*.parquet"))) == len(EXPECTED)


# ------------------------------------------------------------------------------------------ tests

def test_single_process_scores_every_episode_and_writes_the_rabc_file(baseline, collection):
    episodes = table(baseline / "episodes.parquet")
    assert {(r["source"], r["item"], r["episode"]): r["frames"] for r in episodes} == EXPECTED
    assert all(r["status"] == "ok" and r["error"] == "" for r in episodes)
    assert {r["kind"] for r in episodes} == {"bag", "video", "lerobot"}
    lerobot = {r["episode"]: r for r in episodes if r["kind"] == "lerobot"}
    assert [lerobot[i]["task"] for i in range(3)] == [TASKS[0], TASKS[1], TASKS[0]]  # from tasks.parquet
    assert [lerobot[i]["source_frames"] for i in range(3)] == [15, 12, 16]
    for row in episodes:
        assert row["voc"] is None or -1 <= row["voc"] <= 1
        assert row["final_score"] < 0 and row["wall_seconds"] > 0 and row["attempts"] == 1

    frames = table(baseline / "frames.parquet")
    assert len(frames) == sum(EXPECTED.values()) == 22
    first = [f for f in frames if f["item"] == "bags/day1" and f["episode"] == 0]
    assert [f["frame"] for f in first] == [0, 1, 2] and first[0]["stamp"] == 1.7e9
    assert all(len(f["logp_true"]) == len(f["logp_false"]) == 1 and f["score"] == f["logp_true"][0] for f in frames)
    pick = [f for f in frames if f["source"] == "koch_pick" and f["episode"] == 2]
    assert [f["frame_index"] for f in pick] == [0, 5, 10, 15] and [f["time"] for f in pick] == [0.0, 0.5, 1.0, 1.5]

    # RA-BC: every frame of the dataset, its global index, float32 progress in [0, 1], step-held between samples
    progress = pq.read_table(baseline / "progress" / "koch_pick.parquet")
    assert progress.column_names[:4] == ["index", "episode_index", "frame_index", "progress_sparse"]
    assert progress.schema.field("progress_sparse").type == pa.float32()
    assert progress["index"].to_pylist() == list(range(15 + 12 + 16))
    assert progress["episode_index"].to_pylist() == [0] * 15 + [1] * 12 + [2] * 16
    assert progress["frame_index"].to_pylist() == list(range(15)) + list(range(12)) + list(range(16))
    values = progress["progress_sparse"].to_numpy()
    assert np.all((values >= 0) & (values <= 1)) and not np.isnan(values).any()
    sampled = {f["frame_index"]: f["progress"] for f in pick}
    for row in progress.to_pylist()[27:]:
        held = max(i for i in sampled if i <= row["frame_index"])
        assert row["progress_sparse"] == pytest.approx(sampled[held])
    summary = json.loads((baseline / "summary.json").read_text())
    assert summary["episodes"] == 7 and summary["failed"] == 0 and summary["voc"]["defined"] >= 1
    assert summary["progress_files"][0]["frames"] == 43
    assert "## Failures (0)" in (baseline / "summary.md").read_text()


def test_rabc_episode_mode_interpolates_the_min_max_normalised_scores(baseline, collection, tiny_model_dir, tmp_path):
    """A finished run is only reassembled (nothing scored): the other progress mode, LeRobot's port's."""
    run = tmp_path / "run"
    shutil.copytree(baseline, run)
    settings = annotate_settings(build_parser().parse_args([*map(str, collection), "--output", "x",
                                                  *common_args(tiny_model_dir)]))
    result = annotate(find_sources(collection), settings, run, LocalPool(None), rabc="episode", show_progress=False)
    assert result.summary["run"]["this_run_episodes"] == 0
    progress = table(run / "progress" / "koch_pick.parquet")
    assert len(progress) == 43
    frames = [f for f in table(run / "frames.parquet") if f["source"] == "koch_pick" and f["episode"] == 2]
    scores = np.array([f["score"] for f in frames])
    span = scores.max() - scores.min()
    normalised = (scores - scores.min()) / span if span else np.zeros_like(scores)
    values = [row["progress_sparse"] for row in progress[27:]]
    assert values == pytest.approx(np.interp(np.arange(16), [0, 5, 10, 15], normalised), abs=1e-6)


def test_batched_episodes_give_the_tables_of_one_at_a_time(collection, tiny_model_dir, reward_model, baseline,
                                                           tmp_path):
    """--batch-episodes 8: a worker scores up to 8 episodes and their static controls (16 sessions of one pool)
    in one forward per step; the tables equal those of one episode at a time."""
    args = build_parser().parse_args([*map(str, collection), "--output", "x", *common_args(tiny_model_dir),
                                "--batch-episodes", "8"])
    settings = annotate_settings(args)
    batches = []

    class RecordingPool(LocalPool):
        def submit(self, worker, jobs):
            batches.append(len(jobs))
            super().submit(worker, jobs)

    result = annotate(find_sources(collection), settings, tmp_path / "run",
                      RecordingPool(Annotator(settings, reward_model, args.batch_episodes)), show_progress=False)
    assert result.summary["failed"] == 0
    assert max(batches) > 2 and sum(batches) == len(EXPECTED)
    assert_same_run(tmp_path / "run", baseline)


def test_default_batch_fits_the_device(collection, tiny_model_dir, reward_model, monkeypatch):
    """CPU: the measured default. GPU (its free memory faked at the one call that reads it): as many episodes
    as fit, two full sessions each, held twice while batched, up to the cap."""
    settings = annotate_settings(build_parser().parse_args([*map(str, collection), "--output", "x",
                                                  *common_args(tiny_model_dir)]))
    assert Annotator(settings, reward_model).batch_episodes == CPU_BATCH_EPISODES
    on_gpu = dataclasses.replace(reward_model, device=torch.device("cuda"))
    episode = 4 * session_cache_bytes(reward_model.model.model.config.text_config, settings.reward.resolution,
                                      settings.reward.max_frames, reward_model.dtype)
    for free, expected in ((10**12, GPU_BATCH_EPISODES), (3 * episode, 2), (episode // 2, 1)):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device, free=free: (free, 2 * free))
        assert default_batch_episodes(on_gpu, settings) == expected


def test_ray_cluster_run_equals_the_single_process_run(ray_cluster, collection, tiny_model_dir, baseline, tmp_path):
    """The command as on a cluster: a driver in another process joins the cluster, two actors score."""
    out = tmp_path / "ray"
    result = run_tool("topreward-annotate", *map(str, collection), "--output", str(out),
                      *common_args(tiny_model_dir, "--ray-address", ray_cluster, "--workers", "2"))
    assert result.returncode == 0, result.stderr
    assert "7 episodes: 7 scored, 0 failed" in result.stdout
    assert "episodes/h" in result.stderr and "0 failed" in result.stderr  # the progress bar
    assert_same_run(out, baseline)
    assert len({r["worker"] for r in table(out / "episodes.parquet")}) == 2
    assert json.loads((out / "summary.json").read_text())["run"]["workers"] == 2


@pytest.mark.parametrize("batch", [1, 2])
def test_a_killed_worker_is_replaced_and_its_episode_retried(ray_cluster, collection, tiny_model_dir, baseline,
                                                             tmp_path, batch):
    """With batches, every episode of the killed worker's batch is retried."""
    settings = annotate_settings(build_parser().parse_args([*map(str, collection), "--output", "x",
                                                  *common_args(tiny_model_dir)]))
    pool = RayPool(settings, ray_cluster, workers=2, batch_episodes=batch)
    pool.start()
    pids = actor_pids(pool)
    killed = []

    def kill_a_busy_worker(path, outcome, pool):
        if not killed:  # the worker that did not give this result is still scoring its batch
            finished = int(outcome.row.worker.rsplit(":", 1)[1])
            killed.append(next(pid for pid in pids if pid != finished))
            os.kill(killed[0], signal.SIGKILL)

    try:
        result = annotate(find_sources(collection), settings, tmp_path / "run", pool, show_progress=False,
                          after_part=kill_a_busy_worker)
    finally:
        pool.close()
    assert killed and pool.replaced == 1
    assert result.summary["failed"] == 0 and result.summary["run"]["workers_replaced"] == 1
    episodes = table(tmp_path / "run" / "episodes.parquet")
    retried = sum(r["attempts"] == 2 for r in episodes)
    assert sorted(r["attempts"] for r in episodes) == [1] * (7 - retried) + [2] * retried
    assert 1 <= retried <= batch
    assert str(killed[0]) not in {r["worker"].split(":")[1] for r in episodes if r["attempts"] == 2}
    assert_same_run(tmp_path / "run", baseline)


def test_an_episode_whose_worker_keeps_dying_is_recorded_failed_with_the_reason(ray_cluster, collection,
                                                                              tiny_model_dir, baseline, tmp_path):
    """max_attempts bounds the retries. The dead worker's episode is the first bag's first: no worker read that
    bag, so the failure says its other episodes are not scored; a rerun with --retry-failed completes the run."""
    settings = annotate_settings(build_parser().parse_args([*map(str, collection), "--output", "x",
                                                  *common_args(tiny_model_dir)]))
    pool = RayPool(settings, ray_cluster, workers=2, batch_episodes=1)
    pool.start()
    dead = actor_pids(pool)[0]
    os.kill(dead, signal.SIGKILL)  # before the run: worker 0 takes the first job
    try:
        result = annotate(find_sources(collection), settings, tmp_path / "run", pool, max_attempts=1,
                          show_progress=False)
    finally:
        pool.close()
    assert result.summary["failed"] == 1 and pool.replaced == 1
    episodes = table(tmp_path / "run" / "episodes.parquet")
    failed = [r for r in episodes if r["status"] != "ok"]
    assert [(r["item"], r["episode"], r["attempts"]) for r in failed] == [("bags/day1", 0, 1)]
    assert failed[0]["error"].startswith(f"gave up after 1 attempts: worker {dead} died")
    assert "its other episodes, if any, are not scored" in failed[0]["error"]
    assert sorted((r["source"], r["item"], r["episode"]) for r in episodes if r["status"] == "ok") == sorted(
        key for key in EXPECTED if key[1] != "bags/day1")
    assert result.summary["failures"][0]["error"] == failed[0]["error"]

    rerun = run_tool("topreward-annotate", *map(str, collection), "--output", str(tmp_path / "run"),
                     "--retry-failed", *common_args(tiny_model_dir))
    assert rerun.returncode == 0, rerun.stderr
    assert_same_run(tmp_path / "run", baseline)


def test_a_hung_worker_is_replaced_and_its_episode_scored(ray_cluster, collection, tiny_model_dir, baseline, tmp_path):
    """The bag's storage file is a FIFO: opening it blocks until a writer comes, so the worker hangs inside the
    read (as on a stalled network file system) until the episode timeout. Once the worker is replaced, the real
    file takes the FIFO's place and the retried episode is scored. Extra attempts on a slow machine are allowed."""
    bag = tmp_path / "stalled"
    shutil.copytree(collection[0] / "bags" / "day1", bag)
    storage, real = bag / "day1.mcap", tmp_path / "day1.mcap"
    storage.rename(real)
    os.mkfifo(storage)
    settings = annotate_settings(build_parser().parse_args([str(bag), "--output", "x", *common_args(tiny_model_dir)]))
    pool = RayPool(settings, ray_cluster, workers=1, episode_timeout=10)
    pool.start()

    def restore_the_file_once_the_worker_is_replaced():
        deadline = time.monotonic() + 600
        while not pool.replaced and time.monotonic() < deadline:
            time.sleep(0.05)
        os.replace(real, storage)

    restorer = threading.Thread(target=restore_the_file_once_the_worker_is_replaced, daemon=True)
    restorer.start()
    try:
        result = annotate(find_sources([bag]), settings, tmp_path / "run", pool, max_attempts=5, show_progress=False)
    finally:
        pool.close()
        restorer.join(timeout=600)
    assert pool.replaced >= 1 and result.summary["failed"] == 0, result.summary["failures"]
    episodes = table(tmp_path / "run" / "episodes.parquet")
    assert [(r["episode"], r["status"]) for r in episodes] == [(0, "ok"), (1, "ok")]
    assert episodes[0]["attempts"] >= 2
    frames = table(tmp_path / "run" / "frames.parquet")
    expected = [f for f in table(baseline / "frames.parquet") if f["item"] == "bags/day1"]
    assert_close([f["score"] for f in frames], [f["score"] for f in expected], "scores")


def test_an_unreachable_cluster_is_one_error_line_within_the_bound(collection, tiny_model_dir, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_tool("topreward-annotate", str(collection[1]), "--output", str(tmp_path / "out"),
                      *common_args(tiny_model_dir, "--ray-address", f"127.0.0.1:{port}", "--ray-connect-timeout",
                                   "5"), timeout=120)  # Ray alone retries for many minutes
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"topreward-annotate: error: cannot connect to the Ray cluster at "
                                               f"127.0.0.1:{port}"), err
    assert not (tmp_path / "out").exists()


def test_an_address_that_answers_but_is_no_ray_cluster_ends_within_the_bound(collection, tiny_model_dir, tmp_path):
    """A port that accepts connections and says nothing: Ray would retry it for minutes; the run stops with an
    error after --ray-connect-timeout (stderr also carries Ray's own warnings)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts connections; nothing ever answers
        port = silent.getsockname()[1]
        result = run_tool("topreward-annotate", str(collection[1]), "--output", str(tmp_path / "out"),
                          *common_args(tiny_model_dir, "--ray-address", f"127.0.0.1:{port}",
                                       "--ray-connect-timeout", "3"), timeout=120)
    assert result.returncode == 2, result.stderr
    assert (f"topreward-annotate: error: no Ray cluster answered at 127.0.0.1:{port} within 3 s "
            "(--ray-connect-timeout)"
            in result.stderr.splitlines()), result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_a_killed_driver_resumes_without_recomputing(collection, tiny_model_dir, baseline, tmp_path):
    out = tmp_path / "run"
    command = [str(BIN / "topreward-annotate"), *map(str, collection), "--output", str(out),
               *common_args(tiny_model_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while not list((out / "parts").glob("*.parquet")) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=30)
    assert driver.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    before = {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet")}
    assert 1 <= len(before) < len(EXPECTED) and not (out / "episodes.parquet").exists()

    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet")}
    assert all(after[name] == mtime for name, mtime in before.items())  # nothing done twice
    run = json.loads((out / "summary.json").read_text())["run"]
    assert run["resumed_episodes"] == len(before) and run["this_run_episodes"] == len(EXPECTED) - len(before)
    assert_same_run(out, baseline)

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)  # finished: nothing to do
    assert again.returncode == 0 and json.loads((out / "summary.json").read_text())["run"]["this_run_episodes"] == 0
    assert_same_run(out, baseline)


def test_bad_input_is_recorded_per_episode_and_the_run_goes_on(tmp_path, tiny_model_dir, capsys):
    tree = tmp_path / "mixed"
    make_bag(tree / "good-bag", "mcap", 1.0)
    (tree / "broken-bag").mkdir()
    (tree / "broken-bag" / "metadata.yaml").write_text("rosbag2_bagfile_information: [not, a, bag\n")
    (tree / "broken-bag" / "broken-bag.mcap").write_bytes(b"\x89MCAP0\r\n" + os.urandom(200))
    (tree / "videos").mkdir()
    (tree / "videos" / "corrupt.mp4").write_bytes(os.urandom(4000))
    write_video(tree / "videos" / "good.avi", [render_scene(j / 9, 64, 48) for j in range(10)], FPS, "mpeg4")
    write_lerobot(tree / "dataset", [{"length": 10, "task_index": 0, "file": 0},
                                     {"length": 10, "task_index": 7, "file": 0},             # no such task
                                     {"length": 10, "task_index": 1, "file": 0, "shift": 60.0}])  # no frames there
    out = tmp_path / "out"
    code = main([str(tree), "--output", str(out), "--no-progress", "--image-topics", "/camera/image_raw/compressed",
                 *common_args(tiny_model_dir)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    episodes = {(r["item"], r["episode"]): r for r in table(out / "episodes.parquet")}
    status = {key: (r["status"], r["error"]) for key, r in episodes.items()}
    assert status[("good-bag", 0)] == ("ok", "")  # the compressed topic
    assert status[("videos/good.avi", 0)] == ("ok", "")
    assert status[("dataset", 0)] == ("ok", "")
    assert status[("broken-bag", 0)][0] == "failed" and "cannot read bag" in status[("broken-bag", 0)][1]
    assert status[("videos/corrupt.mp4", 0)][0] == "failed" and "corrupt.mp4" in status[("videos/corrupt.mp4", 0)][1]
    assert status[("dataset", 1)] == ("failed", "task_index 7 is not in meta/tasks.parquet")
    assert status[("dataset", 2)][0] == "failed" and "no frames between 62.000 s" in status[("dataset", 2)][1]
    assert len(episodes) == 7
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 4 and len(summary["failures"]) == 4
    assert summary["progress_files"][0]["path"] is None and "1, 2 failed" in summary["progress_files"][0]["skipped"]
    assert not (out / "progress" / "dataset.parquet").exists()
    assert len(re.findall(r"^topreward-annotate: mixed/\S+ episode \d failed: ", captured.err, re.M)) == 4
    assert "no progress file for mixed/dataset" in captured.err
    assert "| mixed | broken-bag | 0 |" in (out / "summary.md").read_text()

    # a missing task: a video with no --task
    solo = tmp_path / "solo.avi"
    write_video(solo, [render_scene(0.5, 64, 48)] * 4, FPS, "mpeg4")
    args = [a for a in common_args(tiny_model_dir) if a not in ("--task", DEFAULT_TASK)]
    assert main([str(solo), "--output", str(tmp_path / "solo"), "--no-progress", *args]) == 1
    row, = table(tmp_path / "solo" / "episodes.parquet")
    assert row["status"] == "failed" and row["error"] == "no task: pass --task"


@pytest.mark.parametrize("case", ["missing", "unknown-file", "empty-folder", "bad-info", "old-version",
                                  "foreign-output", "other-settings", "workers-without-ray", "timeouts-without-ray"])
def test_a_source_or_option_that_cannot_work_is_one_error_line(case, tmp_path, tiny_model_dir, baseline, collection,
                                                                capsys):
    sources, out, extra = [str(collection[0])], tmp_path / "out", []
    if case == "missing":
        sources = [str(tmp_path / "nowhere")]
    elif case == "unknown-file":
        (tmp_path / "notes.txt").write_text("hello")
        sources = [str(tmp_path / "notes.txt")]
    elif case == "empty-folder":
        (tmp_path / "empty" / "sub").mkdir(parents=True)
        sources = [str(tmp_path / "empty")]
    elif case in ("bad-info", "old-version"):
        dataset = write_lerobot(tmp_path / "ds", [{"length": 10, "task_index": 0, "file": 0}])
        info = dataset / "meta" / "info.json"
        info.write_text("{broken" if case == "bad-info" else
                        json.dumps({**json.loads(info.read_text()), "codebase_version": "v2.1"}))
        sources = [str(dataset)]
    elif case == "foreign-output":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "other-settings":
        sources, out, extra = list(map(str, collection)), baseline, ["--sample-fps", "3"]
    elif case == "workers-without-ray":
        extra = ["--workers", "2"]
    elif case == "timeouts-without-ray":
        extra = ["--episode-timeout", "60", "--ray-connect-timeout", "5"]
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    assert main([*sources, "--output", str(out), *common_args(tiny_model_dir, *extra)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("topreward-annotate: error: "), err
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before  # nothing written
