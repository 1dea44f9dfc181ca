"""Reading episodes from rosbag2 recordings (.db3 and .mcap, via rosbags).

Image topics are converted, paired and sampled by the same EpisodeStream the node uses, so
a bag gives offline the frames a live node would see when the bag is replayed. Episodes are
split by a marker topic (every message on it starts an episode; a std_msgs/String marker
carries the episode's task), by gaps in the header stamps, or one per bag. Stamps going
back by more than the stamp tolerance, or jumping by more than the gap limit, always start a
new episode, and a stamp within the tolerance before the previous one is dropped and counted,
as in the node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from ..errors import TopRewardError
from ..stream.episode import Episode
from ..stream.episode_stream import (DEFAULT_CAMERA_SLOP, DEFAULT_MAX_GAP, DEFAULT_SAMPLE_FPS, DEFAULT_STAMP_TOLERANCE,
                                     EpisodeStream, tiled)
from .image_messages import DEFAULT_MAX_PIXELS, ImageConversionError, check_message, header_stamp, message_to_rgb

log = logging.getLogger(__name__)
WARNINGS_PER_TOPIC = 3  # bad messages described per topic; the rest are counted in one line at the end

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
STRING = "std_msgs/msg/String"
SPLITS = ("bag", "marker", "gap")


class BagError(TopRewardError, ValueError):
    """A bag that cannot be read as asked."""


def _warn_bad(skipped: dict[str, int], topic: str, error) -> None:
    """Describe the first WARNINGS_PER_TOPIC bad messages of a topic; count all of them."""
    skipped[topic] = skipped.get(topic, 0) + 1
    if skipped[topic] <= WARNINGS_PER_TOPIC:
        log.warning("%s: skipped a message: %s", topic, error)


def decoded(reader: AnyReader, connection, rawdata, skipped: dict[str, int]):
    """The message, or None when it cannot be deserialized (counted in ``skipped`` and described)."""
    try:
        return reader.deserialize(rawdata, connection.msgtype)
    except Exception as exc:  # noqa: BLE001 - one corrupt message (rosbags < 0.11 raises builtin errors for it)
        _warn_bad(skipped, connection.topic, f"cannot deserialize it: {exc}")
        return None


def warn_skipped(skipped: dict[str, int], path) -> None:
    """One line for the bad messages that were counted but not described."""
    unreported = {topic: n for topic, n in skipped.items() if n > WARNINGS_PER_TOPIC}
    if unreported:
        log.warning("%s: bad messages skipped in all: %s (only the first %d of each topic described)", path,
                    ", ".join(f"{n} on {topic}" for topic, n in unreported.items()), WARNINGS_PER_TOPIC)


@dataclasses.dataclass
class BagEpisodes:
    episodes: list[Episode]
    bad_messages: int
    image_messages: int
    late_messages: int = 0   # dropped: stamped within the stamp tolerance before the previous message


def open_bag(path: str | Path) -> AnyReader:
    path = Path(path)
    if not path.exists():
        raise BagError(f"no such bag: {path}")
    if path.is_file() and path.suffix in (".db3", ".mcap"):
        path = path.parent  # a rosbag2 recording is its directory (metadata.yaml beside the storage file)
    try:
        return AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED))
    except Exception as exc:  # rosbags' own code only: see _unreadable
        raise _unreadable(path, exc) from exc


@contextlib.contextmanager
def opened_bag(path: str | Path) -> Iterator[AnyReader]:
    """The bag opened for reading, closed after; a bag rosbags cannot open is a BagError naming it."""
    reader = open_bag(path)
    try:
        reader.open()
    except Exception as exc:  # rosbags' own code only: see _unreadable
        raise _unreadable(path, exc) from exc
    try:
        yield reader
    finally:
        reader.close()


def _unreadable(path, exc: Exception) -> BagError:
    """A bag rosbags cannot parse. Besides its own errors, rosbags raises whatever its parsers and storage
    libraries raise on a corrupt file (OverflowError, UnicodeDecodeError, apsw.CorruptError, zstd and lz4
    errors, ...), so the callers catch every Exception, around rosbags' calls only."""
    return BagError(f"cannot read bag {path}: {' '.join(str(exc).split()) or type(exc).__name__}")


def messages(reader: AnyReader, path, connections):
    """``reader.messages(connections=...)``; a corrupt storage file is a BagError naming the bag."""
    iterator = reader.messages(connections=connections)
    while True:
        try:
            message = next(iterator)
        except StopIteration:
            return
        except Exception as exc:  # rosbags' own code only: see _unreadable
            raise _unreadable(path, exc) from exc
        yield message


