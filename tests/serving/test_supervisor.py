"""The supervisor's restart policy: exponential backoff, forgiven after a healthy run."""

from __future__ import annotations

import pytest

from recops.serving.supervisor import RestartPolicy


def test_repeated_failures_back_off_exponentially_up_to_a_ceiling() -> None:
    policy = RestartPolicy(base_s=0.5, max_s=4.0, healthy_s=30.0)
    assert [policy.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    policy.ready_for(10.0)
    assert policy.failed() == 4.0, "ten seconds of service do not forgive the failures"
    policy.ready_for(30.0)
    assert policy.failed() == 0.5, "a healthy run does"


def test_the_policy_validates_its_waits() -> None:
    with pytest.raises(ValueError, match="0 < base_s <= max_s"):
        RestartPolicy(base_s=5.0, max_s=1.0)
