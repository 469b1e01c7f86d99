"""Slate estimators on a hand-computed toy case."""

from __future__ import annotations

import numpy as np
import pytest

from recops.ope.slate import (
    SlateBatch,
    SlateIndependentIPS,
    SlateRewardInteractionIPS,
    SlateStandardIPS,
)

# Two slates of two positions.
BATCH = SlateBatch(
    slate_id=np.array([7, 7, 3, 3]),
    reward=np.array([1.0, 0.0, 1.0, 1.0]),
    pscore_slate=np.array([0.2, 0.2, 0.1, 0.1]),
    target_pscore_slate=np.array([0.4, 0.4, 0.05, 0.05]),
    pscore_item_position=np.array([0.5, 0.4, 0.25, 0.4]),
    target_pscore_item_position=np.array([0.5, 0.1, 0.5, 0.2]),
    pscore_cascade=np.array([0.5, 0.2, 0.25, 0.1]),
    target_pscore_cascade=np.array([0.5, 0.4, 0.5, 0.05]),
)


def test_values_by_hand() -> None:
    # SIPS: slate 7: 2*(1+0) = 2; slate 3: 0.5*(1+1) = 1 -> 1.5
    assert SlateStandardIPS().estimate_policy_value(BATCH) == pytest.approx(1.5)
    # IIPS: slate 7: 1*1 + 0.25*0 = 1; slate 3: 2*1 + 0.5*1 = 2.5 -> 1.75
    assert SlateIndependentIPS().estimate_policy_value(BATCH) == pytest.approx(1.75)
    # RIPS: slate 7: 1*1 + 2*0 = 1; slate 3: 2*1 + 0.5*1 = 2.5 -> 1.75
    assert SlateRewardInteractionIPS().estimate_policy_value(BATCH) == pytest.approx(1.75)


def test_units_are_slates() -> None:
    est = SlateStandardIPS().estimate(BATCH)
    assert est.n == 2
    # One weight per slate: 2 and 0.5.
    assert est.ess == pytest.approx(2.5**2 / 4.25)


def test_missing_propensities_are_named() -> None:
    batch = SlateBatch(slate_id=[0, 0], reward=[1.0, 0.0])
    with pytest.raises(ValueError, match="SlateStandardIPS needs `pscore_slate`"):
        SlateStandardIPS().estimate(batch)
    with pytest.raises(ValueError, match="must be given together"):
        SlateBatch(slate_id=[0], reward=[1.0], pscore_cascade=[0.5])
    with pytest.raises(ValueError, match=r"`pscore_slate` must be in \(0, 1\]"):
        SlateBatch(slate_id=[0], reward=[1.0], pscore_slate=[0.0], target_pscore_slate=[0.5])
