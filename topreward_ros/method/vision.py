"""Vision features of frame pairs: each pair is one temporal group of the ViT, encoded once."""

from __future__ import annotations

import dataclasses
import inspect

import torch
import transformers

from .frames import FramePair

# Compatibility with the supported transformers range (4.57.1 to 5.x; docs/VERSIONS.md):
# 4.x returns the vision features as a tuple (5.x: an output with pooler_output/deepstack_features).
TRANSFORMERS_VERSION = tuple(int(part) for part in transformers.__version__.split(".")[:2])
LEGACY_TRANSFORMERS = TRANSFORMERS_VERSION < (5, 0)
# Before 5.10 the processor expands "<|vision_start|><|video_pad|><|vision_end|>" into the per-pair
# blocks without the outer <|vision_start|>/<|vision_end|> pair that 5.10 and later keep. The package
# renders the tokens itself, always in the newest layout, so scores do not depend on this (the tests do).
PROCESSOR_DROPS_OUTER_VISION_PAIR = TRANSFORMERS_VERSION < (5, 10)


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
    video_processor = reward_model.processor.video_processor
    # cap_pixels_per_frame (5.16 and later) only changes resizing; passed to silence its warning
    options = {"cap_pixels_per_frame": False} if hasattr(video_processor, "cap_pixels_per_frame") else {}
    batch = video_processor(videos=videos, do_resize=False, do_sample_frames=False, return_tensors="pt", **options)
    return {"pixel_values_videos": batch["pixel_values_videos"].to(reward_model.device),
            "video_grid_thw": batch["video_grid_thw"].to(reward_model.device)}


@torch.inference_mode()
def encode_pairs(reward_model, pairs: list[FramePair]) -> list[GroupFeatures]:
    """Encode pairs with the vision tower in one batch; the ViT attends only within a pair."""
    if not pairs:
        return []
    inputs = video_inputs(reward_model, [pair.frames for pair in pairs])
    embeds, deepstack = video_features(reward_model.model.model, inputs["pixel_values_videos"],
                                       inputs["video_grid_thw"])
    return [
        GroupFeatures(embeds=embeds[i],
                      deepstack=[level[i] for level in deepstack],
                      grid_thw=inputs["video_grid_thw"][i:i + 1],
                      timestamp=pair.timestamp)
        for i, pair in enumerate(pairs)
    ]


def video_features(model, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor):
    """Per-video merged embeddings and per-level, per-video DeepStack features of Qwen3VLModel.

    The embeddings come split per video; the DeepStack levels only in some versions (5.23 splits them,
    4.57 and 5.17 return each level over all videos): a level that is one tensor is split here. Indexing
    an unsplit level by video would take one token's features instead of the video's, and the language
    model would broadcast them over every visual token: wrong scores without an error.
    """
    if LEGACY_TRANSFORMERS:  # 4.x: a tuple (embeddings, DeepStack levels)
        embeds, levels = model.get_video_features(pixel_values_videos, video_grid_thw)
    else:
        output = model.get_video_features(pixel_values_videos, video_grid_thw, return_dict=True)
        embeds, levels = output.pooler_output, output.deepstack_features
    sizes = [e.shape[0] for e in embeds]
    return embeds, [torch.split(level, sizes) if torch.is_tensor(level) else level for level in levels]


def rope_index(model, input_ids: torch.Tensor, mm_token_type_ids: torch.Tensor,
               video_grid_thw: torch.Tensor | None) -> torch.Tensor:
    """Qwen3VLModel.get_rope_index: the (3, 1, n) MRoPE ids. Before transformers 5.3 it takes no token
    types and finds the video blocks from the ids (<|vision_start|> followed by <|video_pad|>)."""
    if "mm_token_type_ids" in inspect.signature(model.get_rope_index).parameters:
        return model.get_rope_index(input_ids, mm_token_type_ids, video_grid_thw=video_grid_thw)[0]
    return model.get_rope_index(input_ids, video_grid_thw=video_grid_thw)[0]
