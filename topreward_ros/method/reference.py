"""The published computation, kept as the reference: the whole video re-run for every prefix and prompt."""

from __future__ import annotations

import numpy as np
import torch

from .frames import pair_frames, resize_frame
from .prompts import fill_prompt
from .rendering import Renderer
from .config import ScoringConfig
from .scoring import Score, answer_logprobs, make_score
from .vision import video_inputs


class ReferenceScorer:
    """The published computation: the whole video is re-run for every prefix and every prompt."""

    def __init__(self, reward_model, config: ScoringConfig):
        self.reward_model = reward_model
        self.config = config
        self.renderer = Renderer(reward_model.tokenizer, role_markers=config.role_markers)

    @torch.inference_mode()
    def score(self, frames: list[np.ndarray], times: list[float], task: str) -> Score:
        frames = [resize_frame(f, self.config.resolution) for f in frames]
        pairs = pair_frames(frames, times)
        video = video_inputs(self.reward_model, [np.stack(frames)])
        tokens_per_group = int(video["video_grid_thw"][0, 1:].prod()) // 4
        rows = []
        for template in self.config.prompts:
            segment = (self.renderer.prefix()
                       + self.renderer.groups((p.timestamp, tokens_per_group) for p in pairs)
                       + self.renderer.close_video() + self.renderer.prompt(fill_prompt(template, task)))
            device = self.reward_model.device
            output = self.reward_model.model.model(
                input_ids=torch.tensor([segment.ids], device=device),
                mm_token_type_ids=torch.tensor([segment.types], device=device),
                use_cache=False, **video)
            rows.append(answer_logprobs(self.reward_model, output.last_hidden_state[:, -1]))
        return make_score(torch.cat(rows), self.config.contrastive)
