"""Whole cycles on a tiny world: bootstrap, ship, don't ship, rollback, a refused model."""

from __future__ import annotations

import pytest

from recops.ct import Controller, CTConfig
from recops.experiments.store import ExperimentStore
from tests.ct.conftest import (
    DAY,
    MODEL,
    Site,
    add_clicks,
    ct_document,
    registered,
    serve,
)

#: What a user of each variant clicks: the challenger clearly better (or worse).
BETTER = {"champion": 0.1, "challenger": 0.4}
WORSE = {"champion": 0.4, "challenger": 0.05}


def _bootstrap(controller: Controller, site: Site) -> int:
    """The first model, promoted, and new data; returns when the second cycle may start."""
    decisions = controller.step(site.end)
    assert [d.action for d in decisions] == ["train", "promote", "done"]
    assert controller.registry.champion(MODEL).version == "1"  # type: ignore[union-attr]
    add_clicks(site, site.end + 60, 80)
    return site.end + 600


def _to_experimenting(controller: Controller, site: Site) -> int:
    now = _bootstrap(controller, site)
    decisions = controller.train_now(now, reason="new data")
    assert [d.action for d in decisions] == ["train", "gate_passed", "test_started"]
    assert controller.state.state == "experimenting"
    return now


def test_new_data_starts_the_next_cycle(site: Site, tracking_uri: str) -> None:
    document = ct_document(site, tracking_uri, triggers={"volume": {"min_new_events": 50}})
    with Controller(CTConfig.model_validate(document)) as controller:
        _bootstrap(controller, site)  # 80 new clicks
        decisions = controller.step(site.end + 600)
        assert decisions[0].reason == (
            "volume: 80 new click events since the last training (>= 50)"
        )
        assert controller.state.state == "experimenting"
        assert controller.state.watermark == controller.store.cycle(2).watermark


def test_the_first_model_is_trained_gated_and_promoted(controller: Controller, site: Site) -> None:
    decisions = controller.step(site.end)
    train, promote, done = decisions
    assert train.reason == "bootstrap: no champion of 'two_tower' yet: train one"
    assert train.detail["snapshot_rows"] > 0 and train.detail["watermark"] > 0
    assert "no champion to test it against: the first model is promoted" in promote.reason
    assert promote.detail["gate"]["passed"] and promote.detail["version"] == "1"
    assert (done.state_from, done.state_to) == ("promoted", "idle")
    state = controller.state
    assert (state.state, state.champion, state.champion_since) == ("idle", "1", site.end)
    move = controller.registry.audit(MODEL, "champion")[-1]
    assert move.actor == "recops-ct" and "first model" in move.reason
    # Nothing new: the next round trains nothing.
    assert controller.step(site.end + 60) == []
    assert controller.state.last_check["reason"] == "no trigger fired"


def test_ship_promotes_the_challenger_then_the_watch_passes(
    controller: Controller, site: Site
) -> None:
    now = _to_experimenting(controller, site)
    cycle = controller.store.cycle(controller.state.cycle)  # type: ignore[arg-type]
    assert (cycle.champion, cycle.version, cycle.experiment) == ("1", "2", "ct-two_tower-2")
    with ExperimentStore(site.event_log) as store:
        record = store.get("ct-two_tower-2")
    assert record.status == "running"
    assert {v: m.version for v, m in record.models.items()} == {"champion": "1", "challenger": "2"}
    assert registered(controller)["aliases"].tolist() == ["champion", "challenger"]

    serve(site, now + 60, BETTER, units=400)
    # Significant, but before min_duration_s: it keeps running.
    assert controller.step(now + 1_800) == []
    assert controller.state.last_check["analysis"]["call"] == "ship"
    decisions = controller.step(now + 3_600)
    assert [d.action for d in decisions] == ["promote"]
    promote = decisions[0]
    assert promote.reason.startswith("ship: challenger: significantly better (clicks/impressions")
    assert "held back on version 1" in promote.reason
    assert controller.registry.champion(MODEL).version == "2"  # type: ignore[union-attr]
    with ExperimentStore(site.event_log) as store:
        assert store.get("ct-two_tower-2").status == "stopped"
        watch = store.get("ct-two_tower-2-watch")
    assert watch.status == "running"
    assert {v: m.version for v, m in watch.models.items()} == {"previous": "1", "champion": "2"}

    serve(site, now + 3_700, {"previous": 0.3, "champion": 0.3}, units=400, seed=3)
    assert controller.step(now + 4_000) == []  # the watch lasts duration_s
    decisions = controller.step(now + 7_300)
    assert [d.action for d in decisions] == ["watch_passed"]
    assert decisions[0].reason == (
        "watch passed after 3700 s: no guardrail failed (clicks/requests: inconclusive)"
    )
    state = controller.state
    assert (state.state, state.champion, state.champion_since) == ("idle", "2", now + 7_300)
    cycle = controller.store.cycle(2)
    assert cycle.outcome == "promoted" and cycle.finished_at == now + 7_300
    with ExperimentStore(site.event_log) as store:
        assert store.get("ct-two_tower-2-watch").status == "stopped"


