"""Random Qwen3-VL checkpoints and synthetic clips, for tests and benchmarks.

Its public names are imported on first use (exports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .model import SHAPES, build_model, write_test_model
    from .scene import render_scene, scene_frames

_MODULE_OF = {"SHAPES": "model", "build_model": "model", "write_test_model": "model", "render_scene": "scene",
              "scene_frames": "scene"}
__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
