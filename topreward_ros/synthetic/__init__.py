"""Random Qwen3-VL checkpoints and synthetic clips, for tests and benchmarks.

Its public names, each imported from its module on first use (PEP 562), so that importing this package (or
any one module of it) loads no other module and no heavy dependency.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import SHAPES, build_model, write_test_model
    from .scene import render_scene, scene_frames

_MODULE_OF = {
    "SHAPES": "model",
    "build_model": "model",
    "write_test_model": "model",
    "render_scene": "scene",
    "scene_frames": "scene",
}

__all__ = [
    "SHAPES",
    "build_model",
    "render_scene",
    "scene_frames",
    "write_test_model",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
