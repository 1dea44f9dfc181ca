"""TOPReward scores: log P(" True") after the claim, from the final hidden states."""

from __future__ import annotations

import dataclasses
import statistics

import torch

from .frames import DEFAULT_RESOLUTION, check_resolution
from .prompts import load_prompt_set, select_prompts

VOCAB_CHUNK = 32768  # rows of lm_head cast to float32 at a time (bounded extra memory)


@dataclasses.dataclass(frozen=True)
class ScoringConfig:
    """What is scored: the prompt templates (an ensemble averages them), contrastive or not,
    the rendering (role markers or bare) and the fixed frame resolution (width, height)."""

    prompts: tuple[str, ...] = ()
    contrastive: bool = False
    role_markers: bool = True
    resolution: tuple[int, int] = DEFAULT_RESOLUTION

    def __post_init__(self):
        if not self.prompts:
            object.__setattr__(self, "prompts", tuple(load_prompt_set()[:1]))
        check_resolution(self.resolution)

    @classmethod
    def from_options(cls, prompts_file=None, ensemble_size: int = 1, **kwargs) -> "ScoringConfig":
        return cls(prompts=tuple(select_prompts(load_prompt_set(prompts_file), ensemble_size)), **kwargs)


@dataclasses.dataclass(frozen=True)
class Score:
    """Per-prompt log-probabilities of the answers and the reward they make."""

    true_logprobs: tuple[float, ...]
    false_logprobs: tuple[float, ...]
    contrastive: bool = False

    @property
    def ensemble(self) -> float:
        """Mean log P(" True") over the prompts (the published reward)."""
        return statistics.fmean(self.true_logprobs)

    @property
    def contrast(self) -> float:
        """Mean of log P(" True") - log P(" False") over the prompts."""
        return statistics.fmean(t - f for t, f in zip(self.true_logprobs, self.false_logprobs))

    @property
    def value(self) -> float:
        """The reward: the contrast if contrastive scoring is on, else the ensemble."""
        return self.contrast if self.contrastive else self.ensemble


@torch.inference_mode()
def answer_logprobs(reward_model, hidden: torch.Tensor) -> torch.Tensor:
    """(B, 2) float32 log-probs of [" True", " False"] from final hidden states (B, H).

    The softmax runs over the FULL vocabulary in float32 (bf16 logits quantise log-probs
    to steps of 0.125); lm_head is cast chunk by chunk to bound the extra memory.
    """
    weight = reward_model.model.lm_head.weight
    hidden = hidden.float()
    logits = torch.cat([hidden @ weight[i:i + VOCAB_CHUNK].float().T
                        for i in range(0, weight.shape[0], VOCAB_CHUNK)], dim=-1)
    logprobs = torch.log_softmax(logits, dim=-1)
    return logprobs[:, [reward_model.true_id, reward_model.false_id]]


def make_score(logprobs: torch.Tensor, contrastive: bool) -> Score:
    values = logprobs.cpu().tolist()
    return Score(tuple(v[0] for v in values), tuple(v[1] for v in values), contrastive)
