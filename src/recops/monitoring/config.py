"""What the monitor compares, and when a difference is drift: a pydantic config.

A feature *drifts* when both its PSI reaches ``psi_threshold`` and its test (KS for
numeric features, χ² for categorical ones) is significant at ``alpha``: the PSI says the
shift is large enough to matter, the test that it is not sampling noise (with a few
dozen values a PSI is mostly noise; with thousands, a test finds any shift
significant). Fewer than ``min_samples`` values in either window: no verdict.

The defaults: PSI 0.1 is where the rule of thumb ends "no shift" (Siddiqi 2006) and
Evidently's default; on the world generator no feature reaches it without an injected
drift (``benchmarks/drift_detection.py``).

A config file is TOML or JSON with these fields, e.g.::

    psi_threshold = 0.1
    alpha = 0.01
    [features.served_score]
    psi_threshold = 0.2
    retrain = false
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recops.config_files import Format, line_of, parse_config_text
from recops.monitoring.features import FEATURE_NAMES


class MonitorConfigError(ValueError):
    """A monitoring config that cannot be used; the message says what to fix."""


class FeatureRule(BaseModel):
    """Per-feature overrides of :class:`DriftConfig`'s thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi_threshold: float | None = Field(default=None, gt=0, description="PSI at which it drifts.")
    alpha: float | None = Field(default=None, gt=0, lt=1, description="Level of its test.")
    retrain: bool = Field(default=True, description="Whether its drift asks for retraining.")


class DriftConfig(BaseModel):
    """Thresholds of the drift check (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi_threshold: float = Field(default=0.1, gt=0, description="PSI at which a feature drifts.")
    alpha: float = Field(
        default=0.01, gt=0, lt=1, description="Level of the KS / χ² test a drift also needs."
    )
    n_bins: int = Field(default=10, ge=2, le=100, description="Reference quantile bins of PSI.")
    epsilon: float = Field(
        default=1e-4, gt=0, le=0.01, description="Share standing in for an empty bin in PSI."
    )
    min_samples: int = Field(
        default=200, ge=1, description="Fewest values per window for a verdict on a feature."
    )
    history_window_s: int = Field(
        default=7 * 86_400, gt=0, description="Window `history_length` counts clicks in."
    )
    click_event: str = Field(default="click", min_length=1, description="Event type of a click.")
    features: dict[str, FeatureRule] = Field(
        default_factory=dict, description="Per-feature overrides, by feature name."
    )

    @model_validator(mode="after")
    def _known_features(self) -> Self:
        for name in self.features:
            if name not in FEATURE_NAMES:
                close = difflib.get_close_matches(name, FEATURE_NAMES, n=1)
                hint = (
                    f"did you mean `{close[0]}`?" if close else f"one of {', '.join(FEATURE_NAMES)}"
                )
                raise ValueError(f"features: unknown feature `{name}`: {hint}")
        return self

    def rule(self, feature: str) -> tuple[float, float, bool]:
        """``(psi_threshold, alpha, retrain)`` of ``feature``, overrides applied."""
        own = self.features.get(feature, FeatureRule())
        return (
            self.psi_threshold if own.psi_threshold is None else own.psi_threshold,
            self.alpha if own.alpha is None else own.alpha,
            own.retrain,
        )


class MonitorConfig(DriftConfig):
    """The drift check plus the online metrics and their alerts."""

    bucket_s: int = Field(default=3_600, gt=0, description="Width of a metrics time bucket.")
    ctr_drop: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Relative CTR fall (current against reference) that raises an alert.",
    )
    min_impressions: int = Field(
        default=1_000, ge=1, description="Fewest impressions per window for a CTR alert."
    )

    @classmethod
    def from_file(cls, path: str | Path) -> MonitorConfig:
        """Read a TOML (``.toml``) or JSON file; errors name the file, the line and the field."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise MonitorConfigError(f"{file}: cannot be read ({exc.strerror})") from None
        fmt: Format = "toml" if file.suffix.lower() == ".toml" else "json"
        values, lines = parse_config_text(text, fmt, str(file), MonitorConfigError)
        if not isinstance(values, dict):
            raise MonitorConfigError(f"{file}: expected an object of monitoring fields")
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = [f"invalid monitoring config in {file}:"]
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "config"
                message = err["msg"].removeprefix("Value error, ")
                line = line_of(err["loc"], lines)
                at = f"line {line}, " if line is not None else ""
                problems.append(f"  - {at}`{field}`: {message} (got {err.get('input')!r})")
            raise MonitorConfigError("\n".join(problems)) from None
