"""Drift of each feature between a reference and a current window, and the verdict.

:func:`detect_drift` compares two :class:`~recops.monitoring.features.FeatureSample`
feature by feature with the statistics its kind calls for (numeric: PSI on the
reference's quantile bins and Kolmogorov–Smirnov; categorical: PSI per category and
χ²), applies the thresholds of :class:`~recops.monitoring.config.DriftConfig`, and
returns a :class:`DriftReport`: one :class:`FeatureDrift` per feature, and
``should_retrain`` with the reasons — what the continuous-training controller reads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recops.monitoring.config import DriftConfig
from recops.monitoring.features import BY_NAME, FEATURES, FeatureSample, Window
from recops.monitoring.statistics import (
    PSIResult,
    categorical_psi,
    chi_square_test,
    ks_test,
    numeric_psi,
)

Status = Literal["drift", "stable", "insufficient", "unavailable"]


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison.

    Parameters
    ----------
    feature, kind, side:
        The feature (see :mod:`recops.monitoring.features`).
    status:
        ``drift`` (PSI at or over its threshold and the test significant), ``stable``,
        ``insufficient`` (fewer than ``min_samples`` values in a window) or
        ``unavailable`` (a window has no values; ``reason`` says why).
    n_reference, n_current:
        Values per window.
    psi, test, statistic, p_value:
        The PSI, the test's name (``ks`` or ``chi2``), its statistic and p-value
        (None where not computed).
    psi_threshold, alpha:
        The thresholds applied.
    retrain:
        Whether this feature's drift asks for retraining (config).
    summary:
        Per window: ``mean``, ``median`` and ``p90`` (numeric) or each category's share
        (categorical).
    reason:
        One sentence saying what was found.
    bins:
        The binned distributions behind the PSI.
    """

    feature: str
    kind: str
    side: str
    status: Status
    n_reference: int
    n_current: int
    psi: float | None
    test: str | None
    statistic: float | None
    p_value: float | None
    psi_threshold: float
    alpha: float
    retrain: bool
    summary: dict[str, dict[str, float]]
    reason: str
    bins: PSIResult | None = None

    @property
    def drifted(self) -> bool:
        """Whether the feature drifted."""
        return self.status == "drift"

    def to_dict(self) -> dict[str, Any]:
        """Every field, ``bins`` as :meth:`PSIResult.to_dict`."""
        out = {k: v for k, v in asdict(self).items() if k != "bins"}
        out["bins"] = None if self.bins is None else self.bins.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureDrift:
        """The inverse of :meth:`to_dict`."""
        bins = data.get("bins")
        fields = {k: v for k, v in data.items() if k != "bins"}
        psi_bins = None
        if bins is not None:
            psi_bins = PSIResult(
                value=float(bins["value"]),
                labels=tuple(bins["labels"]),
                reference_shares=tuple(bins["reference_shares"]),
                current_shares=tuple(bins["current_shares"]),
                cuts=tuple(bins.get("cuts", ())),
            )
        return cls(**fields, bins=psi_bins)


