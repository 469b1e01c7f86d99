"""``recops monitor report`` on a small world's log: tables, JSON, stored results, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recops.cli import app
from recops.cli.monitor import parse_duration
from recops.data.world import WorldConfig, generate_world
from recops.monitoring.store import load_drift_history, load_latest, load_metrics
from recops.monitoring.world import replay_world
from recops.serving.eventlog import SQLiteEventLog

runner = CliRunner()


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitor-cli")
    config = WorldConfig(n_users=200, n_items=400, days=5, seed=2, exploration=1.0)
    world, data = generate_world(config)
    data.save(root / "world")
    log = SQLiteEventLog(root / "events.sqlite3", synchronous="NORMAL")
    try:
        replay_world(
            world,
            data.interactions,
            log,
            versions=((0, "1"), (config.start_time + 3 * 86_400, "2")),
        )
    finally:
        log.close()
    return root


def _run(root: Path, *args: str):
    return runner.invoke(
        app,
        ["monitor", "report", "--event-log", str(root / "events.sqlite3"), *args],
        catch_exceptions=False,
    )


def test_report_prints_tables_and_stores_results(logged: Path) -> None:
    out = logged / "results"
    result = _run(
        logged,
        "--catalog", str(logged / "world"), "--current-hours", "48", "--reference-hours", "48",
        "--bucket", "6h", "--out", str(out), "--html", str(logged / "r.html"),
        "--prometheus", str(logged / "m.prom"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("click_category", "item_age_hours", "world/2", "Online metrics", "Wrote"):
        assert text in result.output
    latest = load_latest(out)
    assert isinstance(latest["should_retrain"], bool)
    assert len(latest["drift"]["features"]) == 5
    metrics = load_metrics(out)
    assert set(metrics["version"]) == {"*", "1", "2"}
    assert (metrics["bucket_start"] % 21_600 == 0).all()
    assert len(load_drift_history(out)) == 1
    page = (logged / "r.html").read_text()
    # Self-contained: inline SVG, nothing fetched (namespace URIs are not fetched).
    assert page.count("<svg") >= 5 and 'src="http' not in page and "<link" not in page
    assert "recops_monitor_should_retrain" in (logged / "m.prom").read_text()


def test_json_output(logged: Path) -> None:
    result = _run(logged, "--catalog", str(logged / "world"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"should_retrain", "reasons", "alerts", "drift", "current_metrics"} <= set(data)
    rows = {r["version"]: r for r in data["current_metrics"]}
    assert rows["*"]["requests"] == rows["2"]["requests"] > 0


def test_training_reference(logged: Path) -> None:
    result = _run(
        logged, "--catalog", str(logged / "world"), "--training", str(logged / "world"), "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["drift"]["reference"]["source"] == "training interactions"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--catalog", "/nonexistent/items.parquet"], "no such file (--catalog)"),
        (["--bucket", "soon"], "--bucket: expected a duration"),
        (["--config", "/nonexistent.toml"], "cannot be read"),
    ],
)
def test_bad_input_is_one_line(logged: Path, args: list[str], message: str) -> None:
    result = runner.invoke(
        app, ["monitor", "report", "--event-log", str(logged / "events.sqlite3"), *args]
    )
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_missing_log_and_bad_config(tmp_path: Path, logged: Path) -> None:
    result = runner.invoke(
        app, ["monitor", "report", "--event-log", str(tmp_path / "none.sqlite3")]
    )
    assert result.exit_code == 2 and "no event log there" in result.output
    bad = tmp_path / "monitor.toml"
    bad.write_text("psi_threshold = -1\n[features.click_categry]\nretrain = false\n")
    result = _run(logged, "--config", str(bad))
    assert result.exit_code == 2 and "monitor.toml" in result.output


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("90", "15m", "1h", "2d")] == [90, 900, 3_600, 172_800]
