"""``recops ope`` through the real Typer app, on OBD and on an exposure log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from recops.cli import app
from recops.ope.exposures import write_exposures

runner = CliRunner()


def test_ope_on_the_open_bandit_dataset(shared_data: Path, tmp_path: Path) -> None:
    policy = tmp_path / "uniform.npy"
    np.save(policy, np.full((80, 3), 1 / 80))
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            *("ope", "--logs", str(shared_data / "obd"), "--policy", str(policy)),
            *("--format", "obd", "--out-dir", str(out), "--json", "--truth", "0.0038"),
        ],
    )
    assert result.exit_code == 0, result.output
    estimates = json.loads(result.stdout)
    # The uniform target is the logging policy: IPS is the on-policy click rate.
    assert estimates["ips"]["value"] == np.float64(38 / 10000)
    assert estimates["ips"]["ess"] == 10000
    assert (out / "report.json").is_file() and (out / "report.html").is_file()
    assert json.loads((out / "report.json").read_text())["truth"] == 0.0038


def test_ope_on_an_exposure_log_prints_a_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "timestamp": np.arange(n),
            "unit": [f"u{i % 37}" for i in range(n)],
            "position": np.zeros(n, dtype=int),
            "item_id": rng.choice(["a", "b", "c", "d"], n),
            "propensity": np.full(n, 0.25),
            "reward": (rng.random(n) < 0.2).astype(float),
        }
    )
    logs = write_exposures(frame, tmp_path / "exposures.parquet")
    policy = tmp_path / "target.npy"
    np.save(policy, np.array([[0.1], [0.2], [0.3], [0.4]]))
    result = runner.invoke(
        app,
        [
            *("ope", "--logs", str(logs), "--format", "exposures", "--policy", str(policy)),
            *("--out-dir", str(tmp_path / "out"), "--interval", "bootstrap"),
            *("--n-bootstrap", "50"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Recommendation:" in result.output and "snips" in result.output


def test_ope_reports_bad_inputs(tmp_path: Path) -> None:
    policy = tmp_path / "bad.npy"
    np.save(policy, np.full((3, 1), 0.5))
    frame = pd.DataFrame(
        {
            "timestamp": [1, 2],
            "unit": ["u", "v"],
            "position": [0, 0],
            "item_id": ["a", "b"],
            "propensity": [0.5, 0.5],
            "reward": [1.0, 0.0],
        }
    )
    logs = write_exposures(frame, tmp_path / "e.csv")
    result = runner.invoke(
        app, ["ope", "--logs", str(logs), "--format", "exposures", "--policy", str(policy)]
    )
    assert result.exit_code == 2
    assert "`action_dist` must have shape (2, 1)" in result.output


def test_ope_with_a_ranking_policy_over_logged_candidates(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = []
    for r in range(120):
        scores = rng.normal(size=4).round(3).tolist()
        shown = rng.permutation(4)[:2]
        for k, j in enumerate(shown):
            rows.append(
                {
                    "timestamp": r,
                    "unit": f"u{r}",
                    "position": k,
                    "item_id": "abcd"[j],
                    # A uniform ordered pair out of 4: each item has 1/4 at each slot.
                    "propensity": 0.25,
                    "reward": float(rng.random() < 0.3),
                    "candidates": list("abcd"),
                    "candidate_scores": scores,
                }
            )
    logs = write_exposures(pd.DataFrame(rows), tmp_path / "exposures.jsonl")
    common = ["ope", "--logs", str(logs), "--format", "exposures", "--json"]
    result = runner.invoke(
        app, [*common, "--ranking-policy", "greedy", "--out-dir", str(tmp_path / "a")]
    )
    assert result.exit_code == 0, result.output
    estimates = json.loads(result.stdout)
    # A greedy target on the logged scores: weight 4 where the log matches it, else 0.
    assert estimates["ips"]["max_weight"] == 4.0
    challenger = tmp_path / "scores.npy"
    np.save(challenger, rng.normal(size=(120, 4)))
    result = runner.invoke(
        app,
        [
            *common,
            *("--ranking-policy", "plackett-luce", "--temperature", "0.5"),
            *("--target-scores", str(challenger), "--out-dir", str(tmp_path / "b")),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["snips"]["n"] == 240
    both = runner.invoke(app, [*common, "--ranking-policy", "greedy", "--policy", "x.npy"])
    assert both.exit_code == 2 and "exactly one target" in both.output
