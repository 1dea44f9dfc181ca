"""TOPReward scores: log P(" True") after the claim, from the final hidden states."""

from __future__ import annotations

import dataclasses
import statistics

import torch


VOCAB_CHUNK = 32768  # rows of lm_head cast to float32 at a time (bounded extra memory)


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
