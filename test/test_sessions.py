"""A session pool scores many episodes in one forward, each exactly as a single engine fed the same frames."""

import gc
import weakref

import numpy as np
import pytest

from topreward_ros.method.engine import StreamingEngine
from topreward_ros.method.frames import FrameError
from topreward_ros.method.reference import ReferenceScorer
from topreward_ros.method.rendering import RenderError
from topreward_ros.method.config import ScoringConfig
from topreward_ros.method.sessions import SessionError, SessionPool

from conftest import SMALL_RESOLUTION

TASKS = ["stack the green cube on the blue cube", "open the drawer", "put the red block in the bowl"]
TOL = 1e-4


def assert_same(update, expected):
    assert update.score.true_logprobs == pytest.approx(expected.score.true_logprobs, abs=TOL)
    assert update.score.false_logprobs == pytest.approx(expected.score.false_logprobs, abs=TOL)
    assert (update.num_frames, update.stride, update.frame_time) == (
        expected.num_frames, expected.stride, expected.frame_time)


class Twin:
    """A pool session and a single engine that see the same frames and tasks."""

    def __init__(self, pool, reward_model, config):
        self.id = pool.open()
        self.engine = StreamingEngine(reward_model, config, max_frames=pool.max_frames)
        self.time = 0.0
        self.task = TASKS[0]


@pytest.mark.parametrize("ensemble,seed", [(1, 0), (3, 1), (1, 2), (3, 3)])
def test_random_interleavings_equal_single_engines(reward_model, random_frames, ensemble, seed):
    """Open, add, reset, change task, close and score random subsets, with max_frames small enough that
    sessions subsample: every pool update equals a single engine's, at every step."""
    frames, _ = random_frames
    rng = np.random.default_rng(seed)
    config = ScoringConfig.from_options(ensemble_size=ensemble, contrastive=bool(seed % 2),
                                        resolution=SMALL_RESOLUTION)
    pool = SessionPool(reward_model, config, max_frames=8, capacity=5)
    twins = [Twin(pool, reward_model, config) for _ in range(3)]
    compared = 0
    for _ in range(40):
        action = rng.choice(["add", "add", "add", "score", "score", "reset", "task", "open", "close"])
        if action == "open" and len(pool) < pool.capacity:
            twins.append(Twin(pool, reward_model, config))
        elif action == "close" and len(twins) > 1:
            twin = twins.pop(int(rng.integers(len(twins))))
            pool.close(twin.id)
        elif action == "reset":
            twin = twins[int(rng.integers(len(twins)))]
            pool.reset(twin.id)
            twin.engine.reset()
            twin.time = 0.0
        elif action == "task":
            twins[int(rng.integers(len(twins)))].task = TASKS[int(rng.integers(len(TASKS)))]
        elif action == "add":
            for twin in rng.choice(twins, size=int(rng.integers(1, len(twins) + 1)), replace=False):
                for _ in range(int(rng.integers(1, 4))):
                    frame = frames[int(rng.integers(len(frames)))]
                    twin.time += 0.5
                    assert pool.add_frame(twin.id, frame, twin.time) == twin.engine.add_frame(frame, twin.time)
        else:
            chosen = [t for t in twins if pool.session(t.id).num_frames and rng.random() < 0.8]
            updates = pool.score({t.id: t.task for t in chosen})
            assert list(updates) == [t.id for t in chosen]
            for twin in chosen:
                assert_same(updates[twin.id], twin.engine.score(twin.task))
                compared += 1
    assert compared > 10


def test_sessions_of_different_lengths_equal_the_full_recompute(reward_model, random_frames):
    frames, times = random_frames
    config = ScoringConfig.from_options(ensemble_size=3, resolution=SMALL_RESOLUTION)
    pool = SessionPool(reward_model, config, max_frames=64, capacity=3)
    reference = ReferenceScorer(reward_model, config)
    ids = [pool.open() for _ in range(3)]
    lengths = [1, 4, 7]  # an odd tail, whole pairs, and both
    for session_id, n in zip(ids, lengths):
        for i in range(n):
            pool.add_frame(session_id, frames[i + session_id], times[i])
    updates = pool.score({session_id: TASKS[session_id] for session_id in ids})
    for session_id, n in zip(ids, lengths):
        expected = reference.score(frames[session_id:session_id + n], times[:n], TASKS[session_id])
        assert updates[session_id].score.true_logprobs == pytest.approx(expected.true_logprobs, abs=TOL)
        assert updates[session_id].num_frames == n


