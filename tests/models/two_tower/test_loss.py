"""The sampled softmax: logQ correction (sign included), accidental hits, weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from recops.models.base import Queries
from recops.models.two_tower import TwoTower
from recops.models.two_tower.loss import (
    CandidateLogQ,
    accidental_hits,
    correct_logits,
    sampled_softmax_loss,
)


def test_corrected_logits_subtract_log_q() -> None:
    raw = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    log_q = torch.log(torch.tensor([0.5, 2.0, 4.0]))
    expected = raw - log_q  # Yi et al. 2019: s^c(x, y_j) = s(x, y_j) - log p_j
    torch.testing.assert_close(correct_logits(raw, log_q), expected)


def test_correction_favours_rarely_sampled_positives() -> None:
    # Same raw logits; the positive of row 0 is sampled often, of row 1 rarely.
    raw = torch.zeros(2, 2)
    log_q = torch.log(torch.tensor([10.0, 0.1]))
    per_row = [
        sampled_softmax_loss(raw[i : i + 1, [i, 1 - i]], log_q[[i, 1 - i]]).item() for i in (0, 1)
    ]
    # The often-sampled positive is discounted, so predicting it costs more.
    assert per_row[0] > per_row[1]


def test_candidate_log_q_mixes_batch_and_uniform_sampling() -> None:
    prob = np.array([0.0, 0.5, 0.25, 0.25])
    logq = CandidateLogQ(prob, batch_size=8, uniform_negatives=6)
    np.testing.assert_allclose(
        logq.log_q(np.array([1, 2])), np.log([8 * 0.5 + 6 / 3, 8 * 0.25 + 6 / 3]), rtol=1e-6
    )


def test_accidental_hits_mask_other_copies_of_the_positive_only() -> None:
    positives = torch.tensor([7, 3, 7])
    candidates = torch.tensor([7, 3, 7, 3, 9])  # batch positives, then 2 uniform negatives
    mask = accidental_hits(positives, candidates)
    expected = torch.tensor(
        [
            [False, False, True, False, False],
            [False, False, False, True, False],
            [True, False, False, False, False],
        ]
    )
    assert torch.equal(mask, expected)
    logits = torch.zeros(3, 5)
    masked = sampled_softmax_loss(logits, mask=mask)
    # Row 0 keeps 4 candidates, row 1 keeps 4, row 2 keeps 4: loss = log 4.
    assert masked.item() == pytest.approx(np.log(4.0), rel=1e-6)


def test_row_weights_ignore_rows_with_zero_weight() -> None:
    logits = torch.tensor([[5.0, 0.0], [0.0, -5.0]])
    only_first = sampled_softmax_loss(logits, weights=torch.tensor([1.0, 0.0]))
    assert only_first.item() == pytest.approx(sampled_softmax_loss(logits[:1, :]).item())


def _popularity_only_data(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Every user draws items from one Zipf law: popularity is the only signal."""
    rng = np.random.default_rng(seed)
    n_items, n_users, per_user = 30, 160, 15
    prob = 1.0 / np.arange(1, n_items + 1)
    prob /= prob.sum()
    items = rng.choice(n_items, size=n_users * per_user, p=prob)
    frame = pd.DataFrame(
        {
            "user_id": np.repeat([f"u{u}" for u in range(n_users)], per_user),
            "item_id": [f"i{j:02d}" for j in items],
            "timestamp": 1_600_000_000 + rng.permutation(n_users * per_user).astype(np.int64),
        }
    )
    return frame, prob


def _popularity_correlation(correction: bool) -> float:
    torch.set_num_threads(1)
    frame, prob = _popularity_only_data()
    model = TwoTower(
        dim=8,
        hidden=16,
        max_history=5,
        epochs=4,
        batch_size=64,
        learning_rate=0.02,
        uniform_negatives=0,
        item_id_dropout=0.0,
        time_prior=False,
        validation_fraction=0.0,
        task_weights={"user": 1.0, "similar": 0.0},
        logq_correction=correction,
        seed=1,
    ).fit(frame)
    users = frame.user_id.unique()[:40].tolist()
    scores = model.score(Queries.from_interactions(frame, users)).mean(axis=0)
    popularity = prob[[int(i[1:]) for i in model.item_ids_]]
    return float(spearmanr(scores, popularity).statistic)


def test_logq_correction_recovers_popularity_and_its_absence_hides_it() -> None:
    # In-batch negatives are drawn in proportion to popularity. Subtracting log q
    # undoes that, so the learned scores estimate the full softmax and reproduce
    # popularity when it is the only signal; without the correction, popular
    # items are pushed down as negatives and the scores lose it. (With the sign
    # flipped, the scores would turn anti-popular: both asserts would fail.)
    assert _popularity_correlation(correction=True) > 0.8
    assert _popularity_correlation(correction=False) < 0.4
