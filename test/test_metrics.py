import collections
import math

import numpy as np
import pytest

from topreward_ros.stream.camera_sync import CameraSynchronizer, tile
from topreward_ros.stream.online import CausalProgress, SuccessDetector
from topreward_ros.evaluation.metrics import (format_voc, min_max_progress, prefix_lengths,
                                  voc)
from topreward_ros.stream.sampler import FrameSampler


def test_voc_of_known_sequences():
    assert voc([1, 2, 3, 4]) == pytest.approx(1.0)
    assert voc([4, 3, 2, 1]) == pytest.approx(-1.0)
    assert voc([1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6*2/(4*15)
    assert voc([-6.2, -6.1, -6.15, -5.0, -4.0]) == pytest.approx(0.9)


def test_constant_curve_has_undefined_voc():
    assert math.isnan(voc([-3.0, -3.0, -3.0]))
    assert format_voc(voc([1.0, 1.0])) == "undefined (constant curve)"
    assert math.isnan(voc([1.0]))
    assert min_max_progress([2.0, 2.0, 2.0]) == [0.0, 0.0, 0.0]


def test_min_max_progress():
    assert min_max_progress([-6.0, -4.0, -5.0]) == pytest.approx([0.0, 1.0, 0.5])


def test_prefix_lengths_follow_linspace():
    assert prefix_lengths(29, 15) == [int(v) for v in np.linspace(1, 29, 15)]
    assert prefix_lengths(5, 15) == [1, 2, 3, 4, 5]
    assert prefix_lengths(100, 15)[0] == 1 and prefix_lengths(100, 15)[-1] == 100
    with pytest.raises(ValueError):
        prefix_lengths(0, 15)


def test_sampler_keeps_the_first_frame_of_each_slot():
    sampler = FrameSampler(2.0)
    stamps = [10 + i / 30 for i in range(61)]  # 30 Hz for 2 s
    kept = [t for t in (sampler.offer(s) for s in stamps) if t is not None]
    assert kept == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    assert sampler.offer(5.0) is None  # time going backwards is ignored
    sampler.reset()
    assert sampler.offer(20.0) == 0.0
    with pytest.raises(ValueError):
        FrameSampler(0)


def test_sampler_uses_real_times_when_the_camera_jitters():
    sampler = FrameSampler(1.0)
    kept = [sampler.offer(t) for t in [0.0, 0.7, 1.05, 1.2, 2.3, 2.9, 3.0]]
    assert kept == [0.0, None, 1.05, None, 2.3, None, 3.0]


def test_causal_progress_uses_only_the_past():
    progress = CausalProgress()
    assert [progress.update(s) for s in [-5.0, -4.0, -4.5, -3.0, -6.0]] == pytest.approx(
        [0.0, 1.0, 0.5, 1.0, 0.0])
    progress.reset()
    assert progress.update(-1.0) == 0.0


def test_success_needs_k_consecutive_updates_and_latches():
    detector = SuccessDetector(threshold=-1.0, consecutive=3)
    seen = [detector.update(s) for s in [-0.5, -0.5, -2.0, -0.9, -1.0, -0.2, -5.0, -5.0]]
    assert seen == [False, False, False, False, False, True, True, True]
    detector.reset()
    assert not detector.update(-5.0)
    with pytest.raises(ValueError):
        SuccessDetector(0.0, consecutive=0)


def test_camera_sync_pairs_nearest_stamps_and_tiles():
    sync = CameraSynchronizer(2, slop=0.02)
    left = np.zeros((4, 6, 3), np.uint8)
    right = np.full((8, 8, 3), 255, np.uint8)
    assert sync.add(0, 1.000, left) == []          # waits for the right camera
    assert sync.add(1, 0.990, right) == []         # within slop, but a nearer one may come
    done = sync.add(1, 1.030, right)               # past the slop: decide (nearest was 0.990)
    assert [stamp for stamp, _ in done] == [1.000]
    tiled = tile(done[0][1])
    assert tiled.shape == (4, 10, 3)               # right scaled to height 4 (width 4), side by side
    assert (tiled[:, :6] == 0).all() and (tiled[:, 6:] == 255).all()
    assert sync.add(0, 1.2, left) == []
    assert sync.add(1, 1.5, right) == []           # 1.2 has no partner within slop: dropped
    assert sync.buffers[0] == collections.deque()
    single = CameraSynchronizer(1, slop=0.0)
    assert single.add(0, 3.0, left)[0][0] == 3.0