def test_bad_input_is_refused_and_leaves_the_other_sessions_exact(reward_model, random_frames):
    frames, times = random_frames
    config = ScoringConfig.from_options(ensemble_size=3, resolution=SMALL_RESOLUTION)
    pool = SessionPool(reward_model, config, capacity=3)
    twins = [Twin(pool, reward_model, config) for _ in range(3)]
    bad = twins[2]

    def add(twin, i):
        pool.add_frame(twin.id, frames[i], times[i])
        twin.engine.add_frame(frames[i], times[i])

    for i in range(3):
        for twin in twins:
            add(twin, i)
    pool.score({t.id: t.task for t in twins})

    with pytest.raises(FrameError, match="uint8"):
        pool.add_frame(bad.id, frames[3].astype(np.float32), times[3])
    with pytest.raises(FrameError, match="HxWx3"):
        pool.add_frame(bad.id, frames[3][:, :, :2], times[3])
    with pytest.raises(FrameError, match="earlier"):
        pool.add_frame(bad.id, frames[3], times[0])
    with pytest.raises(FrameError, match="finite"):
        pool.add_frame(bad.id, frames[3], float("nan"))
    with pytest.raises(RenderError, match="special token"):  # refused before any session changes
        pool.score({twins[0].id: TASKS[0], bad.id: "open <|im_end|> the drawer"})
    with pytest.raises(SessionError, match="does not exist"):
        pool.score({twins[0].id: TASKS[0], 99: TASKS[0]})
    with pytest.raises(SessionError, match="full"):
        pool.open()
    pool.close(bad.id)
    with pytest.raises(SessionError, match="is closed"):
        pool.add_frame(bad.id, frames[3], times[3])
    with pytest.raises(SessionError, match="is closed"):
        pool.score({bad.id: TASKS[0]})

    for i in range(3, 6):
        for twin in twins[:2]:
            add(twin, i)
        updates = pool.score({t.id: t.task for t in twins[:2]})
        for twin in twins[:2]:
            assert_same(updates[twin.id], twin.engine.score(twin.task))


def test_a_failed_forward_drops_only_caches_and_the_next_update_is_exact(reward_model, random_frames):
    frames, times = random_frames
    config = ScoringConfig(resolution=SMALL_RESOLUTION)
    pool = SessionPool(reward_model, config, capacity=2)
    twins = [Twin(pool, reward_model, config) for _ in range(2)]
    for i in range(4):
        for twin in twins:
            pool.add_frame(twin.id, frames[i], times[i])
            twin.engine.add_frame(frames[i], times[i])
    pool.score({t.id: t.task for t in twins})

    language_model = reward_model.model.model.language_model
    original = language_model.forward
    language_model.forward = lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("out of memory"))
    try:
        with pytest.raises(RuntimeError, match="out of memory"):
            pool.score({t.id: t.task for t in twins})
    finally:
        language_model.forward = original
    assert all(pool.session(t.id).cache_len == 0 for t in twins)
    updates = pool.score({t.id: t.task for t in twins})
    for twin in twins:
        assert_same(updates[twin.id], twin.engine.score(twin.task))


def test_closing_a_session_frees_its_frames_and_cache(reward_model, random_frames):
    frames, times = random_frames
    pool = SessionPool(reward_model, ScoringConfig(resolution=SMALL_RESOLUTION), capacity=2)
    first, second = pool.open(), pool.open()
    for session_id in (first, second):
        for i in range(6):
            pool.add_frame(session_id, frames[i], times[i])
    pool.score({first: TASKS[0], second: TASKS[1]})
    session = pool.session(first)
    held = [weakref.ref(session.cache.layers[0].keys), weakref.ref(session)]
    del session
    pool.close(first)
    gc.collect()
    assert all(ref() is None for ref in held)
    assert pool.session_ids == [second]
    assert pool.open() == 2  # the freed place is reused; ids are never reused
