"""``recops data``: convert, info and fetch through the real Typer app."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile

import pandas as pd
from typer.testing import CliRunner

from recops.cli import app
from recops.data import Dataset

runner = CliRunner()


def _files(tmp_path):
    ratings = tmp_path / "ratings.csv"
    ratings.write_text(
        "userId,movieId,rating,timestamp\n1,10,4.5,200\n2,11,3,100\n3,10,2,yesterday\n"
    )
    movies = tmp_path / "movies.csv"
    movies.write_text("movieId,title,genres\n10,Heat,Crime|Drama\n11,Up,Animation\n")
    return ratings, movies


def test_convert_writes_parquet_and_reports_skipped_rows(tmp_path):
    ratings, movies = _files(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "data", "convert",
            "--interactions", str(ratings),
            "--catalog", str(movies),
            "--map", "userId=user_id",
            "--map", "movieId=item_id",
            "--map", "genres=categories",
            "--skip-invalid",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ratings.csv: kept 2 of 3 rows, skipped 1:" in result.output
    assert "line 4, field 'timestamp'" in result.output
    assert "interactions" in result.output
    dataset = Dataset.load(out)
    assert dataset.interactions["user_id"].tolist() == ["2", "1"]
    assert dataset.items["categories"].tolist() == [["Crime", "Drama"], ["Animation"]]


def test_convert_bad_input_exits_2_with_file_line_field(tmp_path):
    ratings, _ = _files(tmp_path)
    result = runner.invoke(
        app,
        [
            "data", "convert",
            "--interactions", str(ratings),
            "--map", "userId=user_id",
            "--map", "movieId=item_id",
            "--out", str(tmp_path / "out"),
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "ratings.csv, line 4, field 'timestamp'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_convert_missing_column_suggests_the_map(tmp_path):
    ratings, _ = _files(tmp_path)
    result = runner.invoke(
        app, ["data", "convert", "--interactions", str(ratings), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "line 1, field 'user_id': missing column" in result.output
    assert "--map NAME=user_id" in result.output


def test_info_on_a_folder(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": ["a", "b"],
            "item_id": ["x", "x"],
            "event": "click",
            "value": 1.0,
            "timestamp": [0, 86_400],
        }
    )
    Dataset(frame, name="tiny").save(tmp_path / "tiny")
    result = runner.invoke(app, ["data", "info", str(tmp_path / "tiny")])
    assert result.exit_code == 0, result.output
    assert "1970-01-02 00:00:00" in result.output


def test_info_on_a_public_dataset_name(shared_data):
    result = runner.invoke(app, ["data", "info", "obd", "--data-dir", str(shared_data)])
    assert result.exit_code == 0, result.output
    assert "10,000" in result.output
    assert "impression" in result.output


def test_info_on_something_unknown_exits_2(tmp_path):
    result = runner.invoke(app, ["data", "info", "ml-1m", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "neither a dataset folder nor a dataset name" in result.output
    result = runner.invoke(app, ["data", "info", "ml-100k", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "recops data fetch ml-100k" in result.output


def test_fetch_refuses_an_unpinned_archive_without_consent(tmp_path):
    result = runner.invoke(app, ["data", "fetch", "mind-small", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--allow-unpinned" in result.output


def test_fetch_with_a_given_sha256(tmp_path, monkeypatch):
    """A mirror of ml-latest-small on disk, checked against the digest the user gives."""
    import recops.data.download as download

    archive = tmp_path / "ml-latest-small.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-latest-small/ratings.csv", "userId,movieId,rating,timestamp\n")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    spec = download.ARCHIVES["ml-latest-small"]
    monkeypatch.setattr(
        download,
        "ARCHIVES",
        {"ml-latest-small": dataclasses.replace(spec, url=archive.as_uri())},
    )
    args = ["data", "fetch", "ml-latest-small", "--data-dir", str(tmp_path / "d")]
    bad = runner.invoke(app, [*args, "--sha256", "0" * 64])
    assert bad.exit_code == 2
    assert "expected 000" in bad.output
    good = runner.invoke(app, [*args, "--sha256", digest])
    assert good.exit_code == 0, good.output
    assert (tmp_path / "d" / "ml-latest-small" / "ratings.csv").is_file()
