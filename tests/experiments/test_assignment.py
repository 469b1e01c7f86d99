"""Assignment: the frozen hash, stickiness under ramps, layer exclusivity and independence."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from recops.experiments import assignment
from recops.experiments.assignment import (
    BUCKETS,
    Assigner,
    Assignment,
    Segment,
    bucket,
    layer_salt,
    split_points,
)
from recops.experiments.config import ExperimentConfig

# Frozen: a release that changes one of these reshuffles every running experiment.
VECTORS = [
    ("ranker-v2", "user-1", 7109),
    ("ranker-v2", "user-2", 2192),
    ("ranker-v2", "", 8483),
    ("layer:ranking", "user-1", 7534),
    ("ranker-v2:holdout", "user-1", 4810),
    ("exp", "42", 3017),
    ("exp", "ünïcødé-用户", 7749),
    ("a", "b", 1548),
    ("salt.with_dots-1", "anon-7f3a9c", 5570),
    ("ranker-v2", "user-1 ", 871),
]

# Frozen: what the Assigner gives user-0..15 in the experiment of `_frozen_experiment`.
FROZEN_ASSIGNMENTS = {
    "user-0": None,
    "user-1": None,
    "user-2": None,
    "user-3": "holdout",
    "user-4": "pl",
    "user-5": None,
    "user-6": "pl",
    "user-7": None,
    "user-8": None,
    "user-9": "pl",
    "user-10": "holdout",
    "user-11": None,
    "user-12": None,
    "user-13": None,
    "user-14": None,
    "user-15": "pl",
}


@dataclass(frozen=True)
class Placed:
    config: ExperimentConfig
    segment: Segment


def _config(name: str = "exp", **fields: object) -> ExperimentConfig:
    values: dict[str, object] = {
        "name": name,
        "control": "control",
        "primary_metric": "clicks",
        "variants": [
            {"name": "control", "version": "1"},
            {"name": "treatment", "version": "2"},
        ],
    }
    values.update(fields)
    return ExperimentConfig.model_validate(values)


def _placed(config: ExperimentConfig, start: int = 0, size: int | None = None) -> Placed:
    size = round(config.reserved * BUCKETS) if size is None else size
    return Placed(config, Segment(start, size))


def _units(n: int, prefix: str = "user-") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


@pytest.mark.parametrize(("salt", "unit", "expected"), VECTORS)
def test_hash_vectors_are_frozen(salt, unit, expected):
    assert bucket(salt, unit) == expected


def test_hash_is_the_documented_formula():
    import hashlib

    digest = hashlib.sha256(b"ranker-v2:user-1").digest()
    assert bucket("ranker-v2", "user-1") == int.from_bytes(digest[:8], "big") % 10_000
    assert layer_salt("ranking") == "layer:ranking"


def _frozen_experiment() -> Placed:
    config = _config(
        "ranker-v2",
        layer="ranking",
        traffic=0.5,
        holdout=0.1,
        variants=[
            {"name": "control", "version": "1"},
            {"name": "pl", "version": "2", "weight": 2},
        ],
    )
    return Placed(config, Segment(2000, 5000))


def test_assigner_output_is_frozen():
    assigner = Assigner([_frozen_experiment()], now=0)
    got = {}
    for unit in FROZEN_ASSIGNMENTS:
        found = assigner.assign(user_id=unit)
        got[unit] = found[0].variant if found else None
    assert got == FROZEN_ASSIGNMENTS


def test_assigner_follows_the_three_hashes():
    placed = _frozen_experiment()
    assigner = Assigner([placed], now=0)
    points = split_points([1, 2])
    for unit in _units(2000):
        position = bucket("layer:ranking", unit)
        found = assigner.assign(user_id=unit)
        if not 2000 <= position < 7000:
            assert found == ()
            continue
        (one,) = found
        if bucket("ranker-v2:holdout", unit) < 1000:
            assert one == Assignment("ranking", "ranker-v2", "holdout", ("control",), True)
        else:
            variant = "control" if bucket("ranker-v2", unit) < points[0] else "pl"
            assert one == Assignment("ranking", "ranker-v2", variant, (variant,))


def test_remembered_assignments_equal_hashed_ones_and_stay_bounded(monkeypatch):
    monkeypatch.setattr(assignment, "REMEMBERED_UNITS", 50)
    placed = _frozen_experiment()
    assigner, fresh = Assigner([placed], now=0), Assigner([placed], now=0)
    units = _units(120)
    first = [assigner.assign(user_id=u) for u in units]
    # Asked again (remembered, or hashed again once forgotten): the same answers, which
    # are those of an assigner that never saw the units.
    assert [assigner.assign(user_id=u) for u in reversed(units)] == first[::-1]
    assert first == [fresh._assign(u, None) for u in units]
    assert len(assigner._seen) <= 50


@settings(max_examples=200, deadline=None)
@given(unit=st.text(max_size=40), traffic=st.floats(0.0001, 1.0))
def test_same_unit_same_assignment_always(unit, traffic):
    config = _config(traffic=traffic, holdout=0.2)
    first = Assigner([_placed(config)], now=0).assign(user_id=unit)
    again = Assigner([_placed(config)], now=0)
    assert again.assign(user_id=unit) == first == again.assign(user_id=unit)


@settings(max_examples=60, deadline=None)
@given(
    low=st.floats(0.0001, 1.0),
    high=st.floats(0.0001, 1.0),
    weight=st.floats(0.1, 10.0),
    start=st.integers(0, 5000),
)
def test_ramping_up_only_adds_units_and_never_moves_one(low, high, weight, start):
    low, high = sorted((low, high))
    segment = Segment(start, BUCKETS - start)
    variants = [
        {"name": "control", "version": "1"},
        {"name": "t", "version": "2", "weight": weight},
    ]
    # Shares of the layer, at least one bucket (a config refuses less).
    low, high = (max(x * segment.size / BUCKETS, 1 / BUCKETS) for x in (low, high))
    before = Assigner([Placed(_config(traffic=low, variants=variants), segment)], now=0)
    after = Assigner([Placed(_config(traffic=high, variants=variants), segment)], now=0)
    for unit in _units(300):
        was = before.assign(user_id=unit)
        if was:
            assert after.assign(user_id=unit) == was


def test_experiments_in_one_layer_never_share_a_unit():
    a = _placed(_config("a", layer="L", traffic=0.3), start=0)
    b = _placed(_config("b", layer="L", traffic=0.5), start=3000)
    assigner = Assigner([a, b], now=0)
    counts = {"a": 0, "b": 0, None: 0}
    for unit in _units(20_000):
        found = assigner.assign(user_id=unit)
        assert len(found) <= 1
        counts[found[0].experiment if found else None] += 1
    shares = {k: v / 20_000 for k, v in counts.items()}
    assert shares["a"] == pytest.approx(0.3, abs=0.015)
    assert shares["b"] == pytest.approx(0.5, abs=0.015)


def test_overlapping_segments_and_mixed_units_are_refused():
    a = _placed(_config("a", layer="L", traffic=0.3), start=0)
    b = _placed(_config("b", layer="L", traffic=0.3), start=2000)
    with pytest.raises(ValueError, match="experiments 'a' and 'b' overlap in layer 'L'"):
        Assigner([a, b], now=0)
    c = _placed(_config("c", layer="L", traffic=0.3, unit="anonymous_id"), start=5000)
    with pytest.raises(ValueError, match="layer 'L' mixes units"):
        Assigner([a, c], now=0)
    with pytest.raises(ValueError, match="needs 5000 buckets, its segment has 10"):
        Assigner([_placed(_config(traffic=0.5), size=10)], now=0)


def test_different_layers_are_independent():
    # Joint distribution of (experiment/variant in layer 1, in layer 2) on 40k units.
    one = [
        _placed(_config("a", layer="one", traffic=0.4), start=0),
        _placed(_config("b", layer="one", traffic=0.4), start=4000),
    ]
    two = [_placed(_config("c", layer="two", traffic=0.6, holdout=0.1), start=1000)]
    assigner = Assigner([*one, *two], now=0)
    labels1 = ["-", "a/control", "a/treatment", "b/control", "b/treatment"]
    labels2 = ["-", "c/control", "c/treatment", "c/holdout"]
    table = np.zeros((len(labels1), len(labels2)))
    for unit in _units(40_000):
        found = {a.layer: f"{a.experiment}/{a.variant}" for a in assigner.assign(user_id=unit)}
        table[labels1.index(found.get("one", "-")), labels2.index(found.get("two", "-"))] += 1
    result = stats.chi2_contingency(table)
    assert result.pvalue > 0.001, table


@pytest.mark.parametrize("weights", [[1, 1], [1, 2, 3], [0.05, 0.95]])
def test_variant_shares_match_the_weights(weights):
    variants = [{"name": f"v{i}", "version": "1", "weight": w} for i, w in enumerate(weights)]
    config = _config(control="v0", variants=variants)
    assigner = Assigner([_placed(config)], now=0)
    counts = dict.fromkeys((f"v{i}" for i in range(len(weights))), 0)
    units = 30_000
    for unit in _units(units):
        (found,) = assigner.assign(user_id=unit)
        counts[found.variant] += 1
    expected = np.array(weights) / sum(weights) * units
    result = stats.chisquare(list(counts.values()), expected)
    assert result.pvalue > 0.001, counts


def test_an_experiment_named_like_its_layer_still_splits_evenly():
    # With the layer's hash salted by its bare name, an experiment "ranking" (salt =
    # name) in layer "ranking" on buckets 0..1999 would put every unit in control.
    config = _config("ranking", layer="ranking", traffic=0.2)
    assigner = Assigner([_placed(config)], now=0)
    variants = [f[0].variant for u in _units(20_000) if (f := assigner.assign(user_id=u))]
    share = variants.count("control") / len(variants)
    assert 0.46 < share < 0.54


def test_holdout_share_and_labels():
    assigner = Assigner([_placed(_config(holdout=0.25))], now=0)
    found = [assigner.assign(user_id=u)[0] for u in _units(20_000)]
    held = [a for a in found if a.holdout]
    assert len(held) / len(found) == pytest.approx(0.25, abs=0.012)
    assert {(a.variant, a.serves) for a in held} == {("holdout", ("control",))}


def test_interleaving_serves_both_rankings_control_first():
    config = _config(type="interleaving", control="treatment")
    (found,) = Assigner([_placed(config)], now=0).assign(user_id="u")
    assert found == Assignment("default", "exp", "interleaved", ("treatment", "control"))


def test_each_layer_hashes_its_own_unit_kind():
    users = _placed(_config("u", layer="users"))
    anonymous = _placed(_config("a", layer="visitors", unit="anonymous_id"))
    assigner = Assigner([users, anonymous], now=0)
    assert [a.experiment for a in assigner.assign(user_id="x")] == ["u"]
    assert [a.experiment for a in assigner.assign(anonymous_id="x")] == ["a"]
    assert len(assigner.assign(user_id="x", anonymous_id="y")) == 2
    assert assigner.assign() == ()
    assert Assigner([], now=0).assign(user_id="x") == ()


def test_time_windows_and_when_to_rebuild():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    stop = datetime(2026, 12, 15, tzinfo=UTC)
    placed = _placed(_config(start=start, stop=stop))
    before = Assigner([placed], now=start.timestamp() - 1)
    assert before.assign(user_id="u") == () and before.expires_at == start.timestamp()
    during = Assigner([placed], now=start.timestamp())
    assert during.assign(user_id="u") and during.expires_at == stop.timestamp()
    after = Assigner([placed], now=stop.timestamp())
    assert after.assign(user_id="u") == () and math.isinf(after.expires_at)
    assert set(during.experiments) == {"exp"} and not after.experiments


def test_split_points():
    assert split_points([1, 1]) == [5000, 10_000]
    assert split_points([1, 2, 1]) == [2500, 7500, 10_000]
    assert split_points([1 / 3, 1 / 3, 1 / 3]) == [3333, 6667, 10_000]
    with pytest.raises(ValueError, match="`weights` must be positive"):
        split_points([1, 0])
    with pytest.raises(ValueError, match="`weights` must be positive"):
        split_points([])


@pytest.mark.parametrize(("start", "size"), [(-1, 10), (0, 0), (9_000, 1_001)])
def test_segment_bounds(start, size):
    with pytest.raises(ValueError, match=r"a segment must lie within 0\.\.10000 buckets"):
        Segment(start, size)


def test_segment_overlap():
    assert Segment(0, 10).overlaps(Segment(9, 5))
    assert not Segment(0, 10).overlaps(Segment(10, 5))
    assert Segment(3, 4).end == 7
