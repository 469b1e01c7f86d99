"""Validation: every kind of bad input is located by file, line and field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.data.errors import DataValidationError, Problem
from recops.data.loaders.tabular import read_interactions
from recops.data.validation import (
    ValidationReport,
    coerce_unix_seconds,
    validate_interactions,
    validate_items,
    validate_users,
)

HEADER = "user_id,item_id,timestamp,rating\n"


def _write(tmp_path, text: str, name: str = "ratings.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _messages(err: pytest.ExceptionInfo[DataValidationError]) -> list[str]:
    return [str(p) for p in err.value.problems]


def test_bad_timestamp_names_file_line_and_field(tmp_path):
    rows = "".join(f"u{i},i{i},{1_000_000 + i},4\n" for i in range(15)) + "u,i,yesterday,4\n"
    path = _write(tmp_path, HEADER + rows)
    with pytest.raises(DataValidationError) as err:
        read_interactions(path)
    # 15 good rows on lines 2..16, so the bad one is line 17, as an editor shows it.
    assert str(err.value) == (
        "ratings.csv, line 17, field 'timestamp': "
        "expected an integer unix time or ISO date, got 'yesterday'"
    )
    assert isinstance(err.value, ValueError)


def test_several_problems_are_reported_at_once(tmp_path):
    path = _write(
        tmp_path,
        HEADER + "u1,i1,100,4\nu2,i2,abc,4\n,i3,300,4\nu4,i4,400,five\nu5,i5,500,5\n",
    )
    with pytest.raises(DataValidationError) as err:
        read_interactions(path)
    assert _messages(err) == [
        "ratings.csv, line 3, field 'timestamp': expected an integer unix time or ISO date, "
        "got 'abc'",
        "ratings.csv, line 4, field 'user_id': expected a non-empty id, got an empty value",
        "ratings.csv, line 5, field 'value': expected a finite number, got 'five'",
    ]
    assert str(err.value).startswith("3 problems in the input data:")


def test_message_lists_first_problems_and_counts_the_rest():
    frame = pd.DataFrame(
        {
            "user_id": ["u"] * 30,
            "item_id": ["i"] * 30,
            "event": "click",
            "value": 1.0,
            "timestamp": ["never"] * 30,
        }
    )
    with pytest.raises(DataValidationError) as err:
        validate_interactions(frame, source="log.csv", lines=np.arange(30) + 2, max_problems=5)
    assert len(err.value.problems) == 5
    assert err.value.n_total == 30
    assert "... and 25 more problems" in str(err.value)


def test_missing_column_is_reported_on_the_header_line(tmp_path):
    path = _write(tmp_path, "user_id,item_id\nu1,i1\n")
    with pytest.raises(DataValidationError) as err:
        read_interactions(path)
    assert str(err.value).startswith("ratings.csv, line 1, field 'timestamp': missing column")
    assert "'user_id', 'item_id'" in str(err.value)


def test_unknown_item_is_reported_when_a_catalog_is_given(tmp_path):
    path = _write(tmp_path, HEADER + "u1,i1,100,4\nu1,i9,200,4\n")
    with pytest.raises(DataValidationError) as err:
        read_interactions(path, catalog=pd.DataFrame({"item_id": ["i1", "i2"]}))
    assert _messages(err) == [
        "ratings.csv, line 3, field 'item_id': item 'i9' is not in the catalog"
    ]


def test_duplicate_row_names_the_first_occurrence(tmp_path):
    path = _write(tmp_path, HEADER + "u1,i1,100,4\nu2,i2,200,3\nu1,i1,100,4\n")
    with pytest.raises(DataValidationError) as err:
        read_interactions(path)
    assert _messages(err) == ["ratings.csv, line 4: duplicate of line 2"]


def test_malformed_line_is_reported_with_its_line(tmp_path):
    path = _write(tmp_path, HEADER + "u1,i1,100,4\nu2,i2,200,3,extra\nu3,i3,300,2\n")
    with pytest.raises(DataValidationError) as err:
        read_interactions(path)
    assert _messages(err) == [
        "ratings.csv, line 3: expected 4 fields, got 5 (is the separator ',' inside an "
        "unquoted value?)"
    ]


def test_line_numbers_stay_right_after_blank_lines_and_multiline_quotes(tmp_path):
    path = _write(
        tmp_path,
        'user_id,item_id,timestamp,note\nu1,i1,100,"two\nlines"\n\nu2,i2,soon,x\n',
    )
    with pytest.raises(DataValidationError) as err:
        read_interactions(path)
    assert _messages(err)[0].startswith("ratings.csv, line 5, field 'timestamp'")


def test_bad_encoding_names_the_line(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_bytes(HEADER.encode() + b"u1,i1,100,4\nu\xe9,i2,200,4\n")
    with pytest.raises(DataValidationError, match=r"ratings.csv, line 3: not valid utf-8"):
        read_interactions(path)


def test_skip_invalid_reports_counts_by_reason_and_keeps_the_rest(tmp_path):
    path = _write(
        tmp_path,
        HEADER
        + "u1,i1,100,4\n"
        + "u2,i2,later,4\n"
        + "u3,i3,1600000000000,4\n"
        + ",i4,400,4\n"
        + "u1,i1,100,4\n"
        + "u6,i6,600,4,extra\n"
        + "u7,i7,2020-01-01T00:00:00Z,5\n",
    )
    clean, report = read_interactions(path, skip_invalid=True)
    assert clean["user_id"].tolist() == ["u1", "u7"]
    assert clean["timestamp"].tolist() == [100, 1_577_836_800]
    assert report.n_rows == 7
    assert report.n_kept == 2
    assert report.n_skipped == 5
    assert report.skipped == {
        "bad_timestamp": 2,
        "empty_id": 1,
        "duplicate_row": 1,
        "malformed_line": 1,
    }
    text = str(report)
    assert "ratings.csv: kept 2 of 7 rows, skipped 5:" in text
    assert "looks like milliseconds" in text
    assert "line 7: expected 4 fields, got 5" in text


def test_clean_report_says_so():
    frame = pd.DataFrame(
        {"user_id": [1], "item_id": [2], "event": ["click"], "value": [1], "timestamp": [5]}
    )
    clean, report = validate_interactions(frame)
    assert report.clean
    assert str(report) == "<DataFrame>: kept 1 of 1 rows"
    assert clean.dtypes.to_dict() == {
        "user_id": clean["user_id"].dtype,
        "item_id": clean["item_id"].dtype,
        "event": clean["event"].dtype,
        "value": np.dtype("float64"),
        "timestamp": np.dtype("int64"),
    }
    assert clean.iloc[0].tolist() == ["1", "2", "click", 1.0, 5]


def test_coercion_to_schema_dtypes():
    frame = pd.DataFrame(
        {
            "user_id": [1.0, 2.0, 3.0],
            "item_id": [" a ", "b", "c"],
            "event": ["Click", "rating", "add_to_cart"],
            "value": ["1", "4.5", 2],
            "timestamp": ["1970-01-02", 86400.9, "2020-01-01T01:00:00+01:00"],
            "position": [0, 1, 2],
        }
    )
    clean, _ = validate_interactions(frame)
    assert clean["user_id"].tolist() == ["1", "2", "3"]
    assert clean["item_id"].tolist() == ["a", "b", "c"]
    assert clean["event"].tolist() == ["click", "rating", "add_to_cart"]
    assert clean["value"].tolist() == [1.0, 4.5, 2.0]
    assert clean["timestamp"].tolist() == [86400, 86400, 1_577_836_800]
    assert clean["position"].tolist() == [0, 1, 2]


def test_events_can_be_restricted_to_a_set():
    frame = pd.DataFrame(
        {
            "user_id": ["u"],
            "item_id": ["i"],
            "event": ["purchase"],
            "value": [1.0],
            "timestamp": [1],
        }
    )
    with pytest.raises(DataValidationError, match="expected one of click, impression"):
        validate_interactions(frame, events={"click", "impression"})


def test_in_memory_frames_are_located_by_row():
    frame = pd.DataFrame(
        {
            "user_id": ["u", "v"],
            "item_id": ["i", "j"],
            "event": ["click", "bad event!"],
            "value": [1.0, 1.0],
            "timestamp": [1, 2],
        }
    )
    with pytest.raises(DataValidationError) as err:
        validate_interactions(frame)
    assert _messages(err)[0].startswith("<DataFrame>, row 1, field 'event'")


def test_items_coerce_categories_and_publish_time_and_reject_repeated_ids():
    frame = pd.DataFrame(
        {
            "item_id": [1, 2, 3],
            "categories": ["a| b", None, ["x", "y"]],
            "publish_time": ["1995-01-01", None, 10],
            "extra": [1, 2, 3],
        }
    )
    items, report = validate_items(frame)
    assert report.clean
    assert list(items.columns) == ["item_id", "title", "categories", "publish_time", "extra"]
    assert items["categories"].tolist() == [["a", "b"], [], ["x", "y"]]
    assert items["publish_time"].tolist() == [788_918_400, pd.NA, 10]
    assert items["title"].tolist() == ["", "", ""]
    repeated = pd.DataFrame({"item_id": ["a", "b", "a"]})
    with pytest.raises(DataValidationError) as err:
        validate_items(repeated, source="items.csv", lines=[2, 3, 4])
    assert _messages(err) == ["items.csv, line 4, field 'item_id': 'a' already given on line 2"]


def test_users_need_unique_non_empty_ids():
    frame = pd.DataFrame({"user_id": ["a", "", "a"], "age": [1, 2, 3]})
    users, report = validate_users(frame, skip_invalid=True)
    assert users["user_id"].tolist() == ["a"]
    assert report.skipped == {"empty_id": 1, "duplicate_id": 1}


def test_coerce_unix_seconds_leaves_empty_cells_missing_but_not_bad():
    seconds, bad = coerce_unix_seconds(pd.Series(["", "12", "x", None], dtype=object))
    assert seconds.tolist() == [pd.NA, 12, pd.NA, pd.NA]
    assert bad.tolist() == [False, False, True, False]


def test_report_counts_unparsed_lines():
    report = ValidationReport("f.csv", n_rows=3, n_kept=3)
    problem = Problem("f.csv", 9, None, "malformed_line", "expected 2 fields, got 3")
    merged = report.with_unparsed([problem])
    assert (merged.n_rows, merged.n_kept, merged.skipped) == (4, 3, {"malformed_line": 1})
    assert merged.examples["malformed_line"] == (problem,)


def test_max_problems_is_validated():
    with pytest.raises(ValueError, match=r"`max_problems` must be a positive int \(got 0\)"):
        validate_users(pd.DataFrame({"user_id": ["a"]}), max_problems=0)


def test_datetime_columns_convert_with_their_zone_and_missing_times_are_reported():
    frame = pd.DataFrame(
        {
            "user_id": ["a", "b"],
            "item_id": ["x", "y"],
            "event": "click",
            "value": [True, False],
            "timestamp": pd.to_datetime(["2020-01-01", None]).tz_localize("Europe/Paris"),
        }
    )
    clean, report = validate_interactions(frame, skip_invalid=True)
    assert clean["timestamp"].tolist() == [1_577_833_200]  # midnight in Paris is 23:00 UTC
    assert clean["value"].tolist() == [1.0]
    (problem,) = report.examples["bad_timestamp"]
    assert str(problem) == (
        "<DataFrame>, row 1, field 'timestamp': "
        "expected an integer unix time or ISO date, got an empty value"
    )


def test_empty_file_is_reported(tmp_path):
    path = _write(tmp_path, "")
    with pytest.raises(DataValidationError, match=r"^ratings.csv: the file is empty"):
        read_interactions(path)


def test_unparsable_lines_and_invalid_rows_are_reported_together(tmp_path):
    path = _write(tmp_path, HEADER + "u1,i1,x,4\nu2,i2,200,3,extra\nu3,,300,2\n")
    with pytest.raises(DataValidationError) as err:
        read_interactions(path)
    assert [(p.line, p.reason) for p in err.value.problems] == [
        (2, "bad_timestamp"),
        (3, "malformed_line"),
        (4, "empty_id"),
    ]
