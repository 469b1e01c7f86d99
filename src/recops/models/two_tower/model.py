"""The public multi-task two-tower recommender (user, item, query, category, similar)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import torch

from recops.data.schema import ITEM_ID, TIMESTAMP, USER_ID
from recops.data.validation import check_unix_seconds
from recops.models.base import Queries, Recommender, top_k, validate_k
from recops.models.text.bm25 import BM25Index
from recops.models.text.fusion import reciprocal_rank_fusion
from recops.models.two_tower.config import TwoTowerConfig
from recops.models.two_tower.data import TrainingData
from recops.models.two_tower.features import (
    CatalogFeatures,
    build_catalog_features,
    build_sequences,
    hash_texts,
)
from recops.models.two_tower.inference import (
    PriorScorer,
    UserEncoder,
    history_table,
    history_weight,
)
from recops.models.two_tower.item_knn import ItemKnnTerm
from recops.models.two_tower.network import TwoTowerNet
from recops.models.two_tower.preparation import (
    Events,
    Prepared,
    catalog_columns,
    prepare,
    time_counts,
)
from recops.models.two_tower.training import (
    TrainingSummary,
    build_network,
    item_knn_similarity,
    train_network,
)

SECONDS_PER_HOUR = 3600.0
#: Depth of each ranking that hybrid search fuses (the tower's and the lexical one):
#: an item below it in both gets nothing from either.
SEARCH_CANDIDATES = 200


def _indices(values: Sequence[str], lookup: dict[str, int], kind: str) -> np.ndarray:
    """Indices of ``values`` in ``lookup``; KeyError naming the first unknown one."""
    if isinstance(values, str):
        raise TypeError(f"expected a sequence of {kind} ids, not a single string ({values!r})")
    missing = [v for v in values if v not in lookup]
    if missing:
        raise KeyError(f"unknown {kind} {missing[0]!r} (the model knows {len(lookup)})")
    return np.array([lookup[v] for v in values], dtype=np.int64)


class TwoTower(Recommender):
    """Multi-task two-tower recommender with a time-aware item prior.

    Parameters
    ----------
    config:
        A :class:`TwoTowerConfig`; alternatively give its fields as keyword
        arguments (``TwoTower(dim=32, epochs=5)``), which are validated here.
    verbose:
        Show a progress bar while training.

    Attributes
    ----------
    item_ids_ : numpy.ndarray
        Recommendable item ids (str), the row order of :meth:`item_vectors`.
    item_index : dict[str, int]
        Row of each item id.
    categories_ : list[str]
        Categories known to :meth:`encode_categories`.
    summary_ : TrainingSummary
        Epochs, validation scores and timing of ``fit``.

    Notes
    -----
    A user→item score is ``score_scale * user_vec @ item_vec + item_prior(now)``,
    plus, for histories shorter than ``max_history``, an item-item term weighted on
    the validation window (:meth:`item_knn_scores`, :mod:`recops.models.two_tower.item_knn`);
    item→item and category→item scores are ``score_scale * query_vec @ item_vec``.
    Query→item (:meth:`search`) ranks BM25 matches over the titles first and fills
    up with that score's ranking by default (``search_mode``).
    """

    def __init__(
        self, config: TwoTowerConfig | None = None, *, verbose: bool = False, **params: Any
    ) -> None:
        if config is not None and params:
            raise ValueError(
                f"give either `config` or keyword parameters, not both (got {sorted(params)})"
            )
        self.config = config if config is not None else TwoTowerConfig(**params)
        self.verbose = bool(verbose)

    def get_params(self) -> dict[str, Any]:
        """The configuration as keyword arguments (for cloning and tuning)."""
        return self.config.model_dump()

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None = None,
        impressions: pd.DataFrame | None = None,
    ) -> Self:
        """Train on ``interactions`` (``user_id, item_id, timestamp``) and the optional catalog.

        Without a catalog the item tower uses ids only. Items present only in the
        catalog are recommendable through their content vector. With ``ray_workers``
        (config), the network trains data-parallel on Ray Train. ``impressions``
        (an ``item_id`` column, one row per time an item was shown in the training
        period, or one row per item with a ``count`` column) enable the exposure
        correction of ``exposure_debias``.
        """
        prepared = self.prepare(interactions, items, impressions)
        if self.config.ray_workers:
            from recops.models.two_tower.ray_train import train_network_on_ray

            net, summary = train_network_on_ray(
                prepared.data, self.config, self.config.ray_workers, verbose=self.verbose
            )
        else:
            net, summary = train_network(prepared.data, self.config, verbose=self.verbose)
        self._set_state(
            net,
            prepared.item_ids,
            prepared.categories,
            prepared.user_ids,
            prepared.data.catalog,
            prepared.events,
            summary,
        )
        self._set_titles(prepared.titles)
        return self

    def prepare(
        self,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None = None,
        impressions: pd.DataFrame | None = None,
    ) -> Prepared:
        """The indexed data ``fit`` trains on (vocabularies, histories, counts)."""
        return prepare(self.config, interactions, items, impressions)

    def _set_state(
        self,
        net: TwoTowerNet,
        item_ids: np.ndarray,
        categories: list[str],
        user_ids: np.ndarray,
        catalog: CatalogFeatures,
        events: Events,
        summary: TrainingSummary,
        item_vectors: np.ndarray | None = None,
    ) -> None:
        """Install a trained network and derive everything inference needs."""
        net.eval()
        self.net_ = net
        self.item_ids_ = item_ids
        self.item_index = {item: i for i, item in enumerate(item_ids)}
        self.categories_ = list(categories)
        self.user_ids_ = user_ids
        self._lookup = {item: i + 1 for i, item in enumerate(item_ids)}
        self._user_lookup = {u: i + 1 for i, u in enumerate(user_ids)}
        self._category_lookup = {c: i + 1 for i, c in enumerate(categories)}
        self.catalog_ = catalog
        self.events_ = events
        self.summary_ = summary
        self._counts = time_counts(self.config, events, catalog, len(item_ids))
        self._user_encoder = UserEncoder.from_network(net, catalog.categories, catalog.tokens)
        # The tower weight per history length, looked up instead of computed per request.
        self._weights_by_length = self._history_weight(np.arange(self.config.max_history + 1))
        self._prior = PriorScorer.from_network(net, self._counts)
        self._item_knn = self._fit_item_knn(events, len(item_ids))
        if item_vectors is None:
            with torch.no_grad():
                item_vectors = net.encode_items(
                    torch.arange(1, len(item_ids) + 1),
                    torch.from_numpy(catalog.categories),
                    torch.from_numpy(catalog.tokens),
                ).numpy()
        self._item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self._first_seen = self._first_seen_times()
        self._train = pd.DataFrame(
            {
                USER_ID: user_ids[events.users - 1],
                ITEM_ID: item_ids[events.items - 1],
                TIMESTAMP: events.times,
            }
        )

    def _fit_item_knn(self, events: Events, n_items: int) -> ItemKnnTerm | None:
        """The item-item term over every training event, when validation gave it a weight."""
        weight = self.summary_.item_knn_weight
        if weight <= 0 or self.config.item_knn_neighbors == 0 or len(events.items) == 0:
            return None
        neighbors, shrink = item_knn_similarity(self.config, self.summary_)
        return ItemKnnTerm.fit(
            events.users,
            events.items - 1,
            n_items,
            neighbors=neighbors,
            shrink=shrink,
            weight=weight,
            max_history=self.config.max_history,
        )

    def _set_titles(self, titles: np.ndarray | None) -> None:
        """Keep the titles (``""`` when none) and build the lexical index over them.

        ``None`` (a model saved before titles were stored): every title is empty, so
        nothing matches lexically and search ranks by the tower alone.
        """
        if titles is None:
            titles = np.full(len(self.item_ids_), "", dtype=object)
        self.titles_ = np.asarray(titles, dtype=object)
        self._lexical = BM25Index.build(self.titles_.tolist())

    # ------------------------------------------------------------ new items
    def add_items(self, items: pd.DataFrame) -> np.ndarray:
        """Make catalog items recommendable without retraining; the rows they got.

        Each new item is embedded from its content alone (categories known to the
        model and title words; ``publish_time`` feeds the time prior's age and
        "not yet published" features) with the trained towers: its item vector, the
        vector the user tower reads when the item is in a history (so clicks on it
        count at once), and its item→item seed vector. Its title joins the lexical
        index of :meth:`search`. Ids the model already knows are left as they are (a
        catalog file may list them again).

        The model is changed by rebinding its arrays, never by writing into them, so
        a shallow copy taken before (:meth:`with_items`) keeps serving unchanged.

        Parameters
        ----------
        items:
            A catalog table: ``item_id`` and any of ``title``, ``categories`` (a list
            per item), ``publish_time`` (unix seconds).

        Returns
        -------
        numpy.ndarray
            Indices into ``item_ids_`` (and rows of :meth:`item_vectors`) of the
            items added, in the order of ``items``; empty when all were known.
        """
        if not hasattr(self, "net_"):
            raise ValueError("add_items needs a fitted model: call fit() or load() first")
        if not isinstance(items, pd.DataFrame) or ITEM_ID not in items.columns:
            raise ValueError("add_items: `items` must be a DataFrame with an item_id column")
        frame = items.drop_duplicates(ITEM_ID, keep="last")
        # Dict lookups, not Series.isin: isin hashes the whole id map (0.3 s at 100k
        # items) whatever the size of the batch.
        known = self.item_index
        frame = frame[[str(i) not in known for i in frame[ITEM_ID]]]
        if len(frame) == 0:
            return np.array([], dtype=np.int64)
        titles, cats, pub = catalog_columns(frame)
        new_ids = np.array(frame[ITEM_ID].astype(str).tolist(), dtype=object)
        known_cats = {i: [c for c in cs if c in self._category_lookup] for i, cs in cats.items()}
        added = build_catalog_features(
            new_ids, self._category_lookup, titles, known_cats, pub, self.config.text_buckets
        )
        first = len(self.item_ids_)
        rows = np.arange(first, first + len(new_ids), dtype=np.int64)
        with torch.no_grad():
            vectors = self.net_.encode_items(
                torch.from_numpy(rows + 1),
                torch.from_numpy(added.categories),
                torch.from_numpy(added.tokens),
            ).numpy()
        history = history_table(self.net_, added.categories, added.tokens, first=first + 1)
        new_titles = np.array([titles.get(i, "") for i in new_ids], dtype=object)
        self.titles_ = np.concatenate([self.titles_, new_titles])
        self._lexical = self._lexical.extended(new_titles.tolist())
        self.item_ids_ = np.concatenate([self.item_ids_, new_ids])
        new_rows = dict(zip(new_ids.tolist(), rows.tolist(), strict=True))
        self.item_index = {**self.item_index, **new_rows}
        self._lookup = {**self._lookup, **{i: r + 1 for i, r in new_rows.items()}}
        self.catalog_ = self.catalog_.append(added)
        self._item_vectors = np.ascontiguousarray(
            np.vstack([self._item_vectors, vectors]), dtype=np.float32
        )
        self._user_encoder = self._user_encoder.with_rows(history)
        if self._item_knn is not None:
            self._item_knn = self._item_knn.grown(len(self.item_ids_))
        never = np.iinfo(np.int64).max
        self._first_seen = np.concatenate(
            [self._first_seen, np.where(added.publish_time >= 0, added.publish_time, never)]
        )
        if self._counts is not None:
            first_seen = np.where(
                added.publish_time >= 0, added.publish_time, np.iinfo(np.int64).max
            )
            self._counts = self._counts.with_items(first_seen)
            self._prior = PriorScorer.from_network(self.net_, self._counts)
        return rows

    def with_items(self, items: pd.DataFrame) -> tuple[TwoTower, np.ndarray]:
        """A new model that also serves ``items``, and their rows; ``self`` is unchanged.

        The copy shares the network and every array that does not change (adding
        costs the new items' encoding plus copies of the id tables), so a server can
        build the grown model beside the one it serves and swap atomically.
        """
        grown = copy.copy(self)
        rows = grown.add_items(items)
        return grown, rows

    # ------------------------------------------------------------- properties
    @property
    def dim(self) -> int:
        """Dimension of every vector the model produces."""
        return self.config.dim

    @property
    def score_scale(self) -> float:
        """Multiplier of the inner products in every score (``1 / temperature``)."""
        return self.config.score_scale

    def item_vectors(self) -> np.ndarray:
        """``(n_items, dim)`` float32 unit rows, in the order of ``item_ids_``."""
        return self._item_vectors

    # --------------------------------------------------------------- encoders
    def encode_users(self, queries: Queries) -> np.ndarray:
        """``(n, dim)`` user vectors from the histories in ``queries`` (real-time path).

        Unknown item ids in a history are ignored; an empty history gives the
        learned cold-start vector; the user-id embedding (when configured) is used
        only for users seen in training. The norm of each vector is the weight of
        the personal score against ``item_prior``, which grows with the number of
        known history items (chosen on the validation window; see
        :func:`~recops.models.two_tower.inference.history_weight`).
        """
        if len(queries) == 1:
            return self._encode_one(queries)
        history, ages, users = self._history_arrays(queries)
        weight = self._history_weight((history > 0).sum(axis=1))
        return self._user_encoder(history, ages, users) * weight[:, None]

    def _history_arrays(self, queries: Queries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded item indices (oldest first, 0 = padding), their ages in hours, user indices."""
        n, width = len(queries), self.config.max_history
        history = np.zeros((n, width), dtype=np.int64)
        ages = np.zeros((n, width), dtype=np.float32)
        users = np.zeros(n, dtype=np.int64)
        lookup = self._lookup
        for row in range(n):
            idx = np.fromiter((lookup.get(i, 0) for i in queries.histories[row]), np.int64)
            known = idx > 0
            idx = idx[known][-width:]
            times = np.asarray(queries.history_times[row], dtype=np.int64)[known][-width:]
            if len(idx):
                history[row, width - len(idx) :] = idx
                hours = (int(queries.now[row]) - times) / SECONDS_PER_HOUR
                ages[row, width - len(idx) :] = np.maximum(hours, 0.0)
            users[row] = self._user_lookup.get(str(queries.user_ids[row]), 0)
        return history, ages, users

    def _encode_one(self, queries: Queries) -> np.ndarray:
        index = self.item_index
        pairs = [
            (index[i], t)
            for i, t in zip(queries.histories[0], queries.history_times[0], strict=True)
            if i in index
        ]
        rows = np.array([r for r, _ in pairs], dtype=np.int64)
        times = np.array([t for _, t in pairs], dtype=np.int64)
        user = str(queries.user_ids[0])
        return self.encode_history(rows, times, int(queries.now[0]), user)[None, :]

    def encode_history(
        self, rows: np.ndarray, times: np.ndarray, now: int, user_id: str | None = None
    ) -> np.ndarray:
        """One user's vector from item rows: the serving path, ``(dim,)`` float32.

        Parameters
        ----------
        rows:
            Indices into ``item_ids_`` of the user's items, oldest first (only the
            last ``max_history`` count).
        times:
            Unix seconds of those events, same length.
        now:
            Unix time of the request.
        user_id:
            The user, for the user-id embedding when the model has one.
        """
        width = self.config.max_history
        rows, times = rows[-width:], times[-width:]
        if rows.dtype != np.int64 or times.dtype != np.int64:
            rows, times = rows.astype(np.int64), times.astype(np.int64)
        user = self._user_lookup.get(user_id, 0) if user_id is not None else 0
        weight = float(self._weights_by_length[len(rows)])
        return self._user_encoder.one(rows, times, int(now), user, weight)

    def _history_weight(self, n_items: np.ndarray | int) -> np.ndarray:
        return history_weight(n_items, self.summary_.tower_weights, self.config.max_history)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, dim)`` vectors of free-text queries (search)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        tokens = torch.from_numpy(hash_texts(texts, self.config.text_buckets))
        return self.net_.encode_queries(tokens).numpy()

    @torch.no_grad()
    def encode_categories(self, categories: Sequence[str]) -> np.ndarray:
        """``(n, dim)`` vectors of categories; KeyError naming an unknown one."""
        idx = _indices(categories, self._category_lookup, "category")
        return self.net_.encode_categories(torch.from_numpy(idx)).numpy()

    @torch.no_grad()
    def encode_similar(self, item_ids: Sequence[str]) -> np.ndarray:
        """``(n, dim)`` seed-item vectors for similar items; KeyError naming an unknown item."""
        rows = _indices(item_ids, self._lookup, "item")
        return self.net_.encode_similar(
            torch.from_numpy(rows),
            torch.from_numpy(self.catalog_.categories[rows - 1]),
            torch.from_numpy(self.catalog_.tokens[rows - 1]),
        ).numpy()

    def item_knn_scores(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One user's item-item term from their item rows (oldest first): rows and values.

        The items the user's last ``max_history`` distinct items co-occur with (sorted
        rows of ``item_ids_``) and their weighted similarity sums, which
        :meth:`score` adds to those items' scores. Empty when the model has no such
        term or the history is long enough for its weight to be zero
        (:mod:`~recops.models.two_tower.item_knn`).
        """
        if self._item_knn is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        return self._item_knn.one(np.asarray(rows, dtype=np.int64))

    def item_prior(self, now: int) -> np.ndarray:
        """``(n_items,)`` float32 time-aware additive score at unix time ``now``.

        Only training events strictly before ``now``'s time bucket are counted.
        Zeros when the model was trained without ``time_prior``.
        """
        if self._prior is None:
            return np.zeros(len(self.item_ids_), dtype=np.float32)
        return self._prior(np.arange(1, len(self.item_ids_) + 1), int(now))

    # ---------------------------------------------------------------- scoring
    def score(self, queries: Queries) -> np.ndarray:
        """``(n, n_items)`` user→item scores: scaled cosine plus ``item_prior(now)``.

        For short histories the item-item term is added too (:meth:`item_knn_scores`).
        Items that do not exist yet at a query's ``now`` (:meth:`known_at`) score
        ``-inf``: an article is not recommended before it is published.
        """
        scores = self.score_scale * (self.encode_users(queries) @ self._item_vectors.T)
        if self._item_knn is not None:
            scores += self._item_knn.scores(self._history_arrays(queries)[0])
        now = np.asarray(queries.now, dtype=np.int64)
        for t in np.unique(now):
            rows = now == t
            if self._prior is not None:
                scores[rows] += self.item_prior(int(t))
            future = ~self.known_at(int(t))
            if future.any():
                scores[np.ix_(rows, future)] = -np.inf
        return scores

    def known_at(self, now: int) -> np.ndarray:
        """``(n_items,)`` bool: items that exist at unix time ``now``.

        An item exists once it had a training event or its publish time has
        passed; an item with neither time is taken as existing (nothing says it is
        from the future).
        """
        first = self._first_seen
        return (first == np.iinfo(np.int64).max) | (first < int(now))

    def _first_seen_times(self) -> np.ndarray:
        """Per item: its first training event or publish time, whichever is earlier."""
        first = np.full(len(self.item_ids_), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, self.events_.items - 1, self.events_.times)
        published = self.catalog_.publish_time
        return np.where(published >= 0, np.minimum(first, published), first)

    def _top(
        self,
        vectors: np.ndarray,
        k: int,
        exclude: np.ndarray | None = None,
        now: int | None = None,
        prior_weight: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        k = validate_k(k)
        scores = self.score_scale * (vectors @ self._item_vectors.T)
        if now is not None:
            check_unix_seconds(np.array([now]), "`now`")
            if prior_weight:
                scores += prior_weight * self.item_prior(now)
            scores[:, ~self.known_at(now)] = -np.inf
        if exclude is not None:
            scores[np.arange(len(exclude)), exclude] = -np.inf
        idx, top = top_k(scores, k)
        return self.item_ids_[idx], top

    def similar(
        self,
        item_ids: Sequence[str],
        k: int = 10,
        *,
        now: int | None = None,
        prior_weight: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items likely to follow each of ``item_ids`` (the item itself excluded).

        With ``now``, items that do not exist yet at ``now`` (:meth:`known_at`) are
        left out and ``prior_weight * item_prior(now)`` is added to every score, so
        fresh, currently consumed items win ties over stale ones (news); without it
        the ranking is timeless.
        """
        vectors = self.encode_similar(item_ids)
        exclude = np.array([self.item_index[i] for i in item_ids])
        return self._top(vectors, k, exclude, now, prior_weight)

    def search(
        self,
        texts: Sequence[str],
        k: int = 10,
        *,
        now: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each free-text query, ranked as ``search_mode`` says.

        ``"lexical_first"`` (default): items sharing a word with the query by BM25
        over the titles, then the query tower's best others (score 0) up to ``k``.
        ``"hybrid"``: BM25 and the query tower's ranking, each
        :data:`SEARCH_CANDIDATES` deep (or ``k``), fused by reciprocal rank
        (:meth:`fuse_search`); items without a word of the query still rank by the
        tower. ``"tower"``: scaled cosine of the query vector; ``"lexical"``: BM25
        alone (only items sharing a word with the query).

        With ``now``, items that do not exist yet at ``now`` (:meth:`known_at`) are
        left out. No item prior is added: search ranks by what the query says, not
        by what is popular, the same as the server's ``/v1/search``.

        Returns
        -------
        tuple of numpy.ndarray
            Item ids and scores, ``(len(texts), min(k, n_items))``; places without
            an item (fewer eligible or matching items) hold ``None`` and ``-inf``.
        """
        k = validate_k(k)
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        eligible = None
        if now is not None:
            check_unix_seconds(np.array([now]), "`now`")
            eligible = self.known_at(now)
        depth = self.search_depth(k)
        width = min(k, len(self.item_ids_))
        ids = np.full((len(texts), width), None, dtype=object)
        scores = np.full((len(texts), width), -np.inf)
        if self.config.search_mode == "lexical":
            tower_rows = np.zeros((len(texts), 0), dtype=np.int64)
            tower_scores = np.zeros((len(texts), 0))
        else:
            tower = self.score_scale * (self.encode_texts(texts) @ self._item_vectors.T)
            if eligible is not None:
                tower[:, ~eligible] = -np.inf
            tower_rows, tower_scores = top_k(tower, depth)
        for i, text in enumerate(texts):
            found = np.isfinite(tower_scores[i])
            rows, best = self.fuse_search(
                text, tower_rows[i][found], tower_scores[i][found], k, eligible=eligible
            )
            ids[i, : len(rows)] = self.item_ids_[rows]
            scores[i, : len(rows)] = best
        return ids, scores

    def search_depth(self, k: int) -> int:
        """How many of the tower's best items :meth:`fuse_search` needs for top-``k``."""
        return max(SEARCH_CANDIDATES, k)

    def fuse_search(
        self,
        text: str,
        tower_rows: np.ndarray,
        tower_scores: np.ndarray,
        k: int,
        *,
        eligible: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top-``k`` rows of one query from the tower's ranking and the titles.

        The one ranking of search, shared by :meth:`search` and the server (which
        takes the tower's ranking from its index).

        Parameters
        ----------
        text:
            The query.
        tower_rows, tower_scores:
            The query tower's best rows among the eligible ones, best first, and
            their scores, :meth:`search_depth` deep (fewer when fewer are eligible).
        k:
            Rows wanted.
        eligible, exclude:
            The items allowed (a boolean mask over ``item_ids_``) and rows never
            returned, as applied to ``tower_rows``: the lexical ranking obeys them.

        Returns
        -------
        tuple of numpy.ndarray
            Rows and scores, best first: BM25 then 0 for the tower's fill in
            ``"lexical_first"``, RRF scores ``Σ 1 / (60 + rank)`` in ``"hybrid"``,
            the tower's in ``"tower"``, BM25 in ``"lexical"``.
        """
        mode = self.config.search_mode
        if mode == "tower":
            return tower_rows[:k], tower_scores[:k]
        depth = self.search_depth(k)
        lexical, bm25 = self._lexical.top(text, depth, eligible=eligible, exclude=exclude)
        if mode == "lexical":
            return lexical[:k], bm25[:k]
        if mode == "lexical_first":
            rows, scores = lexical[:k], bm25[:k]
            fill = tower_rows[~np.isin(tower_rows, rows)][: k - len(rows)]
            return np.concatenate([rows, fill]), np.concatenate([scores, np.zeros(len(fill))])
        return reciprocal_rank_fusion([lexical, tower_rows[:depth]], k)

    def by_category(
        self,
        categories: Sequence[str],
        k: int = 10,
        *,
        now: int | None = None,
        prior_weight: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each category (``now`` as in :meth:`similar`)."""
        return self._top(self.encode_categories(categories), k, None, now, prior_weight)

    # -------------------------------------------------------------- artifact
    def save(self, path: str | Path) -> Path:
        """Write the model as a self-describing directory (safetensors + JSON)."""
        from recops.models.two_tower.artifact import save_artifact

        return save_artifact(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> TwoTower:
        """Read a model written by :meth:`save`; raises ``ArtifactError`` if it is damaged."""
        from recops.models.two_tower.artifact import load_artifact

        return load_artifact(cls, Path(path))

    def _restore(
        self,
        state: dict[str, torch.Tensor],
        item_ids: np.ndarray,
        categories: list[str],
        user_ids: np.ndarray,
        catalog: CatalogFeatures,
        events: Events,
        summary: TrainingSummary,
        item_vectors: np.ndarray,
        titles: np.ndarray | None = None,
    ) -> None:
        """Rebuild the fitted state from artifact parts (used by ``load``).

        The network's id tables have one row per item known at training (the
        ``has_id`` buffer's length); items added later are content-only. The
        lexical index is rebuilt from ``titles`` (``None``: an artifact saved before
        titles were kept, which searches by its tower alone).
        """
        if "has_id" not in state:
            raise KeyError("the weights lack the has_id buffer")
        data_sizes = TrainingData(
            sequences=build_sequences(events.users[:0], events.items[:0], events.times[:0], 1),
            catalog=catalog,
            counts=time_counts(self.config, events, catalog, len(item_ids)),
            n_items=int(state["has_id"].shape[0]) - 1,
            n_users=len(user_ids),
            n_categories=len(categories),
        )
        net = build_network(data_sizes, self.config)
        net.load_state_dict(state, strict=True)
        self._set_state(net, item_ids, categories, user_ids, catalog, events, summary, item_vectors)
        self._set_titles(titles)
