"""The sources layer: where frames come from (bags, video files, LeRobot datasets, image messages), no
ROS needed. Each source module's read_episode(s) is imported from its module (sources.video.read_episode,
sources.lerobot.read_episode, sources.bags.read_episodes): one name would not say which.

Its public names, each imported from its module on first use (PEP 562), so that importing this package (or
any one module of it) loads no other module and no heavy dependency.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bags import BagError, open_bag, opened_bag
    from .collections import CollectionError, Dataset, Item, Source, find_sources
    from .image_messages import ImageConversionError, message_to_rgb
    from .lerobot import LeRobotDataset, LeRobotError, open_dataset
    from .video import VideoError

_MODULE_OF = {
    "BagError": "bags",
    "open_bag": "bags",
    "opened_bag": "bags",
    "CollectionError": "collections",
    "Dataset": "collections",
    "Item": "collections",
    "Source": "collections",
    "find_sources": "collections",
    "ImageConversionError": "image_messages",
    "message_to_rgb": "image_messages",
    "LeRobotDataset": "lerobot",
    "LeRobotError": "lerobot",
    "open_dataset": "lerobot",
    "VideoError": "video",
}

__all__ = [
    "BagError",
    "CollectionError",
    "Dataset",
    "ImageConversionError",
    "Item",
    "LeRobotDataset",
    "LeRobotError",
    "Source",
    "VideoError",
    "find_sources",
    "message_to_rgb",
    "open_bag",
    "open_dataset",
    "opened_bag",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
