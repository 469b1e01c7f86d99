"""Which items are out at a moment: exclusions for a few, a mask for many."""

from __future__ import annotations

import numpy as np

from recops.serving.releases import _NEVER, MAX_EXCLUDED, Releases

T = 1_700_000_000


def _releases(first_seen: list[int]) -> Releases:
    return Releases.from_first_seen(np.array(first_seen, dtype=np.int64))


def test_items_first_seen_after_now_are_excluded_until_their_second() -> None:
    releases = _releases([T, T + 10, _NEVER, T + 20])
    assert releases.restrict(T + 5, None, {7}) == (None, {7, 1, 3})
    assert releases.restrict(T + 19, None, set()) == (None, {3})
    # An item is out from its first-seen second on.
    assert releases.restrict(T + 20, None, set()) == (None, set())
    assert releases.restrict(T + 10_000, None, {2}) == (None, {2})


def test_the_arguments_are_not_changed() -> None:
    releases = _releases([T, T + 10])
    excluded = {0}
    eligible = np.array([True, True])
    out_eligible, out_excluded = releases.restrict(T, eligible, excluded)
    assert out_excluded == {0, 1} and excluded == {0}
    assert out_eligible is eligible


def test_many_items_not_out_yet_become_a_mask() -> None:
    n = MAX_EXCLUDED + 10
    releases = _releases([T + i for i in range(n)])
    eligible = np.ones(n, dtype=np.bool_)
    eligible[0] = False
    mask, excluded = releases.restrict(T, eligible, {5})
    assert excluded == {5}
    assert mask is not None and mask.tolist() == [False] + [False] * (n - 1)
    # One second before the last item: that one alone is not out yet.
    assert releases.restrict(T + n - 2, None, set()) == (None, {n - 1})


def test_a_model_that_says_nothing_of_time_has_every_item_out() -> None:
    for releases in (Releases.empty(3), _releases([_NEVER, _NEVER])):
        assert releases.restrict(0, None, {1}) == (None, {1})
        assert releases.unreleased(0).tolist() == []
