"""Finding the episodes of robot-data collections: what ``topreward-annotate SOURCE...`` scores.

A SOURCE is one of:

- a LeRobot v3 dataset (a folder with ``meta/info.json``): one item per episode;
- a rosbag2 recording (a folder with ``metadata.yaml``, or its ``.db3`` / ``.mcap`` file): one item
  whose episodes are found by reading it (split as ``topreward-eval-bag`` splits them);
- a video file (mp4, mkv, avi, mov, webm, m4v): one episode;
- a folder: searched recursively (hidden entries skipped, links not followed) for all of the above;
  a recording's or a dataset's folder is not searched further.

Only paths and small descriptors are found here; frames are read later, where they are scored.
A SOURCE that cannot be read at all (missing, of no known kind, holding nothing to score, or only LeRobot
datasets whose metadata cannot be read) is a CollectionError. A dataset whose metadata cannot be read beside
other items is one failed item (its reason in ``Item.error``); an item that turns out unreadable later (a
corrupt bag or video) is the scorer's to record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import TopRewardError
from . import lerobot
from .lerobot import LeRobotDataset, LeRobotEpisode

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")
BAG_SUFFIXES = (".db3", ".mcap")
KINDS = ("bag", "video", "lerobot")


class CollectionError(TopRewardError, ValueError):
    """A SOURCE that cannot be read at all."""


@dataclasses.dataclass(frozen=True)
class Item:
    """One thing a worker reads: a bag (all its episodes), a video file, or one episode of a LeRobot dataset."""

    source: str             # label of the SOURCE it was found in
    kind: str               # bag | video | lerobot
    path: str               # absolute: the bag, the video file, the dataset root
    name: str               # path relative to the SOURCE ("." when the SOURCE is the item itself)
    episode: int | None = None            # LeRobot episode_index; 0 for a video; None for a bag
    lerobot: LeRobotEpisode | None = None
    fps: float = 0.0                      # LeRobot dataset frame rate
    error: str = ""                       # why it cannot be read, found while searching: it fails with this reason

    @property
    def group(self) -> str:
        """Key of the file this item is read from (a bag is read once for all its episodes)."""
        return f"{self.kind}:{self.path}"


def episode_key(source: str, name: str, episode: int) -> str:
    """Identity of an episode in a run: stable across runs with the same SOURCE list."""
    return f"{source}\x1f{name}\x1f{episode}"


def part_name(source: str, name: str, episode: int) -> str:
    return hashlib.sha1(episode_key(source, name, episode).encode()).hexdigest()[:24]


@dataclasses.dataclass
class Dataset:
    """A LeRobot dataset found in a SOURCE (the SOURCE itself or a folder inside it)."""

    source: str
    name: str
    dataset: LeRobotDataset

    @property
    def label(self) -> str:
        return self.source if self.name == "." else f"{self.source}/{self.name}"


@dataclasses.dataclass
class Source:
    label: str
    path: Path
    items: list[Item]
    datasets: list[Dataset]

    def counts(self) -> dict[str, int]:
        return {kind: sum(item.kind == kind for item in self.items) for kind in KINDS}


def find_sources(paths: Sequence[str | Path], cameras: Sequence[str] | None = None) -> list[Source]:
    """Every SOURCE's items, in a stable order (sorted names). Labels are the paths' base names, made unique."""
    if not paths:
        raise CollectionError("no SOURCE given")
    resolved = [Path(os.path.abspath(p)) for p in paths]
    seen = set()
    for given, path in zip(paths, resolved):
        if path in seen:
            raise CollectionError(f"SOURCE {given} is given twice")
        seen.add(path)
    labels: dict[str, int] = {}
    sources = []
    for given, path in zip(paths, resolved):
        base = path.name or "root"
        labels[base] = labels.get(base, 0) + 1
        label = base if labels[base] == 1 else f"{base}-{labels[base]}"
        sources.append(_find(label, path, str(given), cameras))
    return sources


def _find(label: str, path: Path, given: str, cameras) -> Source:
    if not path.exists():
        raise CollectionError(f"SOURCE {given}: no such file or folder")
    source = Source(label, path, [], [])
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            source.items.append(Item(label, "video", str(path), ".", 0))
        elif path.suffix.lower() in BAG_SUFFIXES:
            source.items.append(Item(label, "bag", str(path), "."))
        else:
            raise CollectionError(f"SOURCE {given}: not a rosbag2 recording, a video ({', '.join(VIDEO_SUFFIXES)}), "
                                  "a LeRobot v3 dataset or a folder of them")
        return source
    if not path.is_dir():
        raise CollectionError(f"SOURCE {given}: not a file or a folder")
    try:
        _walk(source, path, path, cameras)
    except OSError as exc:
        raise CollectionError(f"SOURCE {given}: cannot be searched: {exc}") from exc
    if not source.items:
        raise CollectionError(f"SOURCE {given}: holds no rosbag2 recording, video or LeRobot v3 dataset")
    if all(item.error for item in source.items):
        raise CollectionError(f"SOURCE {given}: {source.items[0].error}")
    return source


def _walk(source: Source, root: Path, folder: Path, cameras) -> None:
    name = "." if folder == root else folder.relative_to(root).as_posix()
    if lerobot.is_dataset(folder):
        try:
            dataset = lerobot.open_dataset(folder, cameras)
        except lerobot.LeRobotError as exc:  # one failed item: the SOURCE's other items are still scored
            source.items.append(Item(source.label, "lerobot", str(folder), name, 0,
                                     error=f"{exc}; none of its episodes is scored"))
            return
        source.datasets.append(Dataset(source.label, name, dataset))
        source.items.extend(Item(source.label, "lerobot", str(folder), name, episode.episode_index, episode,
                                 dataset.fps) for episode in dataset.episodes)
        return
    if (folder / "metadata.yaml").is_file():
        source.items.append(Item(source.label, "bag", str(folder), name))
        return
    entries = sorted((e for e in os.scandir(folder) if not e.name.startswith(".")), key=lambda e: e.name)
    bag_files = [e for e in entries if e.is_file(follow_symlinks=False) and e.name.lower().endswith(BAG_SUFFIXES)]
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            _walk(source, root, path, cameras)
        elif entry.is_file(follow_symlinks=False) and entry.name.lower().endswith(VIDEO_SUFFIXES):
            source.items.append(Item(source.label, "video", str(path), path.relative_to(root).as_posix(), 0))
    for entry in bag_files:  # storage files without metadata.yaml: each is tried as a bag of its own
        path = Path(entry.path)
        source.items.append(Item(source.label, "bag", str(path), path.relative_to(root).as_posix()))
