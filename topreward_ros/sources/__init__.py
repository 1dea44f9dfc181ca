"""The sources layer: where frames come from (bags, video files, LeRobot datasets, image messages), no
ROS needed. Each source module reads one kind of data into Episodes (stream.episode); its read_episode(s) is
imported from its module (sources.video.read_episode, sources.lerobot.read_episode, sources.bags.read_episodes):
one name would not say which.

Its public names are imported on first use (exports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .bags import BagError, open_bag, opened_bag
    from .collections import CollectionError, Dataset, Item, Source, find_sources
    from .image_messages import ImageConversionError, message_to_rgb
    from .lerobot import LeRobotDataset, LeRobotError, open_dataset
    from .video import DecodedVideo, VideoError, decode_video

_MODULE_OF = {"BagError": "bags", "open_bag": "bags", "opened_bag": "bags", "CollectionError": "collections", "Dataset":
              "collections", "Item": "collections", "Source": "collections", "find_sources": "collections",
              "ImageConversionError": "image_messages", "message_to_rgb": "image_messages", "LeRobotDataset": "lerobot",
              "LeRobotError": "lerobot", "open_dataset": "lerobot", "DecodedVideo": "video",
              "VideoError": "video", "decode_video": "video"}
__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
