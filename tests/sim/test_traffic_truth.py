"""The truth of a simulated run on hand-made slates: arms, rates and the per-unit table.

The end-to-end checks against a real server are in ``test_traffic.py``; here the
arithmetic is checked on slates small enough to count by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.experiments.config import HOLDOUT
from recops.sim.traffic_truth import ServedSlates, arms_of, unit_truth


def _served() -> ServedSlates:
    """Four requests of three users, two slots each; u2's second slate has one item."""
    objects = lambda *values: np.array(values, dtype=object)  # noqa: E731
    return ServedSlates(
        index=np.arange(4),
        time=np.array([10, 20, 30, 40]),
        user=np.array([0, 1, 0, 2]),
        user_id=objects("u0", "u1", "u0", "u2"),
        request_id=objects("r0", "r1", "r2", "r3"),
        experiment=objects("ab", "ab", "ab", "ab"),
        variant=objects("a", "b", "a", HOLDOUT),
        model=objects("news", "news", "news", "news"),
        version=objects("1", "2", "1", "1"),
        items=np.array([[3, 4], [5, 6], [7, -1], [1, 2]]),
        item_id=objects(["i3", "i4"], ["i5", "i6"], ["i7", None], ["i1", "i2"]),
        click_probability=np.array([[0.5, 0.25], [0.1, 0.1], [0.4, 0.0], [0.2, 0.2]]),
        clicks=np.array([[True, False], [False, False], [True, False], [False, True]]),
    )


def test_arms_add_up_the_truth_and_the_observation_per_variant() -> None:
    arms = {arm.variant: arm for arm in arms_of(_served())}
    assert list(arms) == ["a", "b", HOLDOUT], "in order of first request"
    a = arms["a"]
    assert (a.units, a.requests, a.impressions, a.clicks, a.versions) == (1, 2, 3, 2, ("1",))
    assert a.expected_clicks == pytest.approx(1.15)
    assert a.true_ctr == pytest.approx(1.15 / 3) and a.observed_ctr == pytest.approx(2 / 3)
    assert a.true_clicks_per_request == pytest.approx(0.575)
    assert arms["b"].observed_ctr == 0.0 and arms["b"].true_ctr == pytest.approx(0.1)


def test_unit_truth_leaves_the_holdout_out_and_aligns_to_the_server_table() -> None:
    served = _served()
    truth = unit_truth(_RunStub(served), "ab")  # type: ignore[arg-type]
    assert list(truth["unit_id"]) == ["u0", "u1"]
    row = truth.iloc[0]
    assert (row["requests"], row["impressions"], row["clicks"]) == (2, 3, 2)
    assert row["expected_clicks"] == pytest.approx(1.15) and row["timestamp"] == 10
    server = pd.DataFrame({"unit_id": ["u1", "u0"], "variant": ["b", "a"]})
    assert list(unit_truth(_RunStub(served), "ab", align_to=server)["unit_id"]) == ["u1", "u0"]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'u1' is in variant 'a'"):
        unit_truth(_RunStub(served), "ab", align_to=server.assign(variant=["a", "a"]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only in `align_to` \\['u9'\\]"):
        unit_truth(
            _RunStub(served),
            "ab",
            align_to=pd.DataFrame({"unit_id": ["u0", "u9"], "variant": ["a", "b"]}),
        )  # type: ignore[arg-type]


class _RunStub:
    """The one part of a run's result :func:`unit_truth` reads."""

    def __init__(self, served: ServedSlates) -> None:
        self.served = served
