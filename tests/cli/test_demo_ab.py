"""The A/B step's side-by-side table when the off-policy report trusts no estimator."""

from __future__ import annotations

from types import SimpleNamespace

from rich.console import Console

from recops.cli.demo_ab import _side_by_side


def _render(report: SimpleNamespace) -> str:
    arm = SimpleNamespace(n=400, mean=0.09, std_error=0.004)
    analysis = SimpleNamespace(comparison=lambda metric, variant: SimpleNamespace(treatment=arm))
    result = SimpleNamespace(arm=lambda name: SimpleNamespace(true_ctr=0.1))
    console = Console(width=200, record=True)
    console.print(_side_by_side(analysis, report, 0.095, result))
    return console.export_text()


def test_poor_overlap_is_said_not_crashed_on() -> None:
    dr = SimpleNamespace(estimator="dr", value=0.08, ci_low=0.05, ci_high=0.11)
    poor = SimpleNamespace(
        estimates=[dr], recommendation=SimpleNamespace(estimator=None, overlap="poor")
    )
    text = _render(poor)
    assert "no estimate trusted (poor overlap)" in text and "0.0950" in text
    good = SimpleNamespace(
        estimates=[dr], recommendation=SimpleNamespace(estimator="dr", overlap="good")
    )
    assert "OPE (dr), champion's log only" in _render(good)