def test_dont_ship_stops_the_test_and_the_champion_stays(site: Site, tracking_uri: str) -> None:
    # Without guardrails the primary metric alone decides.
    document = ct_document(site, tracking_uri, experiment={"guardrails": []})
    controller = Controller(CTConfig.model_validate(document))
    now = _to_experimenting(controller, site)
    serve(site, now + 60, WORSE, units=400)
    assert controller.step(now + 600) == []  # significantly worse, but wait for min_duration_s
    decisions = controller.step(now + 3_600)
    assert [d.action for d in decisions] == ["dont_ship", "close"]
    assert decisions[0].reason.startswith("don't ship: challenger: significantly worse")
    assert decisions[0].reason.endswith("test stopped, the champion stays")
    assert controller.registry.champion(MODEL).version == "1"  # type: ignore[union-attr]
    with ExperimentStore(site.event_log) as store:
        assert store.get("ct-two_tower-2").status == "stopped"
    assert controller.store.cycle(2).outcome == "rejected"
    assert controller.state.state == "idle" and controller.state.champion == "1"
    controller.close()


def test_a_guardrail_failing_at_once_stops_the_test_before_min_duration(
    site: Site, tracking_uri: str
) -> None:
    document = ct_document(site, tracking_uri)
    document["experiment"] = {**document["experiment"], "min_duration_s": 2 * DAY}
    with Controller(CTConfig.model_validate(document)) as controller:
        now = _to_experimenting(controller, site)
        serve(site, now + 60, WORSE, units=400)
        decisions = controller.step(now + 600)
        assert decisions[0].action == "dont_ship" and decisions[0].detail["urgent"]
        assert "guardrail clicks/requests" in decisions[0].reason


def test_a_guardrail_failing_after_promotion_rolls_champion_back(
    controller: Controller, site: Site
) -> None:
    now = _to_experimenting(controller, site)
    serve(site, now + 60, BETTER, units=400)
    assert [d.action for d in controller.step(now + 3_600)] == ["promote"]
    # In the holdback the new champion loses most of its clicks.
    serve(site, now + 3_700, {"previous": 0.4, "champion": 0.05}, units=400, seed=4)
    decisions = controller.step(now + 3_800)
    assert [d.action for d in decisions] == ["rollback", "close"]
    rollback = decisions[0]
    assert rollback.reason.startswith("guardrail failed after promotion: guardrail clicks/requests")
    assert rollback.reason.endswith("champion rolled back to version 1")
    assert controller.registry.champion(MODEL).version == "1"  # type: ignore[union-attr]
    move = controller.registry.audit(MODEL, "champion")[-1]
    assert move.action == "rollback" and move.actor == "recops-ct"
    with ExperimentStore(site.event_log) as store:
        assert store.get("ct-two_tower-2-watch").status == "stopped"
    assert controller.store.cycle(2).outcome == "rolled_back"
    assert controller.state.champion == "1"


