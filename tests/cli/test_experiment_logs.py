"""``recops experiment export``: the server's exposure log as files OPE tools read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recops.cli import app
from recops.data.loaders.obd import load_obd_bandit_feedback
from recops.ope.exposures import read_exposures
from recops.serving.eventlog import SQLiteEventLog
from recops.serving.records import Assignment, Event, Exposure

runner = CliRunner()


@pytest.fixture()
def event_log(tmp_path: Path) -> Path:
    """A log with 40 slates of two variants (one exploring), clicks joined by request id."""
    path = tmp_path / "events.sqlite3"
    log = SQLiteEventLog(path)
    rng = np.random.default_rng(0)
    exposures, assignments, clicks = [], [], []
    for r in range(40):
        unit, variant = f"u{r % 10}", "a" if r % 2 else "b"
        items = [f"i{j}" for j in rng.choice(8, size=3, replace=False)]
        explore = variant == "b"
        exposures.append(
            Exposure(
                request_id=f"r{r}",
                timestamp=1_700_000_000 + r,
                unit=unit,
                model="news",
                version="2" if explore else "1",
                policy={"kind": "plackett_luce"} if explore else {"kind": "greedy"},
                items=items,
                propensities=[0.5, 0.3, 0.2] if explore else [1.0, 1.0, 1.0],
                scores=[0.3, 0.2, 0.1],
                experiment="exp",
                variant=variant,
                candidates=[f"i{j}" for j in range(8)] if explore else None,
                candidate_scores=[float(-j) for j in range(8)] if explore else None,
            )
        )
        assignments.append(Assignment("exp", unit, variant, 1_700_000_000))
        if r % 3 == 0:
            clicks.append(
                Event(unit, items[1], "click", 1.0, 1_700_000_100, {"request_id": f"r{r}"})
            )
    log.submit_exposures(exposures, assignments).result()
    log.append(clicks)
    log.close()
    return path


def test_export_exposures_reads_back_as_an_exposure_log(event_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "exp.parquet"
    result = runner.invoke(
        app, ["experiment", "export", "exp", "--event-log", str(event_log), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "120 shown items of 40 slates" in result.output
    log = read_exposures(out)
    assert log.feedback.reward.sum() == 14  # r0, r3, ..., r39
    assert log.candidates is not None and len(log.candidates) == 40


def test_export_obd_reads_back_with_the_obd_loader(event_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp.csv"
    result = runner.invoke(
        app,
        ["experiment", "export", "exp", "--format", "obd", "--event-log", str(event_log),
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    feedback = load_obd_bandit_feedback(out)
    assert feedback.n_rounds == 120 and feedback.len_list == 3
    assert feedback.reward.sum() == 14
    assert set(np.round(feedback.pscore, 6)) == {1.0, 0.5, 0.3, 0.2}


def test_export_errors_are_one_line(event_log: Path, tmp_path: Path) -> None:
    missing = runner.invoke(
        app,
        ["experiment", "export", "nope", "--event-log", str(event_log),
         "--out", str(tmp_path / "x.csv")],
    )  # fmt: skip
    assert missing.exit_code == 2 and "no exposures of experiment 'nope'" in missing.output
    absent = runner.invoke(
        app,
        ["experiment", "export", "exp", "--event-log", str(tmp_path / "none.sqlite3"),
         "--out", str(tmp_path / "x.csv")],
    )  # fmt: skip
    assert absent.exit_code == 2 and "no event log there" in absent.output


def _store(event_log: Path, name: str, **overrides: object) -> None:
    from recops.experiments.config import ExperimentConfig, ModelRef
    from recops.experiments.store import ExperimentStore

    values: dict[str, object] = {
        "name": name,
        "control": "a",
        "primary_metric": "clicks/impressions",
        "variants": [{"name": "a", "version": "1"}, {"name": "b", "version": "2"}],
    }
    values.update(overrides)
    config = ExperimentConfig.model_validate(values)

    def resolve(model: str | None, version: str | None, alias: str | None) -> ModelRef:
        return ModelRef("news", version or "1")

    with ExperimentStore(event_log) as store:
        store.create(config, resolve)


def test_analyze_name_reads_the_servers_log(event_log: Path) -> None:
    _store(event_log, "exp")
    result = runner.invoke(
        app, ["experiment", "analyze", "exp", "--event-log", str(event_log), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["control"] == "a" and report["primary_metric"] == "clicks/impressions"
    assert report["srm"]["counts"] == {"a": 5, "b": 5}
    assert report["metrics"]["clicks/impressions"]["variants"]["b"]["n"] == 5
    assert report["recommendation"]["decision"] == "keep_running"  # 10 units are too few


def test_analyze_name_of_an_interleaving_experiment(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    _store(path, "inter", type="interleaving")
    log = SQLiteEventLog(path)
    exposures, clicks = [], []
    for r in range(60):
        unit = f"u{r % 30}"
        exposures.append(
            Exposure(
                request_id=f"r{r}",
                timestamp=1_700_000_000 + r,
                unit=unit,
                model="news",
                version="1",
                policy={"kind": "team_draft"},
                items=["x", "y"],
                propensities=[0.5, 0.5],
                scores=[1.0, 0.5],
                experiment="inter",
                variant="interleaved",
                sources=["a", "b"] if r % 2 else ["b", "a"],
            )
        )
        # Users mostly click what "b" contributed.
        clicked = "x" if r % 2 == 0 else "y"
        clicks.append(Event(unit, clicked, "click", 1.0, 1_700_000_100, {"request_id": f"r{r}"}))
    log.submit_exposures(exposures).result()
    log.append(clicks)
    log.close()
    result = runner.invoke(
        app, ["experiment", "analyze", "inter", "--event-log", str(path), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["units"] == 30 and report["wins_b"] == 30 and report["winner"] == "b"
    table = runner.invoke(app, ["experiment", "analyze", "inter", "--event-log", str(path)])
    assert table.exit_code == 0 and "prefer b" in table.output


def test_analyze_needs_a_name_or_a_file(event_log: Path) -> None:
    neither = runner.invoke(app, ["experiment", "analyze"])
    assert neither.exit_code == 2 and "NAME or --events" in neither.output
    unknown = runner.invoke(app, ["experiment", "analyze", "nope", "--event-log", str(event_log)])
    assert unknown.exit_code == 2 and "nope" in unknown.output
