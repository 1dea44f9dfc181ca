"""The ROS layer: everything that imports rclpy (the node, its parameters, clients). Only tools/ imports
it; nothing ROS-free does.

Its public names, each imported from its module on first use (PEP 562), so that importing this package (or
any one module of it) loads no other module and no heavy dependency.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .parameters import PARAMETERS
    from .reward_node import RewardNode
    from .update_listener import UpdateListener

_MODULE_OF = {
    "PARAMETERS": "parameters",
    "RewardNode": "reward_node",
    "UpdateListener": "update_listener",
}

__all__ = [
    "PARAMETERS",
    "RewardNode",
    "UpdateListener",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
