"""The ROS layer: everything that imports rclpy (the node, its parameters, consumers of its updates: the update
listener and a learner's RewardClient). Only the programs in tools.ROS_PROGRAMS import it; nothing ROS-free does.

Its public names are imported on first use (exports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .parameters import PARAMETERS
    from .reward_client import RewardClient, RewardTimeout, TransitionReward
    from .reward_node import RewardNode
    from .update_listener import UpdateListener

_MODULE_OF = {"PARAMETERS": "parameters", "RewardClient": "reward_client", "RewardNode": "reward_node",
              "RewardTimeout": "reward_client", "TransitionReward": "reward_client",
              "UpdateListener": "update_listener"}
__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
