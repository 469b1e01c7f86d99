"""recops.ope against frozen Open Bandit Pipeline (obp 0.5.7) numbers, to 1e-9.

The vectors and how they were made: tests/ope/reference/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recops.ope.batch import OPEBatch
from recops.ope.direct import DirectMethod
from recops.ope.doubly_robust import (
    DoublyRobust,
    DoublyRobustWithShrinkage,
    SelfNormalizedDR,
    SwitchDoublyRobust,
)
from recops.ope.feedback import LoggedFeedback, read_obd
from recops.ope.importance import InverseProbabilityWeighting, SelfNormalizedIPW
from recops.ope.slate import (
    SlateBatch,
    SlateIndependentIPS,
    SlateRewardInteractionIPS,
    SlateStandardIPS,
)

REFERENCE = json.loads((Path(__file__).parent / "reference" / "obp_vectors.json").read_text())

ESTIMATORS = {
    "ips": InverseProbabilityWeighting(),
    "ips_clip3": InverseProbabilityWeighting(max_weight=3.0),
    "snips": SelfNormalizedIPW(),
    "dm": DirectMethod(),
    "dr": DoublyRobust(),
    "dr_clip3": DoublyRobust(max_weight=3.0),
    "sndr": SelfNormalizedDR(),
    "switch_dr_tau2": SwitchDoublyRobust(max_weight=2.0),
    "dros_lambda10": DoublyRobustWithShrinkage(shrinkage=10.0),
}


def _grid(n_rows: int, n_actions: int, len_list: int) -> tuple[np.ndarray, ...]:
    i = np.arange(n_rows, dtype=np.float64)[:, None, None]
    a = np.arange(n_actions, dtype=np.float64)[None, :, None]
    k = np.arange(len_list, dtype=np.float64)[None, None, :]
    return i, a, k


def formula_action_dist(n_rows: int, n_actions: int, len_list: int) -> np.ndarray:
    """Same closed form as make_obp_vectors.formula_action_dist."""
    i, a, k = _grid(n_rows, n_actions, len_list)
    logits = 3.0 * np.sin(0.013 * i + 0.37 * a + 1.3 * k)
    logits -= logits.max(axis=1, keepdims=True)
    expo = np.exp(logits)
    return expo / expo.sum(axis=1, keepdims=True)


def formula_q_hat(n_rows: int, n_actions: int, len_list: int) -> np.ndarray:
    """Same closed form as make_obp_vectors.formula_q_hat."""
    i, a, k = _grid(n_rows, n_actions, len_list)
    return 0.002 + 0.01 * (0.5 + 0.5 * np.cos(0.05 * i + 0.11 * a - 0.7 * k))


@pytest.fixture(scope="module")
def random_all(shared_data: Path) -> LoggedFeedback:
    return read_obd(shared_data / "obd", behavior_policy="random", campaign="all")


def test_loader_follows_obp_conventions(random_all: LoggedFeedback) -> None:
    checks = REFERENCE["checks"]
    assert random_all.n_rows == REFERENCE["n_rounds"]
    assert random_all.n_actions == REFERENCE["n_actions"]
    assert random_all.len_list == REFERENCE["len_list"]
    assert int(random_all.action.sum()) == checks["action_sum"]
    assert random_all.action[:50].tolist() == checks["action_head"]
    assert random_all.position[:50].tolist() == checks["position_head"]
    assert np.bincount(random_all.position).tolist() == checks["position_counts"]
    assert random_all.reward.sum() == checks["reward_sum"]
    assert random_all.pscore.sum() == pytest.approx(checks["pscore_sum"], abs=1e-9)


@pytest.mark.parametrize("target", ["bts", "formula"])
def test_estimates_equal_obp(random_all: LoggedFeedback, target: str) -> None:
    shape = (random_all.n_rows, random_all.n_actions, random_all.len_list)
    if target == "bts":
        action_dist = np.asarray(REFERENCE["bts_action_dist"])
    else:
        action_dist = formula_action_dist(*shape)
    batch = OPEBatch.from_action_dist(random_all, action_dist, formula_q_hat(*shape))
    expected = REFERENCE["estimates"][target]
    assert set(expected) == set(ESTIMATORS)
    for name, estimator in ESTIMATORS.items():
        value = estimator.estimate_policy_value(batch)
        assert value == pytest.approx(expected[name], abs=1e-9, rel=0), name


def test_slate_estimates_equal_obp() -> None:
    ref = REFERENCE["slate"]
    n_slates, len_list = ref["n_slates"], ref["len_list"]
    slate_id = np.repeat(np.arange(n_slates), len_list)
    k = np.tile(np.arange(len_list), n_slates)
    pscore_ip = 0.05 + 0.2 * (0.5 + 0.5 * np.sin(0.3 * slate_id + k))
    target_ip = 0.02 + 0.3 * (0.5 + 0.5 * np.cos(0.2 * slate_id - k))
    pscore_cascade = np.cumprod(pscore_ip.reshape(n_slates, len_list), axis=1).ravel()
    target_cascade = np.cumprod(target_ip.reshape(n_slates, len_list), axis=1).ravel()
    batch = SlateBatch(
        slate_id=slate_id,
        reward=((slate_id * 7 + k * 3) % 5 == 0).astype(float),
        pscore_slate=np.repeat(pscore_cascade.reshape(n_slates, len_list)[:, -1], len_list),
        target_pscore_slate=np.repeat(target_cascade.reshape(n_slates, len_list)[:, -1], len_list),
        pscore_item_position=pscore_ip,
        target_pscore_item_position=target_ip,
        pscore_cascade=pscore_cascade,
        target_pscore_cascade=target_cascade,
    )
    for estimator in (SlateStandardIPS(), SlateIndependentIPS(), SlateRewardInteractionIPS()):
        value = estimator.estimate_policy_value(batch)
        assert value == pytest.approx(ref[estimator.name], abs=1e-9, rel=0), estimator.name
