"""The method layer: the model, prompts, rendering, vision, scoring, the reference scorer, the streaming
engine and the session pool.

Its public names are imported on first use (exports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .engine import DEFAULT_MAX_FRAMES, MAX_FRAMES_RANGE, StreamingEngine
    from .frames import DEFAULT_RESOLUTION, FrameError, FramePair, pair_frames, parse_resolution, resize_frame
    from .model import DEFAULT_MODEL, ModelConfig, ModelLoadError, RewardModel, load_reward_model
    from .prompts import PromptError, fill_prompt, load_prompt_set
    from .reference import ReferenceScorer
    from .rendering import RenderError, Renderer, Segment
    from .scoring import Score, ScoringConfig
    from .sessions import SessionError, SessionPool

_MODULE_OF = {"DEFAULT_MAX_FRAMES": "engine", "MAX_FRAMES_RANGE": "engine", "StreamingEngine": "engine",
              "DEFAULT_RESOLUTION": "frames", "FrameError": "frames", "FramePair": "frames", "pair_frames": "frames",
              "parse_resolution": "frames", "resize_frame": "frames", "DEFAULT_MODEL": "model", "ModelConfig": "model",
              "ModelLoadError": "model", "RewardModel": "model", "load_reward_model": "model", "PromptError": "prompts",
              "fill_prompt": "prompts", "load_prompt_set": "prompts", "ReferenceScorer": "reference", "RenderError":
              "rendering", "Renderer": "rendering", "Segment": "rendering", "Score": "scoring", "ScoringConfig":
              "scoring", "SessionError": "sessions", "SessionPool": "sessions"}
__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
