"""topreward-annotate's row types: each dataclass is its table's schema (a field added or renamed changes the
schema), rows survive a parquet round trip unchanged, and no module compares a status to a bare string."""

import ast
import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from topreward_ros.evaluation.annotation_records import (EpisodeRow, FrameRow, Status, from_dict, schema, to_dict,
                                                         to_table, write_table)

PACKAGE = Path(__file__).resolve().parent.parent / "topreward_ros"


def scored() -> EpisodeRow:
    return EpisodeRow(source="robot-runs", item="bags/day1", kind="bag", path="/data/robot-runs/bags/day1",
                      episode=1, episodes_in_item=2, task="lift the red block", status=Status.OK, frames=3,
                      duration_s=0.4, voc=0.5, static_voc=None, final_score=-1.25, final_progress=1.0, success=True,
                      wall_seconds=0.5, attempts=1, worker="host:12")


def failed() -> EpisodeRow:
    row = EpisodeRow(source="koch_pick", item=".", kind="lerobot", path="/data/koch_pick", episode=2,
                     source_frames=16)
    row.fail("task_index 7 is not in meta/tasks.parquet", 0.25)
    return row


def frame(number: int, frame_index: int | None = None, stamp: float | None = None) -> FrameRow:
    return FrameRow(source="robot-runs", item="bags/day1", episode=1, frame=number, frame_index=frame_index,
                    time=0.2 * number, stamp=stamp, score=-2.0 + number, reward=0.5, progress=number / 2,
                    success=number == 2, logp_true=[-2.0 + number, -3.0], logp_false=[-4.0, -5.0],
                    static_score=-2.5, model_frames=number + 1, stride=1)


def test_the_schema_is_the_dataclass_fields_in_order():
    for cls in (EpisodeRow, FrameRow):
        assert schema(cls).names == [field.name for field in dataclasses.fields(cls)]
    assert schema(EpisodeRow).field("status").type == pa.string()
    assert schema(EpisodeRow).field("episode").type == pa.int64()
    assert schema(EpisodeRow).field("voc").type == pa.float64() and schema(EpisodeRow).field("voc").nullable
    assert schema(EpisodeRow).field("success").type == pa.bool_()
    assert schema(FrameRow).field("logp_true").type == pa.list_(pa.float64())


def test_a_field_added_or_renamed_changes_the_schema():
    @dataclasses.dataclass
    class Added(FrameRow):
        camera: str | None = None

    Renamed = dataclasses.make_dataclass(
        "Renamed", [("score_raw" if f.name == "score" else f.name, f.type) for f in dataclasses.fields(FrameRow)])
    assert schema(Added).names == [*schema(FrameRow).names, "camera"]
    assert schema(Added).field("camera").type == pa.string()
    assert "score_raw" in schema(Renamed).names and "score" not in schema(Renamed).names


def test_a_field_without_an_arrow_type_is_an_error():
    @dataclasses.dataclass
    class Odd:
        value: complex

    with pytest.raises(TypeError, match="no Arrow type"):
        schema(Odd)


def from_table(cls, table) -> list:
    return [from_dict(cls, record) for record in table.to_pylist()]


def test_rows_survive_a_parquet_round_trip(tmp_path):
    episodes = [scored(), failed()]
    frames = [frame(0, stamp=1.7e9), frame(1, 5, 1.7e9 + 0.2), frame(2, 10)]
    for cls, rows in ((EpisodeRow, episodes), (FrameRow, frames)):
        path = tmp_path / f"{cls.__name__}.parquet"
        write_table(path, to_table(cls, rows))
        table = pq.read_table(path)
        assert table.schema == schema(cls)
        assert from_table(cls, table) == rows
    back = from_table(EpisodeRow, pq.read_table(tmp_path / "EpisodeRow.parquet"))
    assert [row.status for row in back] == [Status.OK, Status.FAILED]
    assert all(isinstance(row.status, Status) for row in back)
    assert not list(tmp_path.glob(".*.tmp"))  # written under a temporary name and renamed into place


def test_the_files_keep_the_status_text_and_a_failed_row_has_no_results():
    table = to_table(EpisodeRow, [scored(), failed()])
    assert table["status"].to_pylist() == ["ok", "failed"]
    row = to_dict(failed())
    assert row["status"] == Status.FAILED.value and row["error"].startswith("task_index 7")
    assert row["frames"] == 0 and row["source_frames"] == 16 and row["wall_seconds"] == 0.25
    assert all(row[name] is None for name in ("duration_s", "voc", "static_voc", "final_score", "final_progress",
                                              "success"))
    assert failed().failed and not scored().failed


def test_a_bad_record_is_a_value_error():
    good = to_dict(scored())
    with pytest.raises(ValueError, match="attempts"):
        from_dict(EpisodeRow, {k: v for k, v in good.items() if k != "attempts"})
    with pytest.raises(ValueError, match="colour"):
        from_dict(EpisodeRow, {**good, "colour": "red"})
    with pytest.raises(ValueError):
        from_dict(EpisodeRow, {**good, "status": "fine"})
    assert from_dict(EpisodeRow, good) == scored()


def test_an_empty_table_has_the_schema():
    assert to_table(FrameRow, []).schema == schema(FrameRow)
    assert from_table(FrameRow, schema(FrameRow).empty_table()) == []


def _bare_status_comparisons(tree: ast.AST) -> list[int]:
    texts = {status.value for status in Status}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in texts for o in operands):
                found.append(node.lineno)
    return found


def test_no_module_compares_a_status_to_a_bare_string():
    """Status is an enum of str: ``row.status == "ok"`` would work, and a typo ("OK") would silently be False.
    Compare with the enum (``is Status.OK``) or use ``EpisodeRow.failed``."""
    found = {str(path.relative_to(PACKAGE)): lines for path in sorted(PACKAGE.rglob("*.py"))
             if (lines := _bare_status_comparisons(ast.parse(path.read_text(encoding="utf-8"))))}
    assert found == {}
    assert _bare_status_comparisons(ast.parse('row["status"] != "ok"')) == [1]  # the check finds one
