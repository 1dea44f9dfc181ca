"""The streaming engine equals the full recompute (float32, tiny model) after every update."""

import itertools

import numpy as np
import torch
import pytest

from topreward_ros.stream.episode import Episode
from topreward_ros.stream.reward_stream import run_episode
from topreward_ros.method.engine import StreamingEngine
from topreward_ros.method.frames import FrameError, pair_frames, resize_frame
from topreward_ros.method.reference import ReferenceScorer
from topreward_ros.method.config import ScoringConfig
from topreward_ros.method.vision import encode_pairs
from topreward_ros.stream.episode_stream import SampledFrame
from topreward_ros.stream.reward_stream import RewardStream

from conftest import SMALL_RESOLUTION

TASK = "stack the green cube on the blue cube"
TOL = 1e-4


def assert_same(update_score, reference_score):
    assert update_score.true_logprobs == pytest.approx(reference_score.true_logprobs, abs=TOL)
    assert update_score.false_logprobs == pytest.approx(reference_score.false_logprobs, abs=TOL)
    assert update_score.value == pytest.approx(reference_score.value, abs=TOL)


@pytest.mark.parametrize("ensemble,contrastive", [(1, False), (3, False), (3, True)])
def test_engine_equals_reference_for_1_to_16_pairs(reward_model, random_frames, ensemble, contrastive):
    frames, times = random_frames
    config = ScoringConfig.from_options(ensemble_size=ensemble, contrastive=contrastive, resolution=SMALL_RESOLUTION)
    engine = StreamingEngine(reward_model, config, max_frames=64)
    reference = ReferenceScorer(reward_model, config)
    all_frames = frames + frames[:8]  # 32 frames = 16 pairs
    all_times = [0.5 * i for i in range(32)]
    cached = 0
    for pairs in range(1, 17):
        for i in range(2 * pairs - 2, 2 * pairs):
            engine.add_frame(all_frames[i], all_times[i])
        update = engine.score(TASK)
        assert_same(update.score, reference.score(all_frames[:2 * pairs], all_times[:2 * pairs], TASK))
        assert update.num_frames == 2 * pairs and update.frame_time == all_times[2 * pairs - 1]
        assert update.cached_tokens > cached
        cached = update.cached_tokens
        assert update.stride == 1 and not update.rebuilt


def test_odd_frames_are_scored_without_being_committed(reward_model, random_frames):
    frames, times = random_frames
    config = ScoringConfig.from_options(ensemble_size=2, resolution=SMALL_RESOLUTION)
    engine = StreamingEngine(reward_model, config)
    reference = ReferenceScorer(reward_model, config)
    for n in range(1, 10):
        engine.add_frame(frames[n - 1], times[n - 1])
        update = engine.score(TASK)
        assert_same(update.score, reference.score(frames[:n], times[:n], TASK))


def test_new_frame_costs_only_its_own_tokens(reward_model, random_frames):
    frames, times = random_frames
    engine = StreamingEngine(reward_model, ScoringConfig(resolution=SMALL_RESOLUTION))
    for i in range(20):
        engine.add_frame(frames[i], times[i])
        update = engine.score(TASK)
    # one pair = timestamp text + <|vision_start|> + 6 video tokens + <|vision_end|>; plus the closing token and prompt
    group_tokens = len(engine.renderer.group(times[19], 6))
    prompt = engine.renderer.prompt(engine.config.prompts[0].replace("{task}", TASK))
    assert update.new_tokens == group_tokens + 1 + len(prompt)
    assert update.cached_tokens == len(engine.renderer.prefix()) + 10 * group_tokens


def test_repeated_scoring_and_task_switch_keep_later_updates_exact(reward_model, random_frames):
    frames, times = random_frames
    config = ScoringConfig.from_options(ensemble_size=3, resolution=SMALL_RESOLUTION)
    engine = StreamingEngine(reward_model, config)
    reference = ReferenceScorer(reward_model, config)
    for i in range(6):
        engine.add_frame(frames[i], times[i])
    first = engine.score(TASK)
    again = engine.score(TASK)
    assert again.score == first.score
    other = engine.score("open the drawer")
    assert_same(other.score, reference.score(frames[:6], times[:6], "open the drawer"))
    for i in range(6, 11):
        engine.add_frame(frames[i], times[i])
        assert_same(engine.score(TASK).score, reference.score(frames[:i + 1], times[:i + 1], TASK))


def test_reset_gives_the_numbers_of_a_fresh_engine(reward_model, random_frames):
    frames, times = random_frames
    config = ScoringConfig.from_options(ensemble_size=2, contrastive=True, resolution=SMALL_RESOLUTION)
    used = StreamingEngine(reward_model, config)
    for i in range(9):
        used.add_frame(frames[i], times[i])
        used.score(TASK)
    used.reset()
    fresh = StreamingEngine(reward_model, config)
    for i in range(10, 15):
        used.add_frame(frames[i], times[i] - times[10])
        fresh.add_frame(frames[i], times[i] - times[10])
        assert used.score(TASK).score == fresh.score(TASK).score


