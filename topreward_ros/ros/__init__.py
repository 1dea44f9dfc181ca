"""The ROS layer: everything that imports rclpy (the node, its parameters, a consumer of its updates). Only the
programs in tools.ROS_PROGRAMS import it; nothing ROS-free does.

Its public names are imported on first use (exports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .parameters import PARAMETERS
    from .reward_node import RewardNode
    from .update_listener import UpdateListener

_MODULE_OF = {"PARAMETERS": "parameters", "RewardNode": "reward_node", "UpdateListener": "update_listener"}
__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
