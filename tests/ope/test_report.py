"""Recommendation rules, JSON and HTML output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recops.ope.base import Estimate
from recops.ope.batch import OPEBatch
from recops.ope.report import evaluate_policy, recommend


def _estimate(name: str, value: float, ess: float, n: int = 1000, half: float = 0.01) -> Estimate:
    return Estimate(
        estimator=name,
        value=value,
        ci_low=value - half,
        ci_high=value + half,
        std_error=half / 2,
        interval="normal",
        alpha=0.05,
        ess=ess,
        n=n,
        max_weight=3.0,
    )


def test_good_overlap_recommends_dr_and_flags_a_biased_model() -> None:
    rec = recommend(
        [_estimate("ips", 0.5, 600), _estimate("dm", 0.7, 600), _estimate("dr", 0.5, 600)]
    )
    assert rec.overlap == "good" and rec.estimator == "dr"
    assert rec.warnings and "DM" in rec.warnings[0]


def test_moderate_overlap_prefers_self_normalised() -> None:
    rec = recommend([_estimate("ips", 0.5, 50), _estimate("snips", 0.5, 50)])
    assert (rec.overlap, rec.estimator) == ("moderate", "snips")
    rec = recommend(
        [_estimate("ips", 0.5, 50), _estimate("dr", 0.5, 50), _estimate("sndr", 0.5, 50)]
    )
    assert rec.estimator == "sndr"


def test_poor_overlap_recommends_nothing() -> None:
    rec = recommend([_estimate("ips", 0.5, 5.0), _estimate("dr", 0.5, 5.0)])
    assert rec.overlap == "poor" and rec.estimator is None
    assert "A/B test" in rec.reason


def test_report_writes_json_and_self_contained_html(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 500
    batch = OPEBatch(
        reward=(rng.random(n) < 0.3).astype(float),
        pscore=np.full(n, 0.5),
        target_pscore=rng.choice([0.25, 0.75], n),
        q_hat_factual=np.full(n, 0.3),
        q_hat_target=np.full(n, 0.3),
    )
    report = evaluate_policy(batch, truth=0.3, title="toy")
    names = [e.estimator for e in report.estimates]
    assert names == ["ips", "snips", "dm", "dr", "sndr", "switch_dr", "dros"]
    payload = json.loads(report.write_json(tmp_path / "r.json").read_text())
    assert set(payload["estimates"]) == set(names)
    assert payload["truth"] == 0.3
    page = report.write_html(tmp_path / "r.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page
    assert evaluate_policy(OPEBatch(reward=[1.0], pscore=[1.0], target_pscore=[1.0])).estimates
