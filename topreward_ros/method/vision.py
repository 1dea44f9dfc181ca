"""Vision features of frame pairs: each pair is one temporal group of the ViT, encoded once."""

from __future__ import annotations

import dataclasses

import torch

from .frames import FramePair


@dataclasses.dataclass
class GroupFeatures:
    """A pair's merged vision embeddings, its DeepStack levels and its (1, h, w) patch grid."""

    embeds: torch.Tensor
    deepstack: list[torch.Tensor]
    grid_thw: torch.Tensor
    timestamp: float

    @property
    def num_tokens(self) -> int:
        return self.embeds.shape[0]


def video_inputs(reward_model, videos: list) -> dict:
    """Processor output for already-resized frames: no resizing, no frame sampling."""
    batch = reward_model.processor.video_processor(
        videos=videos, do_resize=False, do_sample_frames=False, cap_pixels_per_frame=False, return_tensors="pt")
    return {"pixel_values_videos": batch["pixel_values_videos"].to(reward_model.device),
            "video_grid_thw": batch["video_grid_thw"].to(reward_model.device)}


@torch.inference_mode()
def encode_pairs(reward_model, pairs: list[FramePair]) -> list[GroupFeatures]:
    """Encode pairs with the vision tower in one batch; the ViT attends only within a pair."""
    if not pairs:
        return []
    inputs = video_inputs(reward_model, [pair.frames for pair in pairs])
    output = reward_model.model.model.get_video_features(
        inputs["pixel_values_videos"], inputs["video_grid_thw"], return_dict=True)
    return [
        GroupFeatures(embeds=output.pooler_output[i],
                      deepstack=[level[i] for level in output.deepstack_features],
                      grid_thw=inputs["video_grid_thw"][i:i + 1],
                      timestamp=pair.timestamp)
        for i, pair in enumerate(pairs)
    ]
