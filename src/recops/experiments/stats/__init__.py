"""A/B-test statistics: Welch and delta-method tests, CUPED, confidence sequences, SRM,
multiple testing, guardrails, and :func:`analyze`, which runs them all on a per-unit
table and recommends ship / don't ship / keep running.

Pure statistics on NumPy / pandas: nothing here imports serving, pipelines or the CLI.
"""

from recops.experiments.stats.analysis import (
    AdjustedPValues,
    AnalysisResult,
    Comparison,
    CupedResult,
    Recommendation,
    analyze,
)
from recops.experiments.stats.cuped import CupedAdjustment, CupedArm, cuped
from recops.experiments.stats.fixed import FixedHorizonTest, Lift, welch_test
from recops.experiments.stats.guardrails import Guardrail, GuardrailVerdict, judge_guardrail
from recops.experiments.stats.metrics import Metric
from recops.experiments.stats.multiple import benjamini_hochberg, holm
from recops.experiments.stats.sequential import SequentialTest, sequential_test
from recops.experiments.stats.srm import SampleRatioTest, sample_ratio_test
from recops.experiments.stats.summary import (
    ArmSummary,
    linearize_ratio,
    summarize_mean,
    summarize_ratio,
)
from recops.experiments.stats.table import UnitTableError, check_unit_table
from recops.experiments.stats.timeline import RunningTests, Timeline, running_tests, timeline

__all__ = [
    "AdjustedPValues",
    "AnalysisResult",
    "ArmSummary",
    "Comparison",
    "CupedAdjustment",
    "CupedArm",
    "CupedResult",
    "FixedHorizonTest",
    "Guardrail",
    "GuardrailVerdict",
    "Lift",
    "Metric",
    "Recommendation",
    "RunningTests",
    "SampleRatioTest",
    "SequentialTest",
    "Timeline",
    "UnitTableError",
    "analyze",
    "benjamini_hochberg",
    "check_unit_table",
    "cuped",
    "holm",
    "judge_guardrail",
    "linearize_ratio",
    "running_tests",
    "sample_ratio_test",
    "sequential_test",
    "summarize_mean",
    "summarize_ratio",
    "timeline",
    "welch_test",
]
