"""Input validation: every message names the argument and what came."""

from __future__ import annotations

import numpy as np
import pytest

from recops.ope.batch import OPEBatch
from recops.ope.feedback import LoggedFeedback


def _feedback(**overrides) -> LoggedFeedback:
    values = {
        "action": np.array([0, 1, 2]),
        "reward": np.array([1.0, 0.0, 1.0]),
        "pscore": np.array([0.5, 0.5, 0.5]),
        "n_actions": 3,
        "position": np.array([0, 1, 0]),
    }
    values.update(overrides)
    return LoggedFeedback(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"pscore": np.array([0.5, 0.0, 0.5])},
            r"`pscore` must be in \(0, 1\] \(got 0.0 at index 1\)",
        ),
        ({"pscore": np.array([0.5, 1.5, 0.5])}, r"`pscore` must be in \(0, 1\]"),
        ({"pscore": np.array([0.5, 0.5])}, "`pscore` must have length 3"),
        ({"action": np.array([0, 3, 1])}, r"`action` must be in 0..2 \(got 3 at index 1\)"),
        ({"action": np.array([0.5, 1, 1])}, "`action` must hold integers"),
        ({"reward": np.array([1.0, np.nan, 0.0])}, "`reward` must be finite"),
        ({"reward": np.array([])}, "`reward` must not be empty"),
        ({"n_actions": 0}, "`n_actions` must be an int >= 1"),
        ({"position": np.array([0, -1, 0])}, "`position` must be in"),
        ({"context": np.ones((2, 4))}, r"`context` must have shape \(3, n_features\)"),
    ],
)
def test_feedback_rejects_bad_inputs(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        _feedback(**overrides)


def test_action_dist_shape_and_sums_are_checked() -> None:
    fb = _feedback()
    with pytest.raises(ValueError, match=r"`action_dist` must have shape \(3, 2\) or \(3, 3, 2\)"):
        OPEBatch.from_action_dist(fb, np.full((3, 1), 1 / 3))
    bad = np.full((3, 2), 1 / 3)
    bad[0, 1] = 0.5
    with pytest.raises(ValueError, match="`action_dist` must sum to 1 over actions"):
        OPEBatch.from_action_dist(fb, bad)
    negative = np.array([[1.5, 0.5], [-0.5, 0.5], [0.0, 0.0]])
    with pytest.raises(ValueError, match="non-negative"):
        OPEBatch.from_action_dist(fb, negative)
    with pytest.raises(ValueError, match=r"`estimated_rewards` must have shape \(3, 3, 2\)"):
        OPEBatch.from_action_dist(fb, np.full((3, 2), 1 / 3), np.zeros((3, 3)))


def test_context_free_and_per_row_action_dists_agree() -> None:
    fb = _feedback()
    dist = np.array([[0.2, 0.5], [0.3, 0.25], [0.5, 0.25]])
    q_hat = np.random.default_rng(0).random((3, 3, 2))
    flat = OPEBatch.from_action_dist(fb, dist, q_hat)
    full = OPEBatch.from_action_dist(fb, np.broadcast_to(dist, (3, 3, 2)), q_hat)
    np.testing.assert_allclose(flat.target_pscore, [0.2, 0.25, 0.5])
    np.testing.assert_allclose(flat.target_pscore, full.target_pscore)
    assert flat.q_hat_target is not None and full.q_hat_target is not None
    np.testing.assert_allclose(flat.q_hat_target, full.q_hat_target)
    # Row 1 is at position 1: Σ_a π(a | k=1) q̂(1, a, 1).
    assert flat.q_hat_target[1] == pytest.approx(dist[:, 1] @ q_hat[1, :, 1])


def test_batch_checks_its_arrays() -> None:
    with pytest.raises(ValueError, match=r"`target_pscore` must be in \[0, 1\]"):
        OPEBatch(reward=[1.0], pscore=[0.5], target_pscore=[1.2])
    with pytest.raises(ValueError, match="must be given together"):
        OPEBatch(reward=[1.0], pscore=[0.5], target_pscore=[0.2], q_hat_factual=[0.1])
