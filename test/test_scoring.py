import numpy as np
import pytest
import torch
from transformers.video_utils import VideoMetadata

from topreward_ros.method.frames import FrameError, resize_frame
from topreward_ros.method.prompts import PromptError, fill_prompt, load_prompt_set
from topreward_ros.method.rendering import Renderer
from topreward_ros.method.reference import ReferenceScorer
from topreward_ros.method.config import ScoringConfig
from topreward_ros.method.vision import PROCESSOR_DROPS_OUTER_VISION_PAIR

from conftest import SMALL_RESOLUTION

TASK = "open the drawer"


def plain_forward_logprobs(reward_model, frames, fps, prompt, role_markers=True):
    """Independent computation: the processor's inputs, a plain model(**inputs), log_softmax in float32."""
    video = np.stack([resize_frame(f, SMALL_RESOLUTION) for f in frames])
    renderer = Renderer(reward_model.tokenizer, role_markers=role_markers)
    text = renderer.processor_text(prompt)
    inputs = reward_model.processor(
        text=[text], videos=[video],
        videos_kwargs=dict(video_metadata=[VideoMetadata(total_num_frames=len(frames), fps=fps,
                                                          frames_indices=list(range(len(frames))))],
                           do_resize=False, do_sample_frames=False),
        return_tensors="pt")
    if PROCESSOR_DROPS_OUTER_VISION_PAIR:
        inputs = with_outer_vision_pair(renderer, inputs)
    with torch.no_grad():
        logits = reward_model.model(**inputs).logits[0, -2].float()  # the position that predicts the final " True"
    logprobs = torch.log_softmax(logits, dim=-1)
    return logprobs[reward_model.true_id].item(), logprobs[reward_model.false_id].item()


def with_outer_vision_pair(renderer, inputs):
    """The processor of transformers before 5.10 drops the outer <|vision_start|>...<|vision_end|> around the
    pair blocks that 5.10+ keep and the package renders: put them back (those versions read the rope
    positions from the ids)."""
    ids = inputs["input_ids"][0].tolist()
    first = len(renderer.prefix()) - 1  # the video starts right after the head
    last = len(ids) - 1 - ids[::-1].index(renderer.vision_end)  # the last pair block's <|vision_end|>
    ids = ids[:first] + [renderer.vision_start] + ids[first:last + 1] + [renderer.vision_end] + ids[last + 1:]
    return {**inputs, "input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}


@pytest.mark.parametrize("num_frames,role_markers", [(1, True), (4, True), (7, True), (6, False)])
def test_reference_equals_plain_forward(reward_model, random_frames, num_frames, role_markers):
    frames, _ = random_frames
    fps = 2.0
    times = [i / fps for i in range(num_frames)]
    config = ScoringConfig(resolution=SMALL_RESOLUTION, role_markers=role_markers)
    score = ReferenceScorer(reward_model, config).score(frames[:num_frames], times, TASK)
    expected_true, expected_false = plain_forward_logprobs(
        reward_model, frames[:num_frames], fps, fill_prompt(load_prompt_set()[0], TASK), role_markers)
    assert score.true_logprobs[0] == pytest.approx(expected_true, abs=1e-5)
    assert score.false_logprobs[0] == pytest.approx(expected_false, abs=1e-5)
    assert score.value == score.true_logprobs[0]


def test_ensemble_is_the_mean_of_single_prompts(reward_model, random_frames):
    frames, times = random_frames
    templates = load_prompt_set()
    ensemble = ReferenceScorer(reward_model, ScoringConfig.from_options(ensemble_size=3, resolution=SMALL_RESOLUTION))
    score = ensemble.score(frames[:5], times[:5], TASK)
    singles = [ReferenceScorer(reward_model, ScoringConfig(prompts=(t,), resolution=SMALL_RESOLUTION))
               .score(frames[:5], times[:5], TASK).value for t in templates[:3]]
    assert len(set(singles)) == 3  # the prompts really differ
    assert score.value == pytest.approx(np.mean(singles), abs=1e-6)
    assert list(score.true_logprobs) == pytest.approx(singles, abs=1e-6)


def test_contrastive_is_true_minus_false(reward_model, random_frames):
    frames, times = random_frames
    config = ScoringConfig.from_options(ensemble_size=2, contrastive=True, resolution=SMALL_RESOLUTION)
    score = ReferenceScorer(reward_model, config).score(frames[:3], times[:3], TASK)
    expected = np.mean([t - f for t, f in zip(score.true_logprobs, score.false_logprobs)])
    assert score.value == pytest.approx(expected, abs=1e-6)
    assert score.value != pytest.approx(score.ensemble)


def test_scores_are_log_probabilities_over_the_full_vocabulary(reward_model, random_frames):
    frames, times = random_frames
    score = ReferenceScorer(reward_model, ScoringConfig(resolution=SMALL_RESOLUTION)).score(frames[:2], times[:2], TASK)
    assert np.exp(score.true_logprobs[0]) + np.exp(score.false_logprobs[0]) < 1  # not renormalised over the pair


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(resolution=(100, 64)), FrameError, "multiples of 32"),
    (dict(resolution=(0, 64)), FrameError, "multiples of 32"),
])
def test_bad_config_is_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        ScoringConfig(**kwargs)


def test_bad_inputs_are_rejected(reward_model, random_frames):
    frames, times = random_frames
    scorer = ReferenceScorer(reward_model, ScoringConfig(resolution=SMALL_RESOLUTION))
    with pytest.raises(PromptError, match="task instruction is empty"):
        scorer.score(frames[:2], times[:2], "   ")
    with pytest.raises(FrameError, match="no frames"):
        scorer.score([], [], TASK)
    with pytest.raises(FrameError, match="2 frames but 1 timestamps"):
        scorer.score(frames[:2], times[:1], TASK)
    with pytest.raises(FrameError, match="HxWx3 uint8"):
        scorer.score([np.zeros((8, 8), np.uint8)], [0.0], TASK)
    with pytest.raises(FrameError, match="zero size"):
        scorer.score([np.zeros((0, 8, 3), np.uint8)], [0.0], TASK)


def test_prompt_sets(tmp_path):
    assert len(load_prompt_set()) == 10
    good = tmp_path / "good.yaml"
    good.write_text("prompts:\n  - 'Task: {task} Done? The answer is:'\n")
    assert ScoringConfig.from_options(prompts_file=good).prompts == ("Task: {task} Done? The answer is:",)
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompts:\n  - 'no task field. The answer is:'\n")
    with pytest.raises(PromptError, match="no {task} field"):
        load_prompt_set(bad)
    with pytest.raises(PromptError, match="prompt file not found"):
        load_prompt_set(tmp_path / "missing.yaml")
    with pytest.raises(PromptError, match="between 1 and 10"):
        ScoringConfig.from_options(ensemble_size=11)
