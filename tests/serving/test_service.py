"""The recommendation pipeline without HTTP: batched and single paths agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recops.serving.repository import LoadedModel, ModelManager, ModelRepository
from recops.serving.schemas import RecommendRequest
from recops.serving.service import RecommendService
from recops.serving.state import UserStateStore
from tests.serving.conftest import START, make_repository


@pytest.fixture()
def bundles(tmp_path: Path, trained_artifact: Path, second_artifact: Path) -> list[LoadedModel]:
    first = make_repository(tmp_path / "a", trained_artifact)
    second = make_repository(tmp_path / "b", second_artifact)
    return [ModelManager(ModelRepository(root)).switch("news", "1") for root in (first, second)]


def _requests() -> list[RecommendRequest]:
    now = START + 3600 * 48
    return [
        RecommendRequest(user_id="u1", k=5, now=now),  # trained history
        RecommendRequest(user_id="live", k=5, now=now),  # online state only
        RecommendRequest(history=["i3", "i6", "not-an-item"], k=5, now=now),  # anonymous
        RecommendRequest(user_id="nobody", k=5, now=now),  # cold start
    ]


def test_a_batch_encodes_like_single_requests(bundles: list[LoadedModel]) -> None:
    state = UserStateStore()
    state.record_many([("live", "i1", START + 3600 * 47), ("live", "i4", START + 3600 * 47)])
    service = RecommendService(state)
    # Requests of two model versions mixed in one batch (a switch while batching).
    users = [service.prepare(b, r) for r in _requests() for b in bundles]
    together = service.encode(users)
    assert len(together) == len(users)
    for user, vector in zip(users, together, strict=True):
        np.testing.assert_allclose(vector, service.encode([user])[0], atol=1e-6)
    assert [u.strategy for u in users[::2]] == [
        "personalized",
        "personalized",
        "personalized",
        "cold_start",
    ]


def test_recommend_is_prepare_encode_rank(bundles: list[LoadedModel]) -> None:
    service = RecommendService(UserStateStore())
    for request in _requests():
        user = service.prepare(bundles[0], request)
        staged = service.rank_user(user, service.encode([user])[0], request)
        assert service.recommend(request, bundles[0]) == staged
        assert not set(staged.items) & set(bundles[0].model.item_ids_[user.rows])


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_rerank_candidates_must_be_a_positive_int(value: object) -> None:
    with pytest.raises(ValueError, match="`rerank_candidates` must be a positive int"):
        RecommendService(UserStateStore(), rerank_candidates=value)  # type: ignore[arg-type]
