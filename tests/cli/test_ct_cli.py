"""``recops ct``: step, train, status and log on a tiny world, clean errors, and the demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from recops.cli import app
from tests.ct.conftest import Site, add_clicks, ct_document

runner = CliRunner()


def _ct(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["ct", *args])
    return result.exit_code, result.output


def test_step_train_status_and_log(site: Site, tracking_uri: str, tmp_path: Path) -> None:
    config = tmp_path / "ct.yaml"
    config.write_text(yaml.safe_dump(ct_document(site, tracking_uri)), encoding="utf-8")
    code, out = _ct("step", "--config", str(config), "--now", str(site.end), "--json")
    assert code == 0, out
    first = json.loads(out)["decisions"]
    assert [d["action"] for d in first] == ["train", "promote", "done"]
    assert first[0]["reason"] == "bootstrap: no champion of 'two_tower' yet: train one"

    code, out = _ct("step", "--config", str(config), "--now", str(site.end + 60))
    assert code == 0 and "no decision: nothing to do this round" in out

    add_clicks(site, site.end + 120, 80)
    code, out = _ct(
        "train", "-c", str(config), "-m", "new data", "--now", str(site.end + 600), "--json"
    )
    assert code == 0, out
    started = json.loads(out)["decisions"]
    assert [d["action"] for d in started] == ["train", "gate_passed", "test_started"]
    assert started[-1]["reason"].startswith("A/B test ct-two_tower-2: champion version 1")

    code, out = _ct("status", "--config", str(config), "--json")
    assert code == 0, out
    status = json.loads(out)
    assert (status["state"], status["champion"], status["challenger"]) == (
        "experimenting", "1", "2"
    )  # fmt: skip
    assert status["cycle"]["experiment"] == "ct-two_tower-2" and status["cycles"] == 2
    code, out = _ct("status", "--config", str(config))
    assert code == 0 and "experimenting" in out and "ct-two_tower-2" in out

    code, out = _ct("log", "--config", str(config), "--cycle", "2", "--json")
    assert code == 0
    logged = json.loads(out)["decisions"]
    assert [d["action"] for d in logged] == ["train", "gate_passed", "test_started"]
    assert logged[0]["reason"] == "manual: new data"
    code, out = _ct("log", "--config", str(config), "--limit", "1")
    assert code == 0 and "recops ct log · 1 decisions" in out and "test_start" in out

    # A cycle starts only from idle: a clear refusal, no traceback.
    code, out = _ct("train", "-c", str(config), "-m", "again", "--now", str(site.end + 700))
    assert code == 2 and "is experimenting (cycle 2): a cycle starts only from idle" in out


def test_run_steps_until_told_to_stop(site: Site, tracking_uri: str, tmp_path: Path) -> None:
    document = {**ct_document(site, tracking_uri), "poll_interval_s": 0.01}
    config = tmp_path / "ct.json"
    config.write_text(json.dumps(document), encoding="utf-8")
    code, out = _ct("run", "--config", str(config), "--max-steps", "2", "--json")
    assert code == 0, out
    actions = [json.loads(line)["action"] for line in out.splitlines() if line.startswith("{")]
    assert actions == ["train", "promote", "done"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("experiment: {min_duration_s: 10, max_duration_s: 5}\n", "max_duration_s (5) must be"),
        ("triggers: {volume: {min_new_events: 0}}\n", "triggers.volume.min_new_events"),
        ("pipeline: nowhere.toml\n", "field `pipeline`"),
    ],
)
def test_a_bad_config_names_the_file_and_the_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    config = tmp_path / "ct.yaml"
    config.write_text(text, encoding="utf-8")
    code, out = _ct("status", "--config", str(config))
    assert code == 2, out
    assert str(config) in out.replace("\n", "") and expected in out.replace("\n", "")
    assert "Traceback" not in out


def test_the_demo_shows_drift_retraining_a_shipped_test_and_a_refused_model(
    tmp_path: Path,
) -> None:
    out = tmp_path / "ct-demo"
    code, text = _ct("demo", "--out", str(out), "--quick")
    assert code == 0, text
    flat = " ".join(text.split())
    assert "drift: the monitor asks for retraining: click_category drifted" in flat
    assert "test_started" in flat and "ship: challenger: significantly better" in flat
    assert "watch passed" in flat
    assert "the gate kept the broken model out: the gate refused version" in flat
    assert "the loop replaced a champion with true CTR" in flat
    assert "the cycle's decisions, with their timings" in flat
    code, log = _ct("log", "--config", str(out / "ct.yaml"), "--json")
    assert code == 0
    decisions = json.loads(log)["decisions"]
    assert [d["action"] for d in decisions].count("promote") == 2  # the first model, the test's