def test_long_episode_policy_bounds_memory_and_stays_exact(reward_model, random_frames):
    frames, times = random_frames
    config = ScoringConfig(resolution=SMALL_RESOLUTION)
    engine = StreamingEngine(reward_model, config, max_frames=8)
    reference = ReferenceScorer(reward_model, config)
    rebuilds, cached = [], []
    for i in range(24):
        engine.add_frame(frames[i], times[i])
        update = engine.score(TASK)
        assert engine.num_frames <= 8
        kept_frames = [f for f, t in zip(frames[:i + 1], times[:i + 1]) if any(t == k for k in engine.times)]
        assert_same(update.score, reference.score(kept_frames, engine.times, TASK))
        rebuilds.append(update.rebuilt)
        cached.append(update.cached_tokens)
    assert engine.stride == 4
    assert sum(rebuilds) == 2  # at frame 9 (stride 2) and at frame 17 (stride 4)
    assert engine.times[0] == 0.0  # the first frame is always kept
    assert engine.times == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert max(cached) == max(cached[:9])  # the cache never grows past its size at max_frames


def test_a_frame_the_stride_skips_costs_no_update(reward_model, random_frames):
    """Past max_frames the reward stream scores only when the engine kept a frame: a frame the stride
    skips leaves the episode unchanged, so it gets no update (no repeated score, no delta of 0), and
    the next update covers it (``added``, ``skipped``). Offline (run_episode) holds the same updates."""
    frames, times = random_frames
    config = ScoringConfig(resolution=SMALL_RESOLUTION)
    engine = StreamingEngine(reward_model, config, max_frames=4)
    kept = [engine.add_frame(f, t) for f, t in zip(frames, times)]  # the engine's own stride, frame by frame
    assert not all(kept[4:])  # the stride skips frames from the fifth on
    rewards = RewardStream(StreamingEngine(reward_model, config, max_frames=4), reward_type="delta")
    rewards.reset(1)
    results = [rewards.update([SampledFrame(t, t, f, False)], TASK) for f, t in zip(frames, times)]
    assert [r is not None for r in results] == kept
    updates = [r for r in results if r is not None]
    runs = [(is_none, len(list(run))) for is_none, run in itertools.groupby(results, lambda r: r is None)]
    # each update covers the skipped frames just before it and its own; frames skipped last await the next
    expected = [skipped + 1 for (none, skipped), _ in zip(runs, runs[1:]) if none]
    assert [u.added for u in updates if u.skipped] == expected
    assert all(u.added == 1 + u.skipped and u.merged == 0 for u in updates)
    trailing = runs[-1][1] if runs[-1][0] else 0
    assert sum(u.added for u in updates) + trailing == len(frames)
    assert all(b.reward != 0.0 for b in updates[1:])  # every published delta is news
    offline = run_episode(rewards, Episode("random frames", task=TASK, frames=frames, times=times))
    assert [(u.frames, u.time, u.score) for u in offline] == [(u.frames, u.time, u.score) for u in updates]


def test_engine_rejects_bad_input(reward_model, random_frames):
    frames, _ = random_frames
    engine = StreamingEngine(reward_model, ScoringConfig(resolution=SMALL_RESOLUTION))
    with pytest.raises(FrameError, match="no frames"):
        engine.score(TASK)
    engine.add_frame(frames[0], 1.0)
    with pytest.raises(FrameError, match="earlier than the previous frame"):
        engine.add_frame(frames[1], 0.5)
    with pytest.raises(FrameError, match="HxWx3 uint8"):
        engine.add_frame(np.zeros((4, 4), np.float32), 2.0)
    with pytest.raises(ValueError, match="even number"):
        StreamingEngine(reward_model, ScoringConfig(resolution=SMALL_RESOLUTION), max_frames=7)


def test_each_pair_gets_its_own_vision_features(reward_model, random_frames):
    """Pairs encoded together equal pairs encoded alone, DeepStack levels included: one token per row, never
    one token's features for a whole pair (transformers versions differ in how they split the levels)."""
    frames, times = random_frames
    frames = [resize_frame(f, SMALL_RESOLUTION) for f in frames[:6]]
    pairs = pair_frames(frames, times[:6])
    together = encode_pairs(reward_model, pairs)
    hidden = reward_model.model.config.text_config.hidden_size
    for pair, group in zip(pairs, together):
        alone = encode_pairs(reward_model, [pair])[0]
        assert group.embeds.shape == (group.num_tokens, hidden)
        assert [level.shape for level in group.deepstack] == [(group.num_tokens, hidden)] * len(alone.deepstack)
        torch.testing.assert_close(group.embeds, alone.embeds, atol=1e-5, rtol=1e-5)
        for level, level_alone in zip(group.deepstack, alone.deepstack):
            torch.testing.assert_close(level, level_alone, atol=1e-5, rtol=1e-5)
