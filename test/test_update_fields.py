"""The `~/update` record has one definition, RewardUpdate: the node's JSON, topreward-replay's CSV columns and the
README's `~/update` table are its published_fields(), and reading a record back refuses an unknown or missing
field. Renaming a field of the dataclass therefore fails here (README, CSV) instead of emptying a CSV column."""

import argparse
import csv
import dataclasses
import json
import re
import threading
from pathlib import Path

import pytest

from topreward_ros.stream.update import RewardUpdate, UpdateRecordError

README = Path(__file__).resolve().parent.parent / "README.md"
UPDATE = RewardUpdate(episode=3, task="put the red block in the bowl", stamp=1700000000.123456789, time=2.5,
                      reward=-0.25, score=-0.25, progress=0.75, success=True, true_logprobs=(-0.25, -1.0 / 3),
                      false_logprobs=(-2.0, -1.5), frames=6, stride=1, added=3, skipped=1, latency_ms=12.5)


def readme_update_fields() -> list[str]:
    section = README.read_text(encoding="utf-8").split("#### The `~/update` record", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)


def test_the_published_fields_are_the_dataclass_fields_then_merged():
    assert RewardUpdate.published_fields() == (*(f.name for f in dataclasses.fields(RewardUpdate)), "merged")
    assert tuple(UPDATE.to_dict()) == RewardUpdate.published_fields()


def test_the_readme_update_table_lists_the_published_fields_in_order():
    assert tuple(readme_update_fields()) == RewardUpdate.published_fields()


def test_the_published_json_is_unchanged_and_reads_back():
    """The text the node publishes (the DDS tests compare it with offline scoring), and its round trip."""
    assert json.loads(UPDATE.to_json()) == {**dataclasses.asdict(UPDATE), "true_logprobs": [-0.25, -1.0 / 3],
                                            "false_logprobs": [-2.0, -1.5], "merged": 1}
    assert UPDATE.to_json().startswith('{"episode": 3, "task": "put the red block in the bowl", "stamp": ')
    assert RewardUpdate.from_json(UPDATE.to_json()) == UPDATE
    assert RewardUpdate.from_dict(UPDATE.to_dict()) == UPDATE


@pytest.mark.parametrize("change,message", [
    (lambda r: {**r, "reward_value": 1.0}, "unknown field(s) 'reward_value'"),
    (lambda r: {k: v for k, v in r.items() if k != "added"}, "missing field(s) added"),
    (lambda r: {**{k: v for k, v in r.items() if k != "score"}, "raw_score": -0.25},
     "unknown field(s) 'raw_score' and missing field(s) score"),
    (lambda r: {**r, "frames": 6.5}, "field frames must be int, got 6.5"),
    (lambda r: {**r, "success": 1}, "field success must be bool"),
    (lambda r: {**r, "true_logprobs": "[-0.25]"}, "field true_logprobs must be tuple[float, ...]"),
    (lambda r: {**r, "merged": 0}, "merged is 0, but added - 1 - skipped is 1"),
    (lambda r: [r], "must be a JSON object, got list"),
])
def test_a_record_of_another_shape_is_a_clear_error(change, message):
    with pytest.raises(UpdateRecordError, match=re.escape(message)):
        RewardUpdate.from_dict(change(UPDATE.to_dict()))


def test_text_that_is_not_json_is_a_clear_error():
    with pytest.raises(UpdateRecordError, match="not JSON"):
        RewardUpdate.from_json('{"episode": 3,')


def test_the_replay_csv_columns_are_the_published_fields_and_none_is_empty(tmp_path):
    pytest.importorskip("rclpy")
    from topreward_ros.ros.update_listener import ReceivedUpdates
    from topreward_ros.tools import replay

    received = ReceivedUpdates()
    received.add(UPDATE.to_json())
    replayer = argparse.Namespace(lock=threading.Lock(), updates=received, record=[])
    args = argparse.Namespace(output=str(tmp_path / "live.csv"), record_bag=None, bag="b", loop=1, rate=1.0,
                              node="/topreward")
    assert replay.write_outputs(args, replayer, UPDATE.added) == 0
    with (tmp_path / "live.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == RewardUpdate.published_fields()
    assert len(rows) == 1 and all(rows[0][name] != "" for name in RewardUpdate.published_fields())
    assert float(rows[0]["stamp"]) == UPDATE.stamp and json.loads(rows[0]["true_logprobs"]) == [-0.25, -1.0 / 3]


def test_a_bad_record_reaches_the_reader_not_the_executor_thread():
    pytest.importorskip("rclpy")
    from topreward_ros.ros.update_listener import ReceivedUpdates

    received = ReceivedUpdates()
    assert received.add(UPDATE.to_json()) == UPDATE and received.frames_covered() == 3
    assert received.add(json.dumps({**UPDATE.to_dict(), "renamed": 1})) is None  # the callback does not raise
    with pytest.raises(UpdateRecordError, match="unknown field"):
        received.so_far()
