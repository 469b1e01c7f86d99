"""``recops experiment analyze --events FILE`` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recops.cli import app
from tests.experiments.stats.units import make_units

runner = CliRunner()


def _csv(tmp_path: Path, **kwargs: object) -> Path:
    path = tmp_path / "units.csv"
    make_units(**kwargs).to_csv(path, index=False)  # type: ignore[arg-type]
    return path


def test_json_output_has_the_documented_keys_and_the_html_report(tmp_path: Path) -> None:
    events = tmp_path / "units.parquet"
    make_units(6000, lift=0.3, seed=1).to_parquet(events)
    html = tmp_path / "report.html"
    result = runner.invoke(
        app,
        [
            *("experiment", "analyze", "--events", str(events), "--control", "control"),
            *("--metric", "clicks/impressions", "--metric", "clicks"),
            *("--guardrail", "latency_ms:increase:0.05", "--json", "--html", str(html)),
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["recommendation"]["decision"] == "ship"
    assert out["recommendation"]["variant"] == "b"
    b = out["metrics"]["clicks/impressions"]["variants"]["b"]
    assert b["fixed"]["absolute"]["p_value"] < 0.001
    assert b["cuped"]["variance_reduction"] > 0
    assert out["guardrails"][0]["verdict"] == "pass"
    page = html.read_text()
    assert page.count("data:image/png;base64,") == 3 and "SHIP b" in page
    assert "http" not in page.replace("http-equiv", "")  # self-contained: no network


def test_table_output_for_people(tmp_path: Path) -> None:
    events = _csv(tmp_path, n=2000, seed=2)
    result = runner.invoke(
        app,
        [
            *("experiment", "analyze", "--events", str(events), "--control", "control"),
            *("--metric", "clicks/impressions", "--weight", "control=1", "--weight", "b=1"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Experiment analysis" in result.stdout
    assert "Recommendation: KEEP RUNNING" in result.stdout
    assert "SRM ok" in result.stdout


def test_srm_is_reported_as_the_reason(tmp_path: Path) -> None:
    events = _csv(tmp_path, n=20_000, split={"control": 0.53, "b": 0.47}, seed=3)
    result = runner.invoke(
        app,
        [
            *("experiment", "analyze", "--events", str(events), "--control", "control"),
            *("--metric", "clicks", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout)["recommendation"]
    assert rec["decision"] == "dont_ship"
    assert rec["reasons"][0].startswith("SRM: assignment is broken, do not read the result")


def _bad_csv(tmp_path: Path, edit: str) -> Path:
    path = tmp_path / "bad.csv"
    frame = make_units(300, seed=4)
    if edit == "non-numeric":
        frame["clicks"] = frame["clicks"].astype(object)
        frame.loc[6, "clicks"] = "many"
    elif edit == "missing":
        frame = frame.drop(columns="impressions")
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("edit", "args", "message"),
    [
        ("non-numeric", [], "bad.csv: line 8, column 'clicks': column 'clicks' is not a finite"),
        ("missing", [], "bad.csv: column 'impressions': missing column(s) ['impressions']"),
        ("none", ["--control", "ctrl"], "control variant 'ctrl' is not in column 'variant'"),
        ("none", ["--guardrail", "latency_ms:up:1"], "`direction` must be 'increase' or"),
        ("none", ["--weight", "control"], "--weight must be VARIANT=NUMBER"),
    ],
)
def test_bad_input_is_one_clean_line_and_exit_2(
    tmp_path: Path, edit: str, args: list[str], message: str
) -> None:
    events = _bad_csv(tmp_path, edit)
    control = [] if "--control" in args else ["--control", "control"]
    result = runner.invoke(
        app,
        [
            *("experiment", "analyze", "--events", str(events), *control, *args),
            *("--metric", "clicks/impressions"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    for path, message in (
        (tmp_path / "absent.csv", "absent.csv: no such file"),
        (tmp_path / "units.txt", "expected a .csv or .parquet file (got '.txt')"),
    ):
        if path.suffix == ".txt":
            path.write_text("unit_id,variant\n")
        result = runner.invoke(
            app,
            ["experiment", "analyze", "--events", str(path), "--control", "c", "--metric", "m"],
        )
        assert result.exit_code == 2 and message in result.stderr
