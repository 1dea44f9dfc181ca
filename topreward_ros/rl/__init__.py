"""Rewards inside a Gymnasium loop (ROS-free; needs the ``rl`` extra, gymnasium): a single-environment wrapper and
a vector wrapper that scores its sub-environments in one forward, each synchronous or off the critical path.

Its public names are imported on first use (exports.py). Nothing outside this package imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .options import RewardOptions, WrapperError
    from .vector import TopRewardVectorWrapper
    from .wrapper import TopRewardWrapper

_MODULE_OF = {"RewardOptions": "options", "WrapperError": "options", "TopRewardVectorWrapper": "vector",
              "TopRewardWrapper": "wrapper"}
__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