@dataclass(frozen=True)
class DriftReport:
    """Every feature's drift between two windows, and whether to retrain.

    Parameters
    ----------
    reference, current:
        The windows compared.
    features:
        One :class:`FeatureDrift` per monitored feature.
    should_retrain:
        True when a feature whose rule has ``retrain`` drifted.
    reasons:
        Why (one sentence per drifting feature); empty when nothing drifted.
    notes:
        What the reader should know (e.g. scores of different model versions compared).
    config:
        The thresholds used.
    """

    reference: Window
    current: Window
    features: tuple[FeatureDrift, ...]
    should_retrain: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...] = ()
    config: DriftConfig = field(default_factory=DriftConfig)

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        """The features that drifted."""
        return tuple(f for f in self.features if f.drifted)

    def feature(self, name: str) -> FeatureDrift:
        """The comparison of feature ``name``."""
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(
            f"no feature {name!r} in the report (have {[f.feature for f in self.features]})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "reference": self.reference.to_dict(),
            "current": self.current.to_dict(),
            "should_retrain": self.should_retrain,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "features": [f.to_dict() for f in self.features],
            "config": self.config.model_dump(mode="json", include=set(DriftConfig.model_fields)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """The inverse of :meth:`to_dict`."""
        return cls(
            reference=Window(**data["reference"]),
            current=Window(**data["current"]),
            features=tuple(FeatureDrift.from_dict(f) for f in data["features"]),
            should_retrain=bool(data["should_retrain"]),
            reasons=tuple(data["reasons"]),
            notes=tuple(data.get("notes", ())),
            config=DriftConfig.model_validate(data.get("config", {})),
        )

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` to ``path``."""
        out = Path(path)
        out.write_text(
            json.dumps(self.to_dict(), indent=2, allow_nan=True) + "\n", encoding="utf-8"
        )
        return out

    @classmethod
    def read_json(cls, path: str | Path) -> DriftReport:
        """Read a report written by :meth:`write_json`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _numeric_summary(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(np.mean(values)),
        "median": float(np.median(values)),
        "p90": float(np.quantile(values, 0.9)),
    }


def _shares(bins: PSIResult, which: str) -> dict[str, float]:
    shares = bins.reference_shares if which == "reference" else bins.current_shares
    return dict(zip(bins.labels, shares, strict=True))


def _largest_change(bins: PSIResult) -> str:
    gaps = np.subtract(bins.current_shares, bins.reference_shares)
    j = int(np.argmax(np.abs(gaps)))
    return f"{bins.labels[j]} {bins.reference_shares[j]:.1%} → {bins.current_shares[j]:.1%}"


def _compare(name: str, ref: np.ndarray, cur: np.ndarray, config: DriftConfig) -> FeatureDrift:
    feature = BY_NAME[name]
    threshold, alpha, retrain = config.rule(name)
    if feature.kind == "numeric":
        bins = numeric_psi(ref, cur, bins=config.n_bins, epsilon=config.epsilon)
        ks = ks_test(ref, cur)
        test, statistic, p_value = "ks", ks.statistic, ks.p_value
        summary = {"reference": _numeric_summary(ref), "current": _numeric_summary(cur)}
        detail = (
            f"KS D = {statistic:.3f} (p = {p_value:.2g}); mean "
            f"{summary['reference']['mean']:.4g} → {summary['current']['mean']:.4g}"
        )
    else:
        bins = categorical_psi(ref, cur, epsilon=config.epsilon)
        chi = chi_square_test(ref, cur)
        test, statistic, p_value = "chi2", chi.statistic, chi.p_value
        summary = {"reference": _shares(bins, "reference"), "current": _shares(bins, "current")}
        detail = f"χ² = {statistic:.1f}, {chi.dof} dof (p = {p_value:.2g}); {_largest_change(bins)}"
    drifted = bins.value >= threshold and p_value < alpha
    verdict = "drifted" if drifted else "stable"
    reason = f"{name} {verdict}: PSI {bins.value:.3f} (threshold {threshold:g}), {detail}"
    return FeatureDrift(
        feature=name,
        kind=feature.kind,
        side=feature.side,
        status="drift" if drifted else "stable",
        n_reference=int(ref.size),
        n_current=int(cur.size),
        psi=bins.value,
        test=test,
        statistic=float(statistic),
        p_value=float(p_value),
        psi_threshold=threshold,
        alpha=alpha,
        retrain=retrain,
        summary=summary,
        reason=reason,
        bins=bins,
    )


def _without_verdict(
    name: str, status: Status, reason: str, n_ref: int, n_cur: int, config: DriftConfig
) -> FeatureDrift:
    feature = BY_NAME[name]
    threshold, alpha, retrain = config.rule(name)
    return FeatureDrift(
        feature=name,
        kind=feature.kind,
        side=feature.side,
        status=status,
        n_reference=n_ref,
        n_current=n_cur,
        psi=None,
        test=None,
        statistic=None,
        p_value=None,
        psi_threshold=threshold,
        alpha=alpha,
        retrain=retrain,
        summary={},
        reason=reason,
    )


def detect_drift(
    reference: FeatureSample, current: FeatureSample, config: DriftConfig | None = None
) -> DriftReport:
    """Compare every feature of ``current`` with ``reference``.

    Parameters
    ----------
    reference:
        The training window's features.
    current:
        Recent serving traffic's features.
    config:
        Thresholds; the defaults of :class:`~recops.monitoring.config.DriftConfig` when None.

    Returns
    -------
    DriftReport
    """
    config = config or DriftConfig()
    results = []
    for feature in FEATURES:
        name = feature.name
        ref, cur = reference.values.get(name), current.values.get(name)
        n_ref = 0 if ref is None else int(ref.size)
        n_cur = 0 if cur is None else int(cur.size)
        if ref is None or cur is None or n_ref == 0 or n_cur == 0:
            where = "reference" if n_ref == 0 else "current"
            why = (reference if n_ref == 0 else current).missing.get(name)
            reason = f"{name} not compared: the {where} window has no values"
            results.append(
                _without_verdict(
                    name,
                    "unavailable",
                    f"{reason} ({why})" if why else reason,
                    n_ref,
                    n_cur,
                    config,
                )
            )
        elif min(n_ref, n_cur) < config.min_samples:
            reason = (
                f"{name} not judged: {n_ref} reference and {n_cur} current values "
                f"(min_samples {config.min_samples})"
            )
            results.append(_without_verdict(name, "insufficient", reason, n_ref, n_cur, config))
        else:
            results.append(_compare(name, ref, cur, config))
    reasons = tuple(f.reason for f in results if f.drifted and f.retrain)
    notes = []
    if reference.versions and current.versions and reference.versions != current.versions:
        notes.append(
            "served_score compares scores of different model versions (reference "
            f"{', '.join(reference.versions)}; current {', '.join(current.versions)}): "
            "a drift there may be the change of model"
        )
    return DriftReport(
        reference=reference.window,
        current=current.window,
        features=tuple(results),
        should_retrain=bool(reasons),
        reasons=reasons,
        notes=tuple(notes),
        config=config,
    )