def test_the_gate_refuses_a_model_trained_on_a_corrupted_split(
    controller: Controller, site: Site
) -> None:
    _bootstrap(controller, site)
    decisions = controller.train_now(
        site.end + 600, reason="a broken feed", overrides={"split": {"quantile": 0.05}}
    )
    assert [d.action for d in decisions] == ["train", "gate_refused", "close"]
    refused = decisions[1]
    assert refused.reason.startswith("the gate refused version 2: failed: offline:recall@20:all")
    assert "< " in refused.reason and "champion two_tower/1" in refused.reason
    failed = [o for o in refused.detail["gate"]["outcomes"] if o["status"] == "failed"]
    assert [o["rule"] for o in failed] == ["offline:recall@20:all"]
    assert controller.store.cycle(2).overrides == {"split": {"quantile": 0.05}}
    versions = registered(controller)
    assert versions["gate"].tolist() == ["passed", "failed"]
    assert versions["aliases"].tolist() == ["challenger,champion", ""]
    assert controller.registry.champion(MODEL).version == "1"  # type: ignore[union-attr]


def test_a_model_the_registry_holds_as_champion_is_not_tested_again(
    controller: Controller, site: Site
) -> None:
    controller.step(site.end)
    # The same data again: every step but the registry's is a cache hit, the same digest.
    decisions = controller.train_now(site.end + 60, reason="by hand, nothing new")
    assert [d.action for d in decisions] == ["train", "unchanged", "close"]
    assert "version 1 is the champion already (same model digest)" in decisions[1].reason
    assert "cached" in decisions[1].detail["steps"]
    assert registered(controller)["version"].tolist() == ["1"]


def test_a_test_that_decides_nothing_ends_at_max_duration(
    controller: Controller, site: Site
) -> None:
    now = _to_experimenting(controller, site)
    serve(site, now + 60, {"champion": 0.2, "challenger": 0.2}, units=100)
    assert controller.step(now + DAY) == []
    decisions = controller.step(now + 3 * DAY)
    assert decisions[0].action == "inconclusive"
    assert decisions[0].reason.startswith("no decision after 259200 s (max_duration_s 259200)")
    assert controller.registry.champion(MODEL).version == "1"  # type: ignore[union-attr]


def test_a_test_stopped_by_hand_ends_the_cycle(controller: Controller, site: Site) -> None:
    now = _to_experimenting(controller, site)
    with ExperimentStore(site.event_log) as store:
        store.stop("ct-two_tower-2", actor="someone")
    decisions = controller.step(now + 60)
    assert [d.action for d in decisions] == ["test_stopped", "close"]
    assert controller.registry.champion(MODEL).version == "1"  # type: ignore[union-attr]


def test_a_champion_moved_by_hand_is_noted(controller: Controller, site: Site) -> None:
    now = _to_experimenting(controller, site)
    serve(site, now + 60, BETTER, units=400)
    controller.step(now + 3_600)  # promoted version 2, watching
    controller.registry.rollback(MODEL, actor="oncall", reason="pager")
    decisions = controller.step(now + 3_700)
    assert [d.action for d in decisions] == ["champion_changed", "watch_ended"]
    assert "champion is version 1 (was 2): moved outside the controller" in decisions[0].reason
    assert controller.state.champion == "1" and controller.state.state == "idle"


@pytest.mark.parametrize("winner", ["challenger", "champion"])
def test_an_interleaving_test_ships_the_preferred_ranking(
    site: Site, tracking_uri: str, winner: str
) -> None:
    document = ct_document(site, tracking_uri)
    document["experiment"] = {**document["experiment"], "type": "interleaving"}
    with Controller(CTConfig.model_validate(document)) as controller:
        now = _to_experimenting(controller, site)
        loser = "champion" if winner == "challenger" else "challenger"
        serve(site, now + 60, {winner: 0.4, loser: 0.05}, units=300)
        decisions = controller.step(now + 3_600)
        if winner == "challenger":
            assert decisions[0].action == "promote"
            assert decisions[0].reason.startswith("ship: challenger preferred: ")
            assert controller.registry.champion(MODEL).version == "2"  # type: ignore[union-attr]
        else:
            assert decisions[0].action == "dont_ship"
            assert "champion preferred" in decisions[0].reason
            assert controller.registry.champion(MODEL).version == "1"  # type: ignore[union-attr]