def read_episodes(path: str | Path, image_topics: list[str], sample_fps: float = DEFAULT_SAMPLE_FPS,
                  split: str = "bag", marker_topic: str | None = None, max_gap: float = DEFAULT_MAX_GAP,
                  camera_slop: float = DEFAULT_CAMERA_SLOP, stamp_tolerance: float = DEFAULT_STAMP_TOLERANCE,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> BagEpisodes:
    """Sampled frames of every episode in a bag (episodes without frames are left out).

    Read as the node reads live messages: a zero header stamp falls back to the message's log
    time, a stamp with nanosec out of range is a bad message, a stamp going back by at most
    ``stamp_tolerance`` seconds is a late message (dropped, counted), one going back further or
    jumping by more than ``max_gap`` seconds starts a new episode (with ``split="gap"`` that is the split).
    """
    if split not in SPLITS:
        raise BagError(f"unknown split {split!r}: use {', '.join(SPLITS)}")
    if split == "marker" and not marker_topic:
        raise BagError("split by marker needs --marker-topic")
    if not image_topics:
        raise BagError("no image topic given")
    if split != "marker":
        marker_topic = None
    with opened_bag(path) as reader:
        return _read(reader, path, image_topics, sample_fps, marker_topic, max_gap, camera_slop, stamp_tolerance,
                     max_pixels)


def _read(reader, path, image_topics, sample_fps, marker_topic, max_gap, camera_slop, stamp_tolerance,
          max_pixels) -> BagEpisodes:
    types = {c.topic: c.msgtype for c in reader.connections}
    for topic in image_topics:
        if topic not in types:
            raise BagError(f"topic {topic} is not in {path}; it has: {', '.join(sorted(types)) or 'no topics'}")
        if types[topic] not in (IMAGE, COMPRESSED):
            raise BagError(f"topic {topic} has type {types[topic]}; expected {IMAGE} or {COMPRESSED}")
    if marker_topic and marker_topic not in types:
        raise BagError(f"marker topic {marker_topic} is not in {path}; it has: {', '.join(sorted(types))}")
    wanted = [c for c in reader.connections if c.topic in image_topics or c.topic == marker_topic]
    camera_of = {topic: i for i, topic in enumerate(image_topics)}
    stream = EpisodeStream(len(image_topics), tiled(message_to_rgb), sample_fps, camera_slop, max_gap, stamp_tolerance)

    def new_episode(task: str = "") -> Episode:
        return Episode(str(path), len(episodes), task, stamps=[])

    episodes = [Episode(str(path), 0, stamps=[])]
    bad = images = fallback_stamps = late = 0
    skipped: dict[str, int] = {}
    for connection, log_time, rawdata in messages(reader, path, wanted):
        msg = decoded(reader, connection, rawdata, skipped)
        bad += msg is None  # counted; a corrupt marker still starts its episode
        if connection.topic == marker_topic:
            stream.reset()
            episodes.append(new_episode(msg.data if msg is not None and connection.msgtype == STRING else ""))
            continue
        images += 1
        if msg is None:
            continue
        try:
            stamp, fell_back = header_stamp(msg, log_time * 1e-9)
            check_message(msg, max_pixels)
        except ImageConversionError as exc:
            bad += 1
            _warn_bad(skipped, connection.topic, exc)
            continue
        fallback_stamps += fell_back
        added = stream.add(camera_of[connection.topic], stamp, msg)
        late += added.late
        for error in added.errors:
            bad += 1
            _warn_bad(skipped, connection.topic, error)
        for sampled in added.sampled:
            if sampled.new_episode:  # stamps went back or jumped
                episodes.append(new_episode())
            episode = episodes[-1]
            assert episode.stamps is not None  # new_episode stamps every episode of a bag
            episode.frames.append(sampled.frame)
            episode.times.append(sampled.time)
            episode.stamps.append(sampled.stamp)
    warn_skipped(skipped, path)
    if images == 0:
        raise BagError(f"{path}: no messages on {', '.join(image_topics)}")
    if fallback_stamps:
        log.warning("%s: %d messages have zero header stamps; their log times were used", path, fallback_stamps)
    if late:
        log.warning("%s: %d late messages dropped (stamped at most %g s before the previous one)", path, late,
                    stamp_tolerance)
    kept = [e for e in episodes if e.frames]
    if not kept:
        raise BagError(f"{path}: no image could be converted ({bad} bad messages)")
    for index, episode in enumerate(kept):
        episode.index = index
    return BagEpisodes(kept, bad, images, late)
