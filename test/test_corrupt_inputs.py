"""Corrupt input files: every file of a LeRobot v3 dataset and of a bag is emptied, truncated or garbled in turn.
topreward-annotate records each corrupt copy as failed items whose reason names it and scores the good items
beside them; topreward-eval-bag, whose one bag cannot be read, exits 2 with one error line. Never a traceback.
A single message that cannot be deserialized is a bad message, counted, and the rest of the bag is read.

The files are found by walking the originals, so a file the writers add is corrupted too. In-process (the tools'
``main``, their real code path); the tiny model, episodes of six frames.
"""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from topreward_ros.sources.bags import read_episodes
from topreward_ros.synthetic.scene import render_scene
from topreward_ros.tools import annotate, eval_bag

from test_annotate import common_args, make_bag, table, write_lerobot


def empty(path: Path) -> None:
    path.write_bytes(b"")


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def scramble(path: Path, start: int, end: int) -> None:
    """Bytes ``start`` to ``end`` XOR 0xA5, as after a bad copy: the file keeps its size."""
    data = path.read_bytes()
    path.write_bytes(data[:start] + bytes(b ^ 0xA5 for b in data[start:end]) + data[end:])


def garbled(path: Path) -> None:
    """The second half scrambled but for the last 8 bytes: the magic numbers at both ends stay, while the index
    that parquet, mcap and these mp4s keep at the end is garbage (damage in frame data alone may decode
    silently, which no reader can tell)."""
    size = path.stat().st_size
    scramble(path, size // 2, size - 8)


def garbled_body(path: Path) -> None:
    """The middle third scrambled, the index at the end intact: a bag's reader gets as far as its chunks."""
    size = path.stat().st_size
    scramble(path, size // 3, 2 * size // 3)


CORRUPTIONS = {"empty": empty, "truncated": truncated, "garbled": garbled}


FILE_EPISODES = {0: {0, 1}, 1: {2}}  # the dataset's data and video files by index, and the episodes in them
EPISODES = set().union(*FILE_EPISODES.values())


def files(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def episodes_reading(file: Path) -> set[int]:
    """The dataset's episodes that read ``file``: those of its data or video file, or all of them (metadata)."""
    if file.parts[0] in ("data", "videos"):
        return FILE_EPISODES[int(re.fullmatch(r"file-(\d+)\.\w+", file.name).group(1))]
    return EPISODES


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """A LeRobot dataset (episodes 0 and 1 share a data file and an mp4 per camera, episode 2 has its own) and
    two one-episode bags."""
    root = tmp_path_factory.mktemp("originals")
    write_lerobot(root / "dataset", [{"length": 6, "task_index": task, "file": file}
                                     for file, episodes in FILE_EPISODES.items() for task in range(len(episodes))])
    make_bag(root / "bag", "mcap", 1.0)
    make_bag(root / "bag-db3", "sqlite3", 1.0)
    return root


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_annotate_fails_each_corrupt_item_with_its_reason_and_scores_the_rest(corruption, originals, tiny_model_dir,
                                                                              tmp_path, capsys):
    tree = tmp_path / "tree"
    for name in ("dataset", "bag"):
        shutil.copytree(originals / name, tree / f"good-{name}")
    corrupted = {}  # copy -> the file corrupted in it
    for name in ("dataset", "bag", "bag-db3"):
        for number, file in enumerate(files(originals / name)):
            copy = tree / f"{name}-{number}"
            shutil.copytree(originals / name, copy)
            CORRUPTIONS[corruption](copy / file)
            corrupted[copy.name] = file
    # info.json, tasks, episodes; two data files, two videos per camera; metadata.yaml and storage of each bag
    assert len(corrupted) == 3 + 2 + 4 + 2 + 2

    code = annotate.main([str(tree), "--output", str(tmp_path / "out"), "--no-progress",
                          *common_args(tiny_model_dir)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err and "error:" not in err
    rows: dict[str, list[dict]] = {}
    for row in table(tmp_path / "out" / "episodes.parquet"):
        rows.setdefault(row["item"], []).append(row)
    assert [(r["episode"], r["status"]) for r in rows.pop("good-dataset")] == [(e, "ok") for e in sorted(EPISODES)]
    assert [(r["episode"], r["status"]) for r in rows.pop("good-bag")] == [(0, "ok")]
    assert sorted(rows) == sorted(corrupted)
    for copy, file in corrupted.items():
        where = f"{copy}/{file} {corruption}"
        failed = {r["episode"] for r in rows[copy] if r["status"] == "failed"}
        scored = {r["episode"] for r in rows[copy] if r["status"] == "ok"}
        assert failed and all(str(tree / copy) in r["error"] for r in rows[copy] if r["status"] == "failed"), \
            (where, rows[copy])
        if copy.startswith("dataset") and episodes_reading(file) != EPISODES:  # only the episodes reading it fail
            assert failed == episodes_reading(file) and scored == EPISODES - failed, (where, rows[copy])
        else:  # its metadata, or a bag: nothing of it is scored
            assert not scored, (where, rows[copy])


@pytest.mark.parametrize("corruption", [*CORRUPTIONS, "garbled_body"])
@pytest.mark.parametrize("bag", ["bag", "bag-db3"])
def test_eval_bag_of_a_corrupt_bag_is_one_error_line(bag, corruption, originals, tiny_model_dir, tmp_path, capsys):
    for file in files(originals / bag):
        copy = tmp_path / f"{bag}-{file.name}"
        shutil.copytree(originals / bag, copy)
        CORRUPTIONS.get(corruption, garbled_body)(copy / file)
        report = tmp_path / f"report-{file.name}"
        code = eval_bag.main([str(copy), "--output", str(report), *common_args(tiny_model_dir)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (file, err)
        assert len(err) == 1 and err[0].startswith("topreward-eval-bag: error: ") and str(copy) in err[0], (file, err)
        assert not report.exists()


def test_a_message_that_cannot_be_deserialized_is_a_counted_bad_message(tmp_path):
    """Truncated CDR in two messages of a bag: the bag reads as the same bag without them, and says so."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    Image, Header, Time = (typestore.types[t] for t in ("sensor_msgs/msg/Image", "std_msgs/msg/Header",
                                                         "builtin_interfaces/msg/Time"))
    corrupt = {3, 6}

    def write(path: Path, skip: set[int], cut: set[int]) -> None:
        with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
            connection = writer.add_connection("/cam", "sensor_msgs/msg/Image", typestore=typestore)
            for i in range(10):
                if i in skip:
                    continue
                msg = Image(header=Header(stamp=Time(sec=100, nanosec=i * 100_000_000), frame_id="cam"), height=48,
                            width=64, encoding="rgb8", is_bigendian=0, step=64 * 3,
                            data=np.frombuffer(render_scene(i / 9, 64, 48).tobytes(), np.uint8))
                raw = typestore.serialize_cdr(msg, "sensor_msgs/msg/Image")
                writer.write(connection, 100_000_000_000 + i * 100_000_000, raw[:30] if i in cut else raw)

    write(tmp_path / "corrupt", set(), corrupt)
    write(tmp_path / "clean", corrupt, set())
    read, clean = (read_episodes(tmp_path / name, ["/cam"], sample_fps=10.0) for name in ("corrupt", "clean"))
    assert read.bad_messages == len(corrupt) and read.image_messages == 10
    assert [e.times for e in read.episodes] == [e.times for e in clean.episodes] and len(clean.episodes[0].times) == 8
    for got, want in zip(read.episodes[0].frames, clean.episodes[0].frames):
        assert np.array_equal(got, want)
