"""The recommendation pipeline, free of HTTP: state → user tower → ANN → filter → re-rank.

Each request captures one :class:`~recops.serving.loaded_model.LoadedModel` at its
start and uses only that bundle, so a model switch in the middle of a request cannot
mix two versions. Every stage is timed and reported to an observer (the Prometheus
stage histogram in the server, a plain dict in the benchmark).

Re-ranking: the index retrieves by inner product only; the user→item score adds the
model's time-aware ``item_prior(now)``. The prior's best items (cached with the
prior, recomputed every ``prior_refresh_s``) join the ANN's candidates, and every
candidate is re-scored exactly, so the ranking is that of the full score over the
candidates. On the benchmark catalog the served top-10 equals the exact top-10 of
the full score over every item.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recops.serving.clock import RequestClock
from recops.serving.loaded_model import LoadedModel
from recops.serving.rerank import ALL_ELIGIBLE, best_rows
from recops.serving.schemas import (
    CategoryRequest,
    Filters,
    Recommendations,
    RecommendRequest,
    SearchRequest,
    SimilarRequest,
)
from recops.serving.state import UserStateStore

StageObserver = Callable[[str, float], None]

_NO_ROWS = np.array([], dtype=np.int64)


class NotFoundError(LookupError):
    """An id the served model does not know; the server answers 404 naming it."""

    def __init__(self, kind: str, value: str) -> None:
        super().__init__(f"unknown {kind} {value!r}")
        self.kind = kind
        self.value = value


@dataclass(frozen=True)
class UserRequest:
    """What the user tower needs, resolved from the online state and the request.

    Parameters
    ----------
    bundle:
        The model version this request is served by.
    user_id:
        The user, if the request names one.
    rows:
        Index rows (into the model's ``item_ids_``) of the user's known history
        items, oldest first: training history, then live events, then the request's.
    times:
        Unix seconds of those events.
    strategy:
        ``personalized`` when the history holds a known item (or the model knows
        the user), else ``cold_start``.
    now:
        Unix time of the request.
    """

    bundle: LoadedModel
    user_id: str | None
    rows: np.ndarray
    times: np.ndarray
    strategy: str
    now: int


_NO_BONUS = np.empty(0, dtype=np.float32)

#: A ranking: rows of the model's ``item_ids_`` and their scores, best first.
Ranked = tuple[list[int], list[float]]


# Not frozen: a frozen dataclass's __init__ costs about 1 µs more, per request.
@dataclass(slots=True)
class _Retrieval:
    """One request's retrieval, filtered and ready for the index and the re-rank."""

    bundle: LoadedModel
    vector: np.ndarray
    #: Rows wanted.
    n: int
    #: Candidates asked of the index (besides the excluded rows it may return).
    fetch: int
    now: int
    #: ``(n_items,)`` bool mask of the eligible rows; ``None``: every row.
    eligible: np.ndarray | None
    #: Rows never returned (int64, any order).
    skip: np.ndarray
    use_prior: bool
    history: np.ndarray | None


def _no_observer(stage: str, seconds: float) -> None:
    return None


class RecommendService:
    """Serves the four recommendation tasks from the served model and the user state.

    Parameters
    ----------
    state:
        Online user state (recent history per user).
    rerank_candidates:
        Candidates fetched from the index before re-ranking (``k`` at least).
    observer:
        Receives ``(stage, seconds)`` for each stage of each request.
    clock:
        Resolves a request's time (its ``now``, or the server clock); any ``now``
        by default, bounded in the server (:mod:`recops.serving.clock`).
    """

    def __init__(
        self,
        state: UserStateStore,
        *,
        rerank_candidates: int = 50,
        observer: StageObserver | None = None,
        clock: RequestClock | None = None,
    ) -> None:
        if isinstance(rerank_candidates, bool) or not isinstance(rerank_candidates, int):
            raise ValueError(
                f"`rerank_candidates` must be a positive int (got {rerank_candidates!r})"
            )
        if rerank_candidates < 1:
            raise ValueError(
                f"`rerank_candidates` must be a positive int (got {rerank_candidates!r})"
            )
        self.state = state
        self.rerank_candidates = rerank_candidates
        self.observe = observer or _no_observer
        self.clock = clock or RequestClock()

    # -- user → items -------------------------------------------------------------

    def prepare(self, bundle: LoadedModel, request: RecommendRequest) -> UserRequest:
        """Stage 1: the user's history from the online state plus the request."""
        start = time.perf_counter()
        now = self.clock(request.now)
        # Oldest first: what the model saw in training, then live events, then the
        # items the request itself carries. Training histories are stored as rows.
        rows: list[np.ndarray] = []
        times: list[np.ndarray] = []
        user_id = request.user_id
        if user_id:
            trained = bundle.histories.get(user_id)
            if trained is not None:
                rows.append(trained.rows)
                times.append(trained.times)
            live = self.state.history(user_id)
            if len(live):
                self._append_known(bundle, live.item_ids, live.timestamps, rows, times)
        if request.history:
            stamps = [now] * len(request.history)
            self._append_known(bundle, request.history, stamps, rows, times)
        if len(rows) == 1:
            all_rows, all_times = rows[0], times[0]
        elif rows:
            all_rows, all_times = np.concatenate(rows), np.concatenate(times)
        else:
            all_rows, all_times = _NO_ROWS, _NO_ROWS
        known_user = user_id is not None and user_id in bundle.known_users
        strategy = "personalized" if len(all_rows) or known_user else "cold_start"
        self.observe("state", time.perf_counter() - start)
        return UserRequest(bundle, user_id, all_rows, all_times, strategy, now)

    @staticmethod
    def _append_known(
        bundle: LoadedModel,
        item_ids: Sequence[str] | np.ndarray,
        stamps: Sequence[int] | np.ndarray,
        rows: list[np.ndarray],
        times: list[np.ndarray],
    ) -> None:
        """Append the rows and times of the items the model knows (others are dropped)."""
        index = bundle.model.item_index
        pairs = [(index[i], t) for i, t in zip(item_ids, stamps, strict=True) if i in index]
        if pairs:
            rows.append(np.array([r for r, _ in pairs], dtype=np.int64))
            times.append(np.array([t for _, t in pairs], dtype=np.int64))

    def encode(self, user: UserRequest) -> np.ndarray:
        """Stage 2: the user vector, from the model's one-user path (``encode_history``)."""
        start = time.perf_counter()
        vector = user.bundle.model.encode_history(user.rows, user.times, user.now, user.user_id)
        self.observe("user_tower", time.perf_counter() - start)
        return np.asarray(vector, dtype=np.float32)

    def rank_user(
        self, user: UserRequest, vector: np.ndarray, request: RecommendRequest
    ) -> Recommendations:
        """Stages 3-5: ANN with filters, re-rank with the item prior, build the reply."""
        return self.reply(user.bundle, self.rank_candidates(user, vector, request), user.strategy)

    def rank_candidates(
        self, user: UserRequest, vector: np.ndarray, request: RecommendRequest, depth: int = 0
    ) -> Ranked:
        """Stages 3-4: the best ``max(k, depth)`` rows and their scores, best first.

        A ranking policy that explores takes its slate from these ``depth`` rows.
        """
        (ranked,) = self.rank_many([(user, vector, request, depth)])
        if isinstance(ranked, Exception):
            raise ranked
        return ranked

    def rank_many(
        self, items: Sequence[tuple[UserRequest, np.ndarray, RecommendRequest, int]]
    ) -> list[Ranked | Exception]:
        """:meth:`rank_candidates` for several requests, with one ANN call per index.

        The requests without a filter mask that share an index are searched in one
        FAISS call for the largest fetch among them; each keeps the prefix of its
        row it asked for, the same rows as its own search on the exact and IVF
        indexes (the cells scanned do not depend on the fetch; HNSW searches with
        the widest beam of the batch). A request whose filters fail (an unknown
        category) gets its exception in its place; the others are served.
        """
        plans: list[_Retrieval | Exception] = []
        for user, vector, request, depth in items:
            excluded = self._excluded(
                user.bundle, request, user.rows if request.exclude_seen else None
            )
            try:
                plans.append(
                    self._plan(
                        user.bundle,
                        vector,
                        request,
                        user.now,
                        excluded,
                        use_prior=True,
                        n=max(request.k, depth),
                        history=user.rows,
                    )
                )
            except NotFoundError as exc:
                plans.append(exc)
        live = [plan for plan in plans if not isinstance(plan, Exception)]
        found = iter(self._ann(live))
        return [
            plan if isinstance(plan, Exception) else self._rerank(plan, *next(found))
            for plan in plans
        ]

    def recommend(self, request: RecommendRequest, bundle: LoadedModel) -> Recommendations:
        """The whole user → items pipeline without batching."""
        user = self.prepare(bundle, request)
        return self.rank_user(user, self.encode(user), request)

    # -- item / text / category → items ------------------------------------------

    def similar(self, request: SimilarRequest, bundle: LoadedModel) -> Recommendations:
        """Items similar to ``request.item_id`` (never the item itself)."""
        if request.item_id not in bundle.model.item_index:
            raise NotFoundError("item", request.item_id)
        vector = self._encode_timed(bundle.model.encode_similar, [request.item_id])
        own = np.array([bundle.model.item_index[request.item_id]], dtype=np.int64)
        excluded = self._excluded(bundle, request, own)
        now = self.clock(request.now)
        ranked = self._rank(self._plan(bundle, vector, request, now, excluded, False))
        return self.reply(bundle, ranked, "similar")

    def search(self, request: SearchRequest, bundle: LoadedModel) -> Recommendations:
        """Items matching a free-text query, as the model's own ``search`` ranks them.

        A model that ranks queries itself (``fuse_search``, see
        :class:`~recops.serving.model_api.ServableModel`; the TwoTower: BM25 matches
        over the titles first, then the tower, by default) gets the index's best
        eligible items and ranks them with its titles (stage ``lexical``); other
        models are ranked by the index alone.
        No item prior is added, as in ``TwoTower.search``.
        """
        vector = self._encode_timed(bundle.model.encode_texts, [request.query])
        excluded = self._excluded(bundle, request, None)
        now = self.clock(request.now)
        fuse = getattr(bundle.model, "fuse_search", None)
        depth_of = getattr(bundle.model, "search_depth", None)
        if fuse is None or depth_of is None:
            ranked = self._rank(self._plan(bundle, vector, request, now, excluded, False))
            return self.reply(bundle, ranked, "search")
        plan = self._plan(bundle, vector, request, now, excluded, False, n=int(depth_of(request.k)))
        rows, scores = self._rank(plan)
        start = time.perf_counter()
        fused_rows, fused_scores = fuse(
            request.query,
            np.asarray(rows, dtype=np.int64),
            np.asarray(scores, dtype=np.float64),
            request.k,
            eligible=plan.eligible,
            exclude=np.sort(plan.skip),
        )
        self.observe("lexical", time.perf_counter() - start)
        return self.reply(bundle, (fused_rows.tolist(), fused_scores.tolist()), "search")

    def category(self, request: CategoryRequest, bundle: LoadedModel) -> Recommendations:
        """Items of a category, ranked by the category tower."""
        if request.category not in bundle.catalog.category_masks:
            raise NotFoundError("category", request.category)
        vector = self._encode_timed(bundle.model.encode_categories, [request.category])
        excluded = self._excluded(bundle, request, None)
        now = self.clock(request.now)
        # When the catalog knows the category's items, only they are eligible.
        own = bundle.catalog.category_masks[request.category]
        restrict = own if own.any() else None
        plan = self._plan(bundle, vector, request, now, excluded, False, restrict=restrict)
        ranked = self._rank(plan)
        return self.reply(bundle, ranked, "category")

    # -- shared stages -----------------------------------------------------------

    def _encode_timed(
        self, encode: Callable[[list[str]], np.ndarray], args: list[str]
    ) -> np.ndarray:
        start = time.perf_counter()
        vector = np.asarray(encode(args), dtype=np.float32)[0]
        self.observe("user_tower", time.perf_counter() - start)
        return vector

    @staticmethod
    def _excluded(bundle: LoadedModel, request: Filters, extra: np.ndarray | None) -> set[int]:
        """Rows never returned: the request's ``exclude_items`` plus ``extra``."""
        index = bundle.model.item_index
        excluded = {index[i] for i in request.exclude_items if i in index}
        if extra is not None:
            excluded.update(extra.tolist())
        return excluded

    def _rank(self, plan: _Retrieval) -> Ranked:
        """Stages ``ann`` and ``rerank`` of one request."""
        (found,) = self._ann([plan])
        return self._rerank(plan, *found)

    def _plan(
        self,
        bundle: LoadedModel,
        vector: np.ndarray,
        request: Filters,
        now: int,
        excluded: set[int],
        use_prior: bool,
        *,
        restrict: np.ndarray | None = None,
        n: int = 0,
        history: np.ndarray | None = None,
    ) -> _Retrieval:
        eligible, excluded = self._filter(bundle, request, now, excluded, restrict)
        n = max(n, request.k)
        skip = np.fromiter(excluded, dtype=np.int64, count=len(excluded))
        return _Retrieval(
            bundle,
            vector,
            n,
            max(n, self.rerank_candidates),
            now,
            eligible,
            skip,
            use_prior,
            history,
        )

    def _filter(
        self,
        bundle: LoadedModel,
        request: Filters,
        now: int,
        excluded: set[int],
        restrict: np.ndarray | None = None,
    ) -> tuple[np.ndarray | None, set[int]]:
        """Stage ``filter``: the eligible mask (``None``: all) and the excluded rows."""
        start = time.perf_counter()
        # An age window is [now - max_age, now]: an item published after `now` (a
        # replay of the past, or an embargo) is not fresh, it is not out yet.
        window = (None, None) if request.max_age_s is None else (now - request.max_age_s, now)
        try:
            eligible = bundle.catalog.eligible(request.categories, *window)
        except KeyError as exc:
            raise NotFoundError("category", str(exc.args[0])) from exc
        if restrict is not None:
            eligible = restrict if eligible is None else eligible & restrict
        # Items not out yet at `now` (an embargoed article, a replay's future) never are.
        eligible, excluded = bundle.releases.restrict(now, eligible, excluded)
        self.observe("filter", time.perf_counter() - start)
        return eligible, excluded

    def _ann(self, plans: Sequence[_Retrieval]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Stage ``ann``: each plan's candidate rows and their inner products.

        Plans without a mask that share an index take one FAISS call; each is
        observed with its share of the call's time.
        """
        found: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(plans)
        shared: dict[int, list[int]] = {}
        for i, plan in enumerate(plans):
            if plan.eligible is None:
                shared.setdefault(id(plan.bundle.index), []).append(i)
                continue
            start = time.perf_counter()
            index = plan.bundle.index
            rows = index.candidates(
                plan.vector, plan.fetch, eligible=plan.eligible, exclude=np.sort(plan.skip)
            )
            self.observe("ann", time.perf_counter() - start)
            found[i] = (rows, index.vectors[rows] @ plan.vector)
        for positions in shared.values():
            start = time.perf_counter()
            # Without a mask the exclusions (seen items: tens) are dropped in the
            # re-rank: fetching that many more is cheaper than filtering here. The
            # index's inner products are exact (flat vectors): no need to gather the
            # candidates' rows from the item matrix again.
            wants = [plans[i].fetch + len(plans[i].skip) for i in positions]
            index = plans[positions[0]].bundle.index
            if len(positions) == 1:
                found[positions[0]] = index.nearest(plans[positions[0]].vector, wants[0])
            else:
                queries = np.empty((len(positions), index.dim), dtype=np.float32)
                for row, i in enumerate(positions):  # cheaper than np.stack's checks
                    queries[row] = plans[i].vector
                ids, sims = index.nearest_many(queries, max(wants))
                for row, (i, want) in enumerate(zip(positions, wants, strict=True)):
                    mine, mine_sims = ids[row, :want], sims[row, :want]
                    if len(mine) and mine[-1] < 0:  # padding comes last
                        keep = mine >= 0
                        mine, mine_sims = mine[keep], mine_sims[keep]
                    found[i] = (mine, mine_sims)
            share = (time.perf_counter() - start) / len(positions)
            for _ in positions:
                self.observe("ann", share)
        return [f for f in found if f is not None]

    def _rerank(self, plan: _Retrieval, rows: np.ndarray, sims: np.ndarray) -> Ranked:
        """Stage ``rerank``: the ``plan.n`` best eligible rows and their full scores.

        With a history (the user's item rows, user→item only), the model's item-item
        term for that history joins: its best ``fetch`` items become candidates and
        every candidate it covers gets its value added.
        """
        start = time.perf_counter()
        bundle, vector, skip = plan.bundle, plan.vector, plan.skip
        allowed = ALL_ELIGIBLE if plan.eligible is None else plan.eligible
        scale = bundle.model.score_scale
        if plan.use_prior:
            snapshot = bundle.prior_at(plan.now)
            top, top_prior = snapshot.top, snapshot.top_prior
            top_sims = snapshot.top_vectors @ vector
            bonus_rows, bonus = _NO_ROWS, _NO_BONUS
            item_knn = getattr(bundle.model, "item_knn_scores", None)
            if item_knn is not None and plan.history is not None and len(plan.history):
                bonus_rows, bonus = item_knn(plan.history)
            picked = best_rows(
                rows,
                sims,
                scale,
                plan.n,
                prior=snapshot.prior,
                top=top,
                top_sims=top_sims,
                top_prior=top_prior,
                excluded=skip,
                eligible=allowed,
                bonus_rows=bonus_rows,
                bonus=bonus,
                n_extra=plan.fetch,
                vectors=bundle.index.vectors,
                query=vector,
            )
        else:
            picked = best_rows(rows, sims, scale, plan.n, excluded=skip, eligible=allowed)
        self.observe("rerank", time.perf_counter() - start)
        return picked

    def reply(self, bundle: LoadedModel, ranked: Ranked, strategy: str) -> Recommendations:
        """Stage 5: the reply naming the items of ``ranked`` (rows and scores)."""
        rows, scores = ranked
        names = bundle.item_names
        # Built from values the server made itself: no need to validate them again.
        return Recommendations.model_construct(
            items=[names[r] for r in rows],
            scores=scores,
            model=bundle.name,
            version=bundle.version,
            strategy=strategy,
        )
