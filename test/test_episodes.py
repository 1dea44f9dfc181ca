"""Every source yields one Episode type (a bag's episodes, a video file, an image folder, a LeRobot episode), and
a video is timed by its frames' presentation times: a variable-frame-rate video is sampled by when its frames are
shown, alike by topreward-eval-video and by topreward-annotate, as a video file and inside a LeRobot dataset.
Real parts: videos encoded with PyAV, bags written by rosbags, LeRobot folders.
"""

import dataclasses
import json

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from topreward_ros.sources import lerobot, video
from topreward_ros.sources.bags import read_episodes
from topreward_ros.sources.image_messages import DEFAULT_IMAGE_TOPIC
from topreward_ros.sources.video import VideoError
from topreward_ros.stream.episode import Episode
from topreward_ros.synthetic.scene import render_scene
from topreward_ros.tools import annotate, eval_video
from topreward_ros.tools.make_sample_bag import DEFAULT_TASK, MARKER_TOPIC

from test_annotate import FPS, TASKS, common_args, make_bag, write_lerobot
from videos import write_video

# Frames at uneven presentation times (s): bursts and pauses around a nominal FPS (10). Sampled at 2 fps by
# these times, each 0.5 s slot keeps its first frame; by frame count over the nominal rate (frame j at j / 10)
# the sampler would keep frames 0, 5 and 10 instead.
UNEVEN_TIMES = [0.0, 0.04, 0.08, 0.12, 0.62, 0.66, 0.70, 1.30, 1.34, 1.38, 1.42, 1.46, 2.10, 2.14, 2.6]
SAMPLED_TIMES = [0.0, 0.62, 1.3, 2.1, 2.6]
SAMPLED_FRAMES = [0, 4, 7, 12, 14]


def scene(count: int) -> list[np.ndarray]:
    return [render_scene(j / (count - 1), 64, 48) for j in range(count)]


def test_every_source_yields_an_episode(tmp_path):
    bag = tmp_path / "bag"
    make_bag(bag, "mcap", 1.0, 0.5)
    read = read_episodes(bag, [DEFAULT_IMAGE_TOPIC], 2.0, split="marker", marker_topic=MARKER_TOPIC)
    clip = tmp_path / "clip.mp4"
    write_video(clip, scene(15), FPS, "libx264")
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(scene(3)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    dataset = lerobot.open_dataset(write_lerobot(tmp_path / "dataset", [{"length": 12, "task_index": 1, "file": 0}]))
    episodes = {"bag": read.episodes, "video": [video.read_episode(clip, 2.0)],
                "folder": [video.read_episode(folder, 1.0)],
                "lerobot": [lerobot.read_episode(dataset.root, dataset.episodes[0], dataset.fps, 2.0)]}
    for kind, found in episodes.items():
        for episode in found:
            assert isinstance(episode, Episode), kind
            assert len(episode.frames) == len(episode.times) and episode.times[0] == 0.0, kind
            assert all(f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3 for f in episode.frames), kind
            assert episode.times == sorted(episode.times), kind
    assert [(e.source, e.index, e.task, len(e.frames)) for e in read.episodes] == [(str(bag), 0, DEFAULT_TASK, 3),
                                                                                  (str(bag), 1, DEFAULT_TASK, 3)]
    assert all(len(e.stamps) == len(e.frames) for e in read.episodes)  # header stamps
    clip_episode, = episodes["video"]
    assert (clip_episode.source, clip_episode.index, clip_episode.task) == (str(clip), 0, "")
    assert clip_episode.times == [0.0, 0.5, 1.0] and clip_episode.frame_indices == [0, 5, 10]
    assert clip_episode.stamps is None and clip_episode.source_frames == 15
    folder_episode, = episodes["folder"]
    assert folder_episode.source == str(folder) and folder_episode.times == [0.0, 1.0, 2.0]
    dataset_episode, = episodes["lerobot"]
    assert (dataset_episode.source, dataset_episode.index, dataset_episode.task) == (str(dataset.root), 0, TASKS[1])
    assert dataset_episode.frame_indices == [0, 5, 10] and dataset_episode.times == [0.0, 0.5, 1.0]
    assert dataset_episode.frames[0].shape == (48, 128, 3)  # two cameras tiled


def test_a_variable_frame_rate_video_is_sampled_by_its_presentation_times(tmp_path, tiny_model_dir, capsys):
    """topreward-eval-video on the video file, and topreward-annotate on the same file and on a LeRobot dataset
    whose videos hold it twice (two episodes, the second from the middle of the mp4), score the same frames."""
    frames = scene(len(UNEVEN_TIMES))
    clip = tmp_path / "vfr.mp4"
    write_video(clip, frames, FPS, "libx264", times=UNEVEN_TIMES)
    assert [j for j in range(len(frames)) if j % (FPS // 2) == 0] != SAMPLED_FRAMES  # not the nominal rate's frames

    report = tmp_path / "report"
    assert eval_video.main([str(clip), "--task", DEFAULT_TASK, "--model", str(tiny_model_dir), "--output",
                            str(report), "--fps", "2", "--prefixes", str(len(SAMPLED_TIMES)), "--resolution",
                            "64x64", "--json-summary"]) == 0
    summary = json.loads((report / "curve.json").read_text())
    assert summary["settings"]["frames"] == len(SAMPLED_TIMES)
    assert summary["prefix_lengths"] == [1, 2, 3, 4, 5] and summary["prefix_times"] == SAMPLED_TIMES
    rows = [line.split(",") for line in (report / "curve.csv").read_text().splitlines()[1:]]
    assert [float(row[2]) for row in rows] == SAMPLED_TIMES

    dataset = write_lerobot(tmp_path / "vfr-dataset", [{"length": len(frames), "task_index": 0, "file": 0,
                                                        "times": UNEVEN_TIMES}] * 2)
    out = tmp_path / "annotated"
    assert annotate.main([str(dataset), str(clip), "--output", str(out), "--no-progress",
                          *common_args(tiny_model_dir)]) == 0, capsys.readouterr().err
    scored = {}
    for row in pq.read_table(out / "frames.parquet").to_pylist():
        scored.setdefault((row["source"], row["episode"]), []).append(row)
    assert sorted(scored) == [("vfr-dataset", 0), ("vfr-dataset", 1), ("vfr.mp4", 0)]
    for key, rows in scored.items():
        assert [r["time"] for r in rows] == SAMPLED_TIMES, key
        assert [r["frame_index"] for r in rows] == SAMPLED_FRAMES, key


def test_a_video_that_cannot_give_an_episode_is_a_clear_error(tmp_path):
    import av

    empty = tmp_path / "empty.avi"
    with av.open(str(empty), "w") as container:  # a video stream without a frame
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    with pytest.raises(VideoError, match="empty.avi: no frames could be read"):
        video.read_episode(empty, 2.0)
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 100)
    with pytest.raises(VideoError, match="junk.mp4: cannot open as a video"):
        video.read_episode(tmp_path / "junk.mp4", 2.0)
    # a LeRobot episode whose metadata claims more frames than its videos hold from its from_timestamp
    root = write_lerobot(tmp_path / "dataset", [{"length": 10, "task_index": 0, "file": 0}])
    dataset = lerobot.open_dataset(root)
    longer = dataclasses.replace(dataset.episodes[0], length=12)
    with pytest.raises(VideoError, match=r"10 frames between 0\.000 s and 1\.000 s, expected 12"):
        lerobot.read_episode(root, longer, dataset.fps, 2.0)
