"""Registration, alias moves with who and why, promotion refused without a passed gate, rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.registry import PromotionError, Registry, VersionNotFoundError
from recops.registry.audit import AliasMove, rollback_target

from .conftest import MODEL, add_version, judge


def _move(version: str, action: str = "promote") -> AliasMove:
    return AliasMove(MODEL, "champion", version, None, action, "me", "why", 0.0)  # type: ignore[arg-type]


def test_rollback_replays_the_moves_as_a_stack() -> None:
    assert rollback_target([], None) is None
    assert rollback_target([_move("1")], "1") is None
    assert rollback_target([_move("1"), _move("2")], "2") == "1"
    three = [_move("1"), _move("2"), _move("3")]
    assert rollback_target(three, "3") == "2"
    assert rollback_target([*three, _move("2", "rollback")], "2") == "1"
    assert rollback_target([*three, _move("2", "rollback"), _move("1", "rollback")], "1") is None
    # A redeploy of the same version is one step; a move made outside recops is on top.
    assert rollback_target([_move("1"), _move("2"), _move("2", "deploy")], "2") == "1"
    assert rollback_target([_move("1"), _move("2")], "5") == "2"


def test_registration_is_one_version_per_model_with_its_tags(
    registry: Registry, tmp_path: Path, trained_artifact: Path
) -> None:
    first = add_version(registry, tmp_path / "models", trained_artifact, "1", "aa11")
    assert first.new and first.version == "1"
    found = registry.version(MODEL, "1")
    assert found.model_digest == "aa11" and found.repository_version == "1"
    assert found.data_version == "data-1" and found.run_id == first.run_id
    assert found.source == f"runs:/{first.run_id}/model" and found.gate is None
    assert registry.find_digest(MODEL, "aa11") == found
    assert registry.champion(MODEL) is None and registry.challenger(MODEL) is None
    with pytest.raises(VersionNotFoundError, match=r"no registered version '7' \(versions: 1\)"):
        registry.version(MODEL, "7")


def test_promote_needs_a_passed_gate_and_records_who_and_why(
    registry: Registry, tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> None:
    one = add_version(registry, tmp_path / "models", trained_artifact, "1", "aa11")
    two = add_version(registry, tmp_path / "models", second_artifact, "2", "bb22")
    with pytest.raises(PromotionError, match="has no gate verdict"):
        registry.promote(MODEL, "1", reason="first")
    judge(registry, one, passed=True)
    judge(registry, two, passed=False)
    with pytest.raises(
        PromotionError, match="failed its gate: smoke_test: failed: set by the test"
    ):
        registry.promote(MODEL, "2", reason="try")
    with pytest.raises(PromotionError, match="say why"):
        registry.promote(MODEL, "1", reason="  ")

    move = registry.promote(MODEL, "1", actor="ana", reason="offline and OPE look good")
    assert (move.version, move.previous, move.action, move.actor) == ("1", None, "promote", "ana")
    assert registry.champion(MODEL).version == "1"  # type: ignore[union-attr]
    forced = registry.promote(MODEL, "2", actor="bo", reason="hotfix", force=True)
    assert forced.previous == "1" and forced.reason == "forced, gate failed: hotfix"
    tags = registry.version(MODEL, "2").tags
    assert tags["recops.champion.by"] == "bo" and tags["recops.champion.action"] == "promote"
    left = registry.version(MODEL, "1").tags
    assert left["recops.champion.left_by"] == "bo"
    assert left["recops.champion.left_reason"].startswith("promote to version 2")
    history = registry.audit(MODEL, "champion")
    assert [(m.version, m.actor, m.reason) for m in history] == [
        ("1", "ana", "offline and OPE look good"),
        ("2", "bo", "forced, gate failed: hotfix"),
    ]
    assert registry.version(MODEL, "2").aliases == ("champion",)


def test_rollback_is_one_call_back_to_the_previous_champion(
    registry: Registry, tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> None:
    one = add_version(registry, tmp_path / "models", trained_artifact, "1", "aa11")
    two = add_version(registry, tmp_path / "models", second_artifact, "2", "bb22")
    judge(registry, one, passed=True)
    judge(registry, two, passed=True)
    with pytest.raises(PromotionError, match="no earlier version to roll back to"):
        registry.rollback(MODEL, reason="nothing yet")
    registry.promote(MODEL, "1", reason="first")
    registry.promote(MODEL, "2", reason="won the A/B test")
    assert registry.rollback_target(MODEL).version == "1"  # type: ignore[union-attr]
    back = registry.rollback(MODEL, actor="ct", reason="guardrail latency failed")
    assert (back.version, back.previous, back.action) == ("1", "2", "rollback")
    assert registry.champion(MODEL).version == "1"  # type: ignore[union-attr]
    assert (
        registry.version(MODEL, "2")
        .tags["recops.champion.left_reason"]
        .startswith("rollback to version 1: guardrail")
    )
    with pytest.raises(PromotionError, match="no earlier version"):
        registry.rollback(MODEL, reason="again")
    # The challenger alias has its own history.
    registry.promote(MODEL, "2", alias="challenger", reason="next test")
    assert registry.challenger(MODEL).version == "2"  # type: ignore[union-attr]
    assert [m.alias for m in registry.audit(MODEL)] == [
        "champion", "champion", "champion", "challenger"
    ]  # fmt: skip


def test_names_and_aliases_are_checked(registry: Registry) -> None:
    with pytest.raises(ValueError, match="a model name is"):
        registry.versions("../etc")
    with pytest.raises(ValueError, match="an alias is"):
        registry.alias(MODEL, "latest")
    assert registry.versions("unknown") == [] and registry.audit("unknown") == []
    assert registry.alias("unknown", "champion") is None
