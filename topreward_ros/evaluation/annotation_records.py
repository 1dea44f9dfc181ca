"""The rows of topreward-annotate's tables: ``EpisodeRow`` (episodes.parquet, and each part's footer) and
``FrameRow`` (frames.parquet, and each part). Each dataclass is its table's schema: the Arrow schema is derived
from its fields (their order, names and types), so a column is defined in one place. pyarrow is imported only
when a table is built or read (it is an extra: the annotate one)."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..outputs import OutputError, atomic_path


class Status(str, enum.Enum):
    """An episode's outcome; its value is the text of the ``status`` column."""

    OK = "ok"
    FAILED = "failed"


@dataclasses.dataclass
class EpisodeRow:
    """One episode: its identity (known before anything is read), then what reading and scoring it gave."""

    source: str
    item: str
    kind: str                             # bag, video or lerobot
    path: str
    episode: int                          # the bag's episode number, the LeRobot episode_index, or 0
    episodes_in_item: int = 1             # a bag: how many episodes it has once read
    task: str | None = None
    status: Status = Status.FAILED        # FAILED until it is scored
    error: str = ""                       # why it failed ("" when scored)
    frames: int = 0                       # sampled frames scored
    source_frames: int | None = None      # frames of the video or LeRobot episode
    duration_s: float | None = None
    voc: float | None = None              # None: undefined (a constant curve)
    static_voc: float | None = None
    final_score: float | None = None
    final_progress: float | None = None
    success: bool | None = None
    wall_seconds: float | None = None
    attempts: int = 0                     # runs of the episode, retries of a dead worker included
    worker: str | None = None             # host:pid of the worker that scored it

    @property
    def failed(self) -> bool:
        return self.status is not Status.OK

    def fail(self, error: str, seconds: float) -> None:
        """Record the episode as not scored: ``error`` says why; its results are cleared."""
        self.status, self.error, self.wall_seconds, self.frames = Status.FAILED, error, seconds, 0
        self.duration_s = self.voc = self.static_voc = self.final_score = self.final_progress = None
        self.success = None


@dataclasses.dataclass
class FrameRow:
    """One reward update of an episode (one sampled frame, or the newest of those it covers)."""

    source: str
    item: str
    episode: int
    frame: int                            # the update's number in the episode
    frame_index: int | None               # LeRobot: the newest covered frame's frame_index
    time: float                           # seconds since the episode's first frame
    stamp: float | None                   # bags: the newest covered frame's header stamp
    score: float
    reward: float
    progress: float
    success: bool
    logp_true: list[float]                # per prompt
    logp_false: list[float]
    static_score: float                   # the static-video control at the same time
    model_frames: int
    stride: int


Row = TypeVar("Row", EpisodeRow, FrameRow)

_ARROW_TYPES = {str: "string", int: "int64", float: "float64", bool: "bool_", Status: "string"}


def _arrow_type(annotation):
    """The Arrow type of a field's annotation: a scalar of _ARROW_TYPES, that or None, or a list of one."""
    import pyarrow as pa

    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # X | None: a nullable X
        (annotation,) = (a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is list:
        return pa.list_(_arrow_type(*typing.get_args(annotation)))
    if annotation not in _ARROW_TYPES:
        raise TypeError(f"no Arrow type for a field of type {annotation!r}")
    return getattr(pa, _ARROW_TYPES[annotation])()


def schema(cls: type[Row]):
    """The table's Arrow schema: one nullable column per field of ``cls``, in their order."""
    import pyarrow as pa

    hints = typing.get_type_hints(cls)
    return pa.schema([(field.name, _arrow_type(hints[field.name])) for field in dataclasses.fields(cls)])


def to_table(cls: type[Row], rows: Iterable[Row]):
    """The rows as an Arrow table of ``cls``'s schema (Status as its text)."""
    import pyarrow as pa

    records = [to_dict(row) for row in rows]
    table_schema = schema(cls)
    return pa.table({f.name: pa.array([r[f.name] for r in records], f.type) for f in table_schema},
                    schema=table_schema)


def to_dict(row: EpisodeRow | FrameRow) -> dict[str, Any]:
    """The row as plain values, for JSON (Status as its text)."""
    return {name: value.value if isinstance(value, Status) else value
            for name, value in ((f.name, getattr(row, f.name)) for f in dataclasses.fields(row))}


def from_dict(cls: type[Row], record: Mapping[str, Any]) -> Row:
    """A row from plain values; ValueError when a column is missing or unknown, or a status is not one."""
    names = [field.name for field in dataclasses.fields(cls)]
    if set(record) != set(names):
        wrong = sorted(set(record) ^ set(names))
        raise ValueError(f"not a {cls.__name__}: columns {', '.join(wrong)} missing or unknown")
    values = dict(record)
    if "status" in values:
        values["status"] = Status(values["status"])
    return cls(**values)


def write_table(path: Path, table) -> None:
    """A parquet file renamed into place: a reader sees the whole file or none."""
    import pyarrow.parquet as pq

    try:
        with atomic_path(path) as temporary:
            pq.write_table(table, temporary)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc

