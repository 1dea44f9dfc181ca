"""The method layer: the model, prompts, rendering, vision, scoring, the reference scorer, the streaming
engine and the session pool.

Its public names, each imported from its module on first use (PEP 562), so that importing this package (or
any one module of it) loads no other module and no heavy dependency.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import DEFAULT_MAX_FRAMES, MAX_FRAMES_RANGE, StreamingEngine
    from .frames import DEFAULT_RESOLUTION, FrameError, FramePair, pair_frames, parse_resolution, resize_frame
    from .model import DEFAULT_MODEL, ModelConfig, ModelLoadError, RewardModel, load_reward_model
    from .prompts import PromptError, fill_prompt, load_prompt_set
    from .reference import ReferenceScorer
    from .rendering import RenderError, Renderer, Segment
    from .scoring import Score, ScoringConfig
    from .sessions import SessionError, SessionPool

_MODULE_OF = {
    "DEFAULT_MAX_FRAMES": "engine",
    "MAX_FRAMES_RANGE": "engine",
    "StreamingEngine": "engine",
    "DEFAULT_RESOLUTION": "frames",
    "FrameError": "frames",
    "FramePair": "frames",
    "pair_frames": "frames",
    "parse_resolution": "frames",
    "resize_frame": "frames",
    "DEFAULT_MODEL": "model",
    "ModelConfig": "model",
    "ModelLoadError": "model",
    "RewardModel": "model",
    "load_reward_model": "model",
    "PromptError": "prompts",
    "fill_prompt": "prompts",
    "load_prompt_set": "prompts",
    "ReferenceScorer": "reference",
    "RenderError": "rendering",
    "Renderer": "rendering",
    "Segment": "rendering",
    "Score": "scoring",
    "ScoringConfig": "scoring",
    "SessionError": "sessions",
    "SessionPool": "sessions",
}

__all__ = [
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MODEL",
    "DEFAULT_RESOLUTION",
    "FrameError",
    "FramePair",
    "MAX_FRAMES_RANGE",
    "ModelConfig",
    "ModelLoadError",
    "PromptError",
    "ReferenceScorer",
    "RenderError",
    "Renderer",
    "RewardModel",
    "Score",
    "ScoringConfig",
    "Segment",
    "SessionError",
    "SessionPool",
    "StreamingEngine",
    "fill_prompt",
    "load_prompt_set",
    "load_reward_model",
    "pair_frames",
    "parse_resolution",
    "resize_frame",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
