"""The experiment report: the terminal table and the HTML page with its three plots."""

from __future__ import annotations

import base64
import re

from rich.console import Console

from recops.experiments.report import analysis_table, render_html
from recops.experiments.stats import analyze
from tests.experiments.stats.units import make_units


def test_html_has_the_recommendation_the_table_and_three_png_plots() -> None:
    frame = make_units(3000, lift=0.2, split={"control": 1, "b": 1, "c": 1}, seed=0)
    result = analyze(
        frame, "control", ["clicks/impressions", "clicks"], guardrails=["latency_ms:increase:0.1"]
    )
    page = render_html(result, frame, title="ranker <v2>")
    assert "<title>ranker &lt;v2&gt;</title>" in page
    assert "Recommendation:" in page and result.recommendation.reasons[0][:20] in page
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(pngs) == 3
    assert all(base64.b64decode(p).startswith(b"\x89PNG") for p in pngs)
    # One table row per metric × variant, guardrail metric included.
    assert page.count("<tr><td>") == 6
    assert "latency_ms (guardrail)" in page


def test_html_without_timestamps_plots_against_units() -> None:
    frame = make_units(600, seed=1, pre=False).drop(columns="timestamp")
    result = analyze(frame, "control", ["clicks"])
    assert page_ok(render_html(result, frame))


def page_ok(page: str) -> bool:
    return page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")


def test_terminal_table_shows_each_comparison_and_the_srm_line() -> None:
    frame = make_units(2000, seed=2)
    result = analyze(
        frame, "control", ["clicks/impressions"], guardrails=["latency_ms:increase:0.1"]
    )
    console = Console(width=200, record=True)
    console.print(analysis_table(result))
    text = console.export_text()
    assert "clicks/impressions" in text and "· b (guardrail)" in text and "latency_ms" in text
    narrow = Console(width=80, record=True)
    narrow.print(analysis_table(result))
    lines = narrow.export_text().splitlines()
    assert max(map(len, lines)) <= 80
    assert any(line.startswith("│ clicks/impressions") for line in lines), "not folded"
    assert "SRM ok" in text and "KEEP RUNNING" in text
