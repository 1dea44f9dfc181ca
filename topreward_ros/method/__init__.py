"""The method layer: its configuration, the model, prompts, rendering, vision, scoring, the reference scorer,
the streaming engine and the session pool.

Its public names are imported on first use (exports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .config import DEFAULT_MAX_FRAMES, DEFAULT_MODEL, MAX_FRAMES_RANGE, ModelConfig, ModelLoadError, ScoringConfig
    from .engine import StreamingEngine
    from .frames import (DEFAULT_RESOLUTION, FrameError, FramePair, check_frame, pair_frames, parse_resolution,
                         resize_frame)
    from .model import RewardModel, load_reward_model
    from .prompts import PromptError, fill_prompt, load_prompt_set
    from .reference import ReferenceScorer
    from .rendering import RenderError, Renderer, Segment
    from .scoring import Score
    from .sessions import SessionError, SessionPool

_MODULE_OF = {"DEFAULT_MAX_FRAMES": "config", "DEFAULT_MODEL": "config", "MAX_FRAMES_RANGE": "config",
              "ModelConfig": "config", "ModelLoadError": "config", "ScoringConfig": "config",
              "StreamingEngine": "engine", "DEFAULT_RESOLUTION": "frames", "FrameError": "frames",
              "FramePair": "frames", "check_frame": "frames", "pair_frames": "frames",
              "parse_resolution": "frames", "resize_frame": "frames",
              "RewardModel": "model", "load_reward_model": "model", "PromptError": "prompts",
              "fill_prompt": "prompts", "load_prompt_set": "prompts", "ReferenceScorer": "reference",
              "RenderError": "rendering", "Renderer": "rendering", "Segment": "rendering", "Score": "scoring",
              "SessionError": "sessions", "SessionPool": "sessions"}
__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
