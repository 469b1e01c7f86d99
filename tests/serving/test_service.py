"""The recommendation pipeline without HTTP: batched and single paths agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recops.models.base import Queries
from recops.models.two_tower import TwoTower
from recops.serving.loaded_model import LoadedModel
from recops.serving.repository import ModelManager, ModelRepository
from recops.serving.schemas import RecommendRequest, SearchRequest
from recops.serving.service import NotFoundError, RecommendService
from recops.serving.state import UserStateStore
from tests.models.two_tower.conftest import in_mode
from tests.serving.conftest import START, _train, make_repository


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


def test_a_batch_ranks_like_single_requests(bundles: list[LoadedModel]) -> None:
    state = UserStateStore()
    state.record_many([("live", "i1", START + 3600 * 47), ("live", "i4", START + 3600 * 47)])
    service = RecommendService(state, rerank_candidates=8)
    now = START + 3600 * 48
    filtered = [
        RecommendRequest(user_id="u1", k=3, now=now, categories=["tech"]),  # a mask: searched alone
        RecommendRequest(user_id="u1", k=3, now=now, exclude_items=["i2", "i5"]),
        RecommendRequest(user_id="u1", k=3, now=now, categories=["no-such-category"]),
    ]
    # Requests of two model versions mixed in one batch (a switch while batching),
    # different depths (an exploring policy's pool) and fetches (seen items).
    items = [
        (service.prepare(b, r), r, depth)
        for r in _requests() + filtered
        for b in bundles
        for depth in (0, 12)
    ]
    together = service.rank_many([(u, service.encode(u), r, d) for u, r, d in items])
    assert len(together) == len(items)
    for (user, request, depth), ranked in zip(items, together, strict=True):
        if request.categories == ["no-such-category"]:
            assert isinstance(ranked, NotFoundError) and ranked.value == "no-such-category"
            continue
        assert not isinstance(ranked, Exception)
        alone = service.rank_candidates(user, service.encode(user), request, depth)
        assert ranked[0] == alone[0]
        np.testing.assert_allclose(ranked[1], alone[1], rtol=1e-6)
        assert 0 < len(ranked[0]) <= max(request.k, depth)
    assert [u.strategy for u, _, _ in items[:16:4]] == [
        "personalized",
        "personalized",
        "personalized",
        "cold_start",
    ]


def test_nearest_many_rows_are_each_querys_own_search(bundles: list[LoadedModel]) -> None:
    index = bundles[0].index
    rng = np.random.default_rng(0)
    queries = rng.normal(size=(5, index.dim)).astype(np.float32)
    ids, sims = index.nearest_many(queries, 7)
    assert ids.shape == sims.shape == (5, 7)
    for row, query in enumerate(queries):
        alone_ids, alone_sims = index.nearest(query, 7)
        np.testing.assert_array_equal(ids[row], alone_ids)
        np.testing.assert_allclose(sims[row], alone_sims, rtol=1e-6)


def test_recommend_is_prepare_encode_rank(bundles: list[LoadedModel]) -> None:
    service = RecommendService(UserStateStore())
    for request in _requests():
        user = service.prepare(bundles[0], request)
        staged = service.rank_user(user, service.encode(user), request)
        assert service.recommend(request, bundles[0]) == staged
        assert not set(staged.items) & set(bundles[0].model.item_ids_[user.rows])


def test_the_item_item_term_is_served_as_the_model_scores_it(tmp_path: Path) -> None:
    """A short history's served top-k and scores are the model's, the term included."""
    artifact = _train(tmp_path / "model", seed=0, epochs=2, item_knn_weight=8.0)
    bundle = ModelManager(ModelRepository(make_repository(tmp_path / "repo", artifact))).switch(
        "news", "1"
    )
    model = bundle.model
    assert isinstance(model, TwoTower) and model.summary_.item_knn_weight == 8.0
    service = RecommendService(UserStateStore())
    now = START + 3600 * 48
    for history in (["i3"], ["i3", "i6"], ["i1", "i4", "i7", "i10"]):
        served = service.recommend(RecommendRequest(history=history, k=5, now=now), bundle)
        queries = Queries(
            [""], [np.array(history, dtype=object)], [np.full(len(history), now)], [now]
        )
        ids, scores = model.recommend_queries(queries, k=5)
        assert served.items == ids[0].tolist()
        np.testing.assert_allclose(served.scores, scores[0], rtol=1e-4, atol=1e-4)
        rows, values = model.item_knn_scores(np.array([model.item_index[i] for i in history]))
        assert len(rows) and values.max() > 0  # the term is there to be served


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_rerank_candidates_must_be_a_positive_int(value: object) -> None:
    with pytest.raises(ValueError, match="`rerank_candidates` must be a positive int"):
        RecommendService(UserStateStore(), rerank_candidates=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["lexical_first", "hybrid", "tower", "lexical"])
def test_search_serves_what_the_model_ranks(
    bundles: list[LoadedModel], trained_artifact: Path, mode: str
) -> None:
    """``/v1/search``'s pipeline returns ``TwoTower.search``'s items and scores."""
    stages: list[str] = []
    service = RecommendService(UserStateStore(), observer=lambda s, _: stages.append(s))
    model = in_mode(TwoTower.load(trained_artifact), mode)
    served_model = bundles[0].model
    assert isinstance(served_model, TwoTower) and served_model.config.search_mode == "lexical_first"
    served_model.config = model.config
    # Items i30.. are published later; not on a publish second (known_at counts an item
    # from the second after, the server's release filter from that second on).
    now = START + 3600 * 5 - 300
    for query in ("tech story", "sports number 7", "7 42 59", "no word matches"):
        for k in (3, 10, 60):
            served = service.search(SearchRequest(query=query, k=k, now=now), bundles[0])
            ids, scores = model.search([query], k, now=now)
            found = np.isfinite(scores[0])
            assert served.items == ids[0][found].tolist(), (query, k)
            # The tower's scores are the index's float32 inner products.
            np.testing.assert_allclose(served.scores, scores[0][found], rtol=1e-5, atol=1e-5)
    assert "i42" not in served.items, "not published at now"
    assert {"filter", "ann", "lexical"} <= set(stages)


def test_search_filters_apply_to_the_lexical_half_too(
    bundles: list[LoadedModel], trained_artifact: Path
) -> None:
    service = RecommendService(UserStateStore())
    model = TwoTower.load(trained_artifact)
    query, dropped = "sports story number 3", model.item_index["i4"]
    request = SearchRequest(
        query=query, k=8, now=START + 3600 * 48, categories=["tech"], exclude_items=["i4"]
    )
    served = service.search(request, bundles[0])
    assert served.items and all(int(i[1:]) % 3 == 1 for i in served.items), "tech only"
    assert "i4" not in served.items
    # In process: the tower's ranking of the eligible items, fused with the titles.
    tech = np.array([int(i[1:]) % 3 == 1 for i in model.item_ids_])
    sims = model.score_scale * (model.item_vectors() @ model.encode_texts([query])[0])
    order = [r for r in np.argsort(-sims, kind="stable") if tech[r] and r != dropped]
    expected, scores = model.fuse_search(
        query, np.array(order), sims[order], 8, eligible=tech, exclude=np.array([dropped])
    )
    assert served.items == model.item_ids_[expected].tolist()
    np.testing.assert_allclose(served.scores, scores, rtol=1e-6)
