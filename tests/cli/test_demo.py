"""``recops demo`` end to end on a tiny world: every step runs and reports."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from recops.cli import app


def test_demo_runs_every_step_on_a_tiny_world(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--users", "150", "--items", "400", "--days", "5"]
    # The continuous-training step has its own test (tests/cli/test_ct_cli.py).
    extra = ["--quick", "--loadtest-seconds", "1", "--ab-requests", "300", "--no-ct"]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    text = result.output
    headings = (
        "1 · the world",
        "2 · train and evaluate",
        "3 · serve",
        "4 · off-policy",
        "5 · an A/B",
    )
    for heading in headings:
        assert heading in text
    for model in ("MostPopular", "RecentPopular", "ItemKNN", "EASE", "ALS", "TwoTower"):
        assert model in text
    assert "right after one click" in text
    assert "error vs truth" in text
    # The A/B step: the server's own analysis, and estimates beside the world's truth.
    assert "Recommendation:" in text and "world's truth" in text
    assert (out / "champion-exposures.parquet").is_file()
    assert (out / "models" / "two_tower" / "2" / "config.json").is_file()
    assert (out / "data" / "interactions.parquet").is_file()
    assert (out / "models" / "two_tower" / "1" / "config.json").is_file()
    assert (out / "events.sqlite3").is_file()


def test_demo_rejects_a_world_too_small() -> None:
    result = CliRunner().invoke(app, ["demo", "--users", "3"])
    assert result.exit_code == 2
    assert "--users" in result.output
