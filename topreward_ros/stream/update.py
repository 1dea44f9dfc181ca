"""RewardUpdate: one published update of the reward stream, and its record (the node's ``~/update`` JSON,
replay's CSV row). Importable without torch, for the programs and clients that only read updates."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..errors import TopRewardError


class UpdateRecordError(TopRewardError, ValueError):
    """A published update record (the node's ``~/update`` JSON) that is not this version's RewardUpdate."""


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What each field's value must be in a record (JSON has no tuples: the log-probs are lists there).
_RECORD_VALUE_CHECKS = {
    "int": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "str": lambda value: isinstance(value, str),
    "bool": lambda value: isinstance(value, bool),
    "float": _is_number,
    "tuple[float, ...]": lambda value: isinstance(value, list) and all(map(_is_number, value)),
}


@dataclasses.dataclass(frozen=True)
class RewardUpdate:
    """One published update: the episode so far, scored once after ``added`` new frames."""

    episode: int
    task: str
    stamp: float                  # header stamp of the newest frame (s)
    time: float                   # time of the newest frame since the episode's first (s)
    reward: float                 # as reward_type says
    score: float                  # raw score (ensemble log P(True), or the contrast)
    progress: float               # causal min-max of the scores published so far
    success: bool
    true_logprobs: tuple[float, ...]
    false_logprobs: tuple[float, ...]
    frames: int                   # frames in the scored episode (after long-episode subsampling)
    stride: int
    added: int                    # sampled frames this update covers (1 unless merged or skipped)
    skipped: int                  # of those, frames of earlier calls the stride skipped (no update of their own)
    latency_ms: float             # model time of this update

    @property
    def merged(self) -> int:
        """Updates merged into this one by a slow model (frames added beyond the first, not skipped ones)."""
        return self.added - 1 - self.skipped

    @classmethod
    def published_fields(cls) -> tuple[str, ...]:
        """The keys of a published record, in order: the node's ``~/update`` JSON, replay's CSV columns and the
        README's ``~/update`` table all are these (the fields, then the derived ``merged``)."""
        return (*(field.name for field in dataclasses.fields(cls)), "merged")

    def to_dict(self) -> dict:
        """The published record: published_fields() -> values, ready for JSON (the log-probs as lists)."""
        record = dataclasses.asdict(self)
        record.update(true_logprobs=list(self.true_logprobs), false_logprobs=list(self.false_logprobs),
                      merged=self.merged)
        return record

    def to_json(self) -> str:
        """The text the node publishes on ``~/update``."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, record) -> "RewardUpdate":
        """The update a published record describes; an UpdateRecordError when its keys are not published_fields()
        (a node of another version, say) or a value is not of its field's type."""
        if not isinstance(record, dict):
            raise UpdateRecordError(f"an update record must be a JSON object, got {type(record).__name__}")
        published = cls.published_fields()
        unknown = [name for name in record if name not in published]
        missing = [name for name in published if name not in record]
        if unknown or missing:
            problems = [f"unknown field(s) {', '.join(map(repr, unknown))}" if unknown else "",
                        f"missing field(s) {', '.join(missing)}" if missing else ""]
            raise UpdateRecordError(f"update record with {' and '.join(p for p in problems if p)} "
                                    f"(expected the fields {', '.join(published)})")
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            value = record[field.name]
            if not _RECORD_VALUE_CHECKS[str(field.type)](value):
                raise UpdateRecordError(f"update record field {field.name} must be {field.type}, got {value!r}")
            values[field.name] = (tuple(map(float, value)) if isinstance(value, list)
                                  else float(value) if field.type == "float" else value)
        update = cls(**values)
        if not _is_number(record["merged"]) or record["merged"] != update.merged:
            raise UpdateRecordError(f"update record field merged is {record['merged']!r}, but added - 1 - skipped "
                                    f"is {update.merged}")
        return update

    @classmethod
    def from_json(cls, text: str) -> "RewardUpdate":
        """The update the node published as ``text`` (from_dict of its JSON)."""
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UpdateRecordError(f"an update record is not JSON: {exc}") from None
        return cls.from_dict(record)
