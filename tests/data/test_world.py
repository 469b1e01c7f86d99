"""Tests of the built-in world: determinism, schema, the click model and the logs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recops.cli import app
from recops.data.schema import (
    CATEGORIES,
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    ITEM_ID,
    PUBLISH_TIME,
    TIMESTAMP,
    USER_ID,
    Dataset,
)
from recops.data.validation import validate_interactions, validate_items
from recops.data.world import (
    OraclePolicy,
    PopularityExplorationPolicy,
    RequestBatch,
    SlateDecision,
    World,
    WorldConfig,
    WorldConfigError,
    generate_catalog,
    generate_world,
)
from recops.data.world.click_model import sigmoid

SMALL = {"n_users": 300, "n_items": 800, "days": 4, "seed": 7}


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


@pytest.fixture(scope="module")
def small() -> tuple[World, Dataset]:
    return generate_world(WorldConfig(**SMALL))


@pytest.fixture(scope="module")
def static_world() -> World:
    """A world whose interests do not move, so that time only acts through freshness."""
    cfg = WorldConfig(**SMALL, drift_rate=0.0, interest_shift_probability=0.0)
    return World.from_config(cfg)


# ---------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_parquet(tmp_path: Path) -> None:
    cfg = WorldConfig(n_users=80, n_items=200, days=2, seed=3)
    for name in ("a", "b"):
        generate_world(cfg)[1].save(tmp_path / name)
    for table in ("interactions", "items", "users"):
        first = (tmp_path / "a" / f"{table}.parquet").read_bytes()
        assert first == (tmp_path / "b" / f"{table}.parquet").read_bytes(), table


def test_different_seed_gives_different_world(small: tuple[World, Dataset]) -> None:
    _, data = small
    _, other = generate_world(WorldConfig(**{**SMALL, "seed": 8}))
    assert not data.items["title"].equals(other.items["title"])
    assert not data.interactions[TIMESTAMP].equals(other.interactions[TIMESTAMP])


def test_catalog_fast_path_is_the_catalog_of_the_world(small: tuple[World, Dataset]) -> None:
    _, data = small
    # The catalog has its own random stream: other user counts leave it unchanged.
    catalog = generate_catalog(WorldConfig(**{**SMALL, "n_users": 5}))
    pd.testing.assert_frame_equal(catalog, data.items)


# ---------------------------------------------------------------------- schema


def test_tables_follow_the_schema(small: tuple[World, Dataset]) -> None:
    world, data = small
    ix, items, users = data.interactions, data.items, data.users
    assert list(ix.columns[: len(INTERACTION_COLUMNS)]) == list(INTERACTION_COLUMNS)
    assert {"request_id", "position", "propensity", "slate_propensity"} <= set(ix.columns)
    assert ix[TIMESTAMP].dtype == np.int64 and ix["position"].dtype == np.int64
    assert ix["value"].dtype == np.float64 and ix["propensity"].dtype == np.float64
    assert all(isinstance(v, str) for v in ix[USER_ID].head(50))
    assert set(ix["event"].unique()) == {"impression", "click"}
    assert list(items.columns) == list(ITEM_COLUMNS)
    assert items[PUBLISH_TIME].dtype == "Int64"
    assert items[ITEM_ID].is_unique and len(items) == world.n_items
    assert users[USER_ID].is_unique and len(users) == world.n_users
    assert items[CATEGORIES].map(lambda c: 1 <= len(c) <= 2 and len(set(c)) == len(c)).all()
    assert items["title"].str.split().map(len).between(4, 9).all()


def test_tables_pass_the_shared_validation(small: tuple[World, Dataset]) -> None:
    _, data = small
    items, item_report = validate_items(data.items, source="world items")
    ix, report = validate_interactions(data.interactions, source="world", catalog=items)
    assert item_report.clean and report.clean, (str(item_report), str(report))
    assert len(ix) == len(data.interactions)


def test_ids_reference_the_catalog_and_users(small: tuple[World, Dataset]) -> None:
    _, data = small
    ix = data.interactions
    assert ix[ITEM_ID].isin(data.items[ITEM_ID]).all()
    assert ix[USER_ID].isin(data.users[USER_ID]).all()


def test_timestamps_are_in_the_period_and_sorted(small: tuple[World, Dataset]) -> None:
    world, data = small
    ts = data.interactions[TIMESTAMP]
    assert ts.min() >= world.config.start_time and ts.max() < world.config.end_time
    assert ts.is_monotonic_increasing


def test_items_are_shown_only_while_available(small: tuple[World, Dataset]) -> None:
    world, data = small
    shown = data.interactions.query("event == 'impression'")
    published = world.items.publish_time[world.item_index(shown[ITEM_ID])]
    age = shown[TIMESTAMP].to_numpy() - published
    assert age.min() >= 0
    assert age.max() <= world.config.max_item_age_hours * 3600
    signup = world.users.signup_time[world.user_index(shown[USER_ID])]
    assert (signup <= shown[TIMESTAMP].to_numpy()).all()


def test_clicks_match_clicked_impressions(small: tuple[World, Dataset]) -> None:
    _, data = small
    ix = data.interactions
    keys = ["request_id", "position", USER_ID, ITEM_ID]
    clicked = ix.query("event == 'impression' and value == 1.0")[[*keys, TIMESTAMP]]
    clicks = ix.query("event == 'click'")[[*keys, TIMESTAMP]]
    assert set(ix.query("event == 'impression'")["value"].unique()) <= {0.0, 1.0}
    joined = clicked.merge(clicks, on=keys, suffixes=("_shown", "_click"), validate="1:1")
    assert len(joined) == len(clicks) == len(clicked) > 0
    delay = joined[f"{TIMESTAMP}_click"] - joined[f"{TIMESTAMP}_shown"]
    assert delay.between(0, 120).all()


def test_slates_have_distinct_items_in_consecutive_slots(small: tuple[World, Dataset]) -> None:
    world, data = small
    shown = data.interactions.query("event == 'impression'")
    per_request = shown.groupby("request_id").agg(
        n=("position", "size"), top=("position", "max"), distinct=(ITEM_ID, "nunique")
    )
    assert (per_request["n"] == per_request["distinct"]).all()
    assert (per_request["top"] == per_request["n"] - 1).all()
    assert per_request["n"].max() == world.config.slate_size


def test_new_users_arrive_during_the_period(small: tuple[World, Dataset]) -> None:
    world, data = small
    late = world.users.signup_time >= world.config.start_time
    assert 0 < late.sum() < world.n_users
    active = world.user_index(data.interactions[USER_ID].unique())
    assert late[active].any()


def test_loaded_dataset_round_trips(small: tuple[World, Dataset], tmp_path: Path) -> None:
    _, data = small
    loaded = Dataset.load(data.save(tmp_path / "w"))
    assert loaded.interactions[TIMESTAMP].equals(data.interactions[TIMESTAMP])
    assert loaded.items[CATEGORIES].tolist() == data.items[CATEGORIES].tolist()


# ---------------------------------------------------------------------- catalog text


def test_titles_are_drawn_mostly_from_the_category_vocabulary(static_world: World) -> None:
    items, cfg = static_world.items, static_world.config
    words = items.title_words
    used = words >= 0
    category_of_word = np.where(words < cfg.n_categories * cfg.words_per_category, words, -1)
    category_of_word = np.where(
        category_of_word >= 0, category_of_word // cfg.words_per_category, -1
    )
    is_secondary = (category_of_word == items.secondary[:, None]) & (items.secondary[:, None] >= 0)
    own = (category_of_word == items.primary[:, None]) | is_secondary
    share = own[used].mean()
    assert abs(share - cfg.title_category_word_fraction) < 0.03
    assert ((category_of_word >= 0) & ~own)[used].sum() == 0


# ---------------------------------------------------------------------- click model


def test_click_probabilities_are_probabilities(small: tuple[World, Dataset]) -> None:
    world, _ = small
    rng = np.random.default_rng(0)
    u = rng.integers(0, world.n_users, 500)
    i = rng.integers(0, world.n_items, 500)
    t = rng.integers(world.config.start_time, world.config.end_time, 500)
    p = world.click_probability(u[:, None], i[:, None], np.arange(10), t[:, None])
    assert p.shape == (500, 10)
    assert np.all((p >= 0) & (p <= 1)) and p.max() > 0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    users=st.lists(st.integers(0, 299), min_size=1, max_size=4),
    items=st.lists(st.integers(-1, 799), min_size=1, max_size=3),
    hour=st.integers(-48, 24 * 5),
)
def test_broadcasting_matches_one_call_per_element(
    static_world: World, users: list[int], items: list[int], hour: int
) -> None:
    t = static_world.config.start_time + 3600 * hour
    u, i = np.array(users)[:, None, None], np.array(items)[None, :, None]
    positions = np.arange(3)[None, None, :]
    batch = static_world.click_probability(u, i, positions, t)
    assert batch.shape == (len(users), len(items), 3)
    for a, user in enumerate(users):
        for b, item in enumerate(items):
            for p in range(3):
                single = static_world.click_probability(user, item, p, t)
                assert batch[a, b, p] == pytest.approx(float(single), rel=1e-12, abs=0)


def test_click_probability_decreases_with_position(small: tuple[World, Dataset]) -> None:
    world, _ = small
    t = world.config.start_time + 3600
    items = world.available_items(t)[:20]
    p = world.click_probability(3, items[:, None], np.arange(10), t)
    assert np.all(np.diff(p, axis=1) < 0)
    np.testing.assert_allclose(world.examination(np.arange(3)), [1.0, 0.5, 1 / 3])


def test_no_position_bias_when_eta_is_zero() -> None:
    world = World.from_config(WorldConfig(n_users=5, n_items=50, days=1, position_bias=0.0))
    t = world.config.start_time
    p = world.click_probability(0, world.available_items(t)[:5, None], np.arange(4), t)
    np.testing.assert_allclose(p, np.repeat(p[:, :1], 4, axis=1))


def test_freshness_halves_the_attraction_odds_every_half_life(static_world: World) -> None:
    cfg = static_world.config
    item = int(static_world.available_items(cfg.start_time + 86_400)[-1])
    published = int(static_world.items.publish_time[item])
    half_life = int(cfg.freshness_half_life_hours * 3600)
    ages = np.arange(4) * half_life
    a = static_world.attractiveness(5, item, published + ages)
    assert np.all(np.diff(a) < 0)
    np.testing.assert_allclose(np.diff(logit(a)), -np.log(2.0), rtol=1e-9)


def test_unpublished_items_and_empty_slots_are_never_clicked(static_world: World) -> None:
    cfg = static_world.config
    last = static_world.n_items - 1
    before = int(static_world.items.publish_time[last]) - 1
    assert static_world.attractiveness(0, last, before) == 0.0
    assert static_world.attractiveness(0, -1, cfg.start_time) == 0.0


def test_attractiveness_follows_the_documented_formula(static_world: World) -> None:
    w, cfg = static_world, static_world.config
    u, i, t = 4, int(w.available_items(cfg.start_time)[0]), cfg.start_time
    theta = w.interests(u, t)
    primary, secondary = w.items.primary[i], w.items.secondary[i]
    interest = theta[primary] if secondary < 0 else 0.7 * theta[primary] + 0.3 * theta[secondary]
    latent = float(w.users.latent[u] @ w.items.latent[i]) / np.sqrt(cfg.latent_dim)
    age_hours = (t - w.items.publish_time[i]) / 3600
    z = (
        cfg.base_logit
        + cfg.interest_weight * interest
        + cfg.latent_weight * latent
        + w.items.quality[i]
        - np.log(2.0) * age_hours / cfg.freshness_half_life_hours
    )
    np.testing.assert_allclose(w.attractiveness(u, i, t), sigmoid(np.asarray(z)), rtol=1e-6)


def test_interests_drift_over_time(small: tuple[World, Dataset], static_world: World) -> None:
    world, _ = small
    cfg = world.config
    users = np.arange(world.n_users)
    start, end = world.interests(users, cfg.start_time), world.interests(users, cfg.end_time)
    np.testing.assert_allclose(start.sum(axis=1), 1.0)
    moved = np.abs(end - start).sum(axis=1)
    assert np.median(moved) > 0.05
    still = static_world.interests(users, cfg.start_time) - static_world.interests(
        users, cfg.end_time
    )
    np.testing.assert_allclose(still, 0.0, atol=1e-6)


def test_a_shock_moves_everyone_towards_one_category() -> None:
    cfg = WorldConfig(n_users=200, n_items=50, days=6, shock_day=3, shock_category=2, seed=1)
    world = World.from_config(cfg)
    users = np.arange(world.n_users)
    share = [world.interests(users, cfg.start_time + d * 86_400)[:, 2].mean() for d in range(7)]
    calm = World.from_config(cfg.model_copy(update={"shock_day": None}))
    calm_share = [calm.interests(users, cfg.start_time + d * 86_400)[:, 2].mean() for d in range(7)]
    np.testing.assert_allclose(share[:3], calm_share[:3])
    assert share[3] - share[2] > 0.1 + abs(calm_share[3] - calm_share[2])


def test_interests_move_continuously_between_days(small: tuple[World, Dataset]) -> None:
    world, _ = small
    t = world.config.start_time + 86_400
    around = world.interests(0, np.array([t - 1, t, t + 1]))
    assert np.abs(np.diff(around, axis=0)).max() < 1e-4


def test_invalid_indices_are_rejected_with_the_range(small: tuple[World, Dataset]) -> None:
    world, _ = small
    with pytest.raises(ValueError, match=r"user indices must be integers in 0\.\.299"):
        world.click_probability(300, 0, 0, world.config.start_time)
    with pytest.raises(ValueError, match=r"item indices"):
        world.attractiveness(0, -2, world.config.start_time)
    with pytest.raises(ValueError, match="non-negative integers"):
        world.examination(-1)


def test_ids_and_indices_convert_both_ways(small: tuple[World, Dataset]) -> None:
    world, _ = small
    np.testing.assert_array_equal(world.user_index(world.user_ids([4, 0])), [4, 0])
    np.testing.assert_array_equal(world.item_index(["i7", "i0"]), [7, 0])
    with pytest.raises(KeyError, match="'i800' is not a item id"):
        world.item_index(["i800"])
    with pytest.raises(KeyError, match="'x1'"):
        world.user_index(["u1", "x1"])
    with pytest.raises(KeyError, match="'u01'"):
        world.user_index(["u01"])
    np.testing.assert_array_equal(world.item_ids([2, 0]), ["i2", "i0"])
    with pytest.raises(ValueError, match="empty slot"):
        world.item_ids([-1])


# ---------------------------------------------------------------------- truth vs logs


def test_logged_clicks_match_the_true_click_probabilities(small: tuple[World, Dataset]) -> None:
    world, data = small
    log = world.simulate_log()
    shown = log.slates >= 0
    p = log.click_probability[shown]
    # Same world, same stream: the log is the one behind the dataset.
    assert log.clicks.sum() == (data.interactions["event"] == "click").sum()
    z = (log.clicks[shown].sum() - p.sum()) / np.sqrt((p * (1 - p)).sum())
    assert abs(z) < 4
    expected = world.expected_clicks(log.user, log.slates, log.time)
    np.testing.assert_allclose(expected, log.click_probability.sum(axis=1))


def test_expected_clicks_agree_with_simulation(small: tuple[World, Dataset]) -> None:
    world, _ = small
    t = world.config.start_time + 2 * 86_400
    slates = np.stack([world.available_items(t)[k : k + 5] for k in (0, 40, 80)])
    slates[2, 4] = -1
    users = np.array([1, 2, 3])
    exact = world.expected_clicks(users, slates, t)
    rng = np.random.default_rng(1)
    n = 20_000
    clicks = world.simulate_clicks(rng, np.repeat(users, n), np.repeat(slates, n, axis=0), t)
    assert not clicks[2 * n :, 4].any()
    mc = clicks.sum(axis=1).reshape(3, n)
    se = mc.std(axis=1) / np.sqrt(n)
    assert np.all(np.abs(mc.mean(axis=1) - exact) < 4 * se + 1e-9)


def requests_over(lo: np.ndarray, hi: np.ndarray, recent_clicks: np.ndarray) -> RequestBatch:
    n = len(lo)
    return RequestBatch(np.zeros(n, np.int64), np.zeros(n, np.int64), lo, hi, recent_clicks)


def test_logged_propensities_are_the_policy_probabilities() -> None:
    policy = PopularityExplorationPolicy(slate_size=2, exploration=0.4)
    n = 30_000
    # Candidates 1, 2, 3, 4 with 5, 1, 0, 9 recent clicks: the top slate is (4, 1).
    requests = requests_over(np.full(n, 1), np.full(n, 5), np.array([0, 5, 1, 0, 9, 0]))
    top = policy.ranking(requests)
    np.testing.assert_array_equal(top, np.tile([4, 1], (n, 1)))
    decision = policy.choose(np.random.default_rng(2), requests)
    for slot in range(2):
        for item in range(1, 5):
            hit = decision.items[:, slot] == item
            expected = 0.4 / 4 + 0.6 * (item == top[0, slot])
            np.testing.assert_allclose(decision.propensity[hit, slot], expected)
            assert abs(hit.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    exploit = (decision.items == top).all(axis=1)
    np.testing.assert_allclose(decision.slate_propensity[exploit], 0.6 + 0.4 / 12)
    np.testing.assert_allclose(decision.slate_propensity[~exploit], 0.4 / 12)


def test_short_slates_when_few_items_are_available() -> None:
    policy = PopularityExplorationPolicy(slate_size=4, exploration=1.0)
    requests = requests_over(np.array([0, 2]), np.array([2, 3]), np.zeros(3, np.int64))
    decision = policy.choose(np.random.default_rng(0), requests)
    np.testing.assert_array_equal(decision.items[:, 2:], -1)
    np.testing.assert_array_equal(decision.items[1], [2, -1, -1, -1])
    np.testing.assert_allclose(decision.slate_propensity, [0.5, 1.0])
    np.testing.assert_allclose(decision.propensity[0], [0.5, 0.5, 0.0, 0.0])


def test_policy_and_batch_validation() -> None:
    with pytest.raises(ValueError, match=r"`exploration` must be in \[0, 1\] \(got 1.5\)"):
        PopularityExplorationPolicy(slate_size=3, exploration=1.5)
    with pytest.raises(ValueError, match=r"`slate_size` must be an int in 1..1000 \(got 0\)"):
        PopularityExplorationPolicy(slate_size=0, exploration=0.1)
    with pytest.raises(ValueError, match="needs a candidate"):
        requests_over(np.array([3]), np.array([3]), np.zeros(5, np.int64))


def test_other_policies_meet_the_same_traffic(small: tuple[World, Dataset]) -> None:
    world, _ = small
    logging = world.simulate_log(np.random.default_rng(5))
    uniform = PopularityExplorationPolicy(slate_size=world.config.slate_size, exploration=1.0)
    other = world.simulate_log(np.random.default_rng(5), uniform)
    np.testing.assert_array_equal(other.time, logging.time)
    np.testing.assert_array_equal(other.user, logging.user)
    np.testing.assert_allclose(
        other.propensity[other.slates >= 0],
        1
        / np.repeat(other.candidate_hi - other.candidate_lo, world.config.slate_size)[
            (other.slates >= 0).ravel()
        ],
    )
    # Popular items are clicked more than random ones: the logging policy is better.
    assert logging.expected_clicks.mean() > other.expected_clicks.mean()


def test_the_oracle_shows_the_truly_best_slate(small: tuple[World, Dataset]) -> None:
    world, _ = small
    oracle = world.simulate_log(np.random.default_rng(5), OraclePolicy(world))
    logging = world.simulate_log(np.random.default_rng(5))
    assert oracle.expected_clicks.mean() > 1.5 * logging.expected_clicks.mean()
    np.testing.assert_array_equal(oracle.propensity, 1.0)
    r = len(oracle.time) // 2
    candidates = np.arange(oracle.candidate_lo[r], oracle.candidate_hi[r])
    truth = world.attractiveness(oracle.user[r], candidates, oracle.time[r])
    np.testing.assert_array_equal(oracle.slates[r], candidates[np.argsort(-truth)[:10]])


def test_a_policy_returning_wrong_shapes_is_rejected(small: tuple[World, Dataset]) -> None:
    world, _ = small

    class Broken:
        slate_size = 3

        def choose(self, rng: np.random.Generator, requests: RequestBatch) -> SlateDecision:
            n = len(requests.time)
            return SlateDecision(np.zeros((n, 2), np.int64), np.ones((n, 2)), np.ones(n))

    with pytest.raises(ValueError, match=r"expected \(\d+, 3\)"):
        world.simulate_log(np.random.default_rng(0), Broken())


# ---------------------------------------------------------------------- traffic


def test_requests_come_from_signed_up_users_in_proportion_to_activity(
    small: tuple[World, Dataset],
) -> None:
    world, _ = small
    t = world.config.end_time - 1
    users = world.sample_request(np.random.default_rng(3), t, size=100_000)
    assert isinstance(users, np.ndarray)
    counts = np.bincount(users, minlength=world.n_users)
    present = world.users.signup_time <= t
    assert counts[~present].sum() == 0
    share = world.users.activity[present] / world.users.activity[present].sum()
    expected = share * len(users)
    assert np.abs(counts[present] - expected).max() < 5 * np.sqrt(expected.max()) + 5


def test_no_request_before_the_first_signup() -> None:
    world = World.from_config(WorldConfig(n_users=3, n_items=10, days=1, initial_user_fraction=0))
    with pytest.raises(ValueError, match="no user has signed up"):
        world.sample_request(np.random.default_rng(0), world.config.start_time - 1)


def test_arrival_counts_follow_the_traffic_rate(small: tuple[World, Dataset]) -> None:
    world, _ = small
    cfg = world.config
    times, users = world.sample_arrivals(np.random.default_rng(4))
    assert np.all(np.diff(times) >= 0) and times.min() >= cfg.start_time
    assert np.all(world.users.signup_time[users] <= times)
    grid = np.arange(cfg.start_time, cfg.end_time, 60)
    mass = np.array([world.users.activity[world.users.signup_time <= g].sum() for g in grid])
    hours = (grid % 86_400) / 3600
    tod = 1 + cfg.time_of_day_amplitude * np.cos(2 * np.pi * (hours - cfg.peak_hour) / 24)
    expected = (cfg.requests_per_user_per_day / 86_400 * tod * mass).sum() * 60
    assert abs(len(times) - expected) < 4 * np.sqrt(expected) + 0.01 * expected


def test_available_items_are_published_and_fresh(small: tuple[World, Dataset]) -> None:
    world, _ = small
    t = world.config.start_time + 86_400
    avail = world.available_items(t)
    age = t - world.items.publish_time
    fresh = (age >= 0) & (age <= world.config.max_item_age_hours * 3600)
    np.testing.assert_array_equal(avail, np.flatnonzero(fresh))


# ---------------------------------------------------------------------- config


def test_config_errors_name_the_field_and_the_value() -> None:
    with pytest.raises(
        WorldConfigError, match=r"`n_users`: .*greater than or equal to 1 \(got 0\)"
    ):
        WorldConfig.from_dict({"n_users": 0})
    with pytest.raises(WorldConfigError, match=r"title_min_words \(9\) must not exceed"):
        WorldConfig.from_dict({"title_min_words": 9, "title_max_words": 4})
    with pytest.raises(WorldConfigError, match="did you mean `slate_size`"):
        WorldConfig.from_dict({"slate_sise": 5})
    with pytest.raises(WorldConfigError, match=r"shock_day \(9\) must be within the period"):
        WorldConfig.from_dict({"days": 5, "shock_day": 9})
    with pytest.raises(WorldConfigError, match="lower n_users, days or n_categories"):
        WorldConfig.from_dict({"n_users": 10_000_000, "days": 365, "n_categories": 200})


def test_config_json_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "n_users": 10,\n  "days": \n}\n')
    with pytest.raises(WorldConfigError, match=r"bad\.json: line 4, column 1"):
        WorldConfig.from_json(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(WorldConfigError, match="expected a JSON object"):
        WorldConfig.from_json(bad)
    with pytest.raises(WorldConfigError, match="does not exist"):
        WorldConfig.from_json(tmp_path / "missing.json")


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    cfg = WorldConfig(**SMALL, position_bias=0.5)
    assert WorldConfig.from_json(cfg.to_json(tmp_path / "c.json")) == cfg


# ---------------------------------------------------------------------- CLI


def test_cli_generates_a_dataset(tmp_path: Path) -> None:
    config = tmp_path / "world.json"
    config.write_text(json.dumps({"n_users": 1_000, "days": 2, "slate_size": 5}))
    out = tmp_path / "out"
    args = ["world", "generate", "--out", str(out), "--config", str(config), "--users", "60"]
    result = CliRunner().invoke(app, [*args, "--items", "150", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "clicks" in result.output and "impressions" in result.output
    data = Dataset.load(out)
    assert len(data.users) == 60 and len(data.items) == 150
    shown = data.interactions.query("event == 'impression'")
    assert shown.groupby("request_id").size().max() == 5
    written = WorldConfig.from_json(out / "world_config.json")
    assert (written.n_users, written.days, written.seed) == (60, 2, 4)


def test_cli_catalog_only(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["world", "generate", "--out", str(tmp_path), "--items", "2000", "--catalog-only"]
    )
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "interactions.parquet").exists()
    assert len(pd.read_parquet(tmp_path / "items.parquet")) == 2_000


def test_cli_reports_invalid_values(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["world", "generate", "--out", str(tmp_path), "--days", "0"])
    assert result.exit_code == 2
    assert "`days`" in result.output and "got 0" in result.output


def test_cli_prints_the_default_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["world", "config"])
    assert result.exit_code == 0
    assert WorldConfig.model_validate_json(result.output) == WorldConfig()
    written = CliRunner().invoke(app, ["world", "config", "--out", str(tmp_path / "c.json")])
    assert written.exit_code == 0
    assert WorldConfig.from_json(tmp_path / "c.json") == WorldConfig()
