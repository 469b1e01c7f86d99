"""One servable version built whole: the model, its FAISS index, its item facts, its prior.

A :class:`LoadedModel` is immutable once built; :func:`build_loaded_model` checks
the model against :class:`~recops.serving.model_api.ServableModel`, builds and
tunes its index, maps the training users' histories to model rows and computes the
current prior, so that the first request of a version pays none of it. The
repository's :class:`~recops.serving.repository.ModelManager` swaps these bundles.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recops.data.schema import ITEM_ID, TIMESTAMP, USER_ID
from recops.serving import rerank
from recops.serving.catalog import UNKNOWN_TIME, ItemCatalog
from recops.serving.index import IndexParams, VectorIndex
from recops.serving.model_api import ServableModel
from recops.serving.prior_cache import PriorCache, PriorSnapshot
from recops.serving.releases import Releases

log = logging.getLogger("recops.serving")

#: The optional catalog file of a version folder (category and age filters).
CATALOG_FILE = "items.parquet"


class ModelLoadError(RuntimeError):
    """A version exists but could not be loaded; the message says why."""


@dataclass(frozen=True)
class RowHistory:
    """A known user's training history as model rows, oldest first.

    Parameters
    ----------
    rows:
        Indices into the model's ``item_ids_``, int64.
    times:
        Unix seconds of the events, int64, same length.
    """

    rows: np.ndarray
    times: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class LoadedModel:
    """One servable version: model, index and item facts, built together.

    Parameters
    ----------
    name, version:
        Where it came from in the repository.
    path:
        Its artifact directory.
    model:
        The loaded model.
    index:
        FAISS index over ``model.item_vectors()``.
    catalog:
        Category masks and publish times for the filters.
    load_seconds:
        Time to load the artifact and build the index.
    known_users:
        Users the model has an id embedding for (``user_ids_``), if it has any.
    histories:
        Each training user's most recent items (as model rows), from the training
        interactions the model keeps (``_train``, see :class:`~recops.models.base.Recommender`): a
        known user's history before any event reaches the online state.
    item_names:
        ``model.item_ids_`` as Python strings, row by row: replies name items
        without converting NumPy strings per request.
    releases:
        When each item comes out, for the filter that keeps unpublished items back.
    """

    name: str
    version: str
    path: Path
    model: ServableModel
    index: VectorIndex
    catalog: ItemCatalog
    load_seconds: float
    known_users: frozenset[str] = frozenset()
    histories: dict[str, RowHistory] = field(default_factory=dict, repr=False)
    item_names: list[str] = field(default_factory=list, repr=False)
    loaded_at: float = field(default_factory=time.time)
    _prior: PriorCache = field(default_factory=PriorCache, repr=False, compare=False)
    releases: Releases = field(default_factory=Releases.empty, repr=False, compare=False)

    def prior_at(self, now: int) -> PriorSnapshot:
        """The prior of ``now``'s refresh window and its best items (one lookup).

        In the server a window not computed yet is answered with the nearest one
        computed (see :class:`PriorCache`).
        """
        return self._prior.get(self.model, self.index.vectors, now)

    def prior_cached(self, now: int) -> bool:
        """Whether the prior of ``now``'s window is computed."""
        return self._prior.cached(now)

    def compute_prior(self, now: int) -> PriorSnapshot:
        """Compute the prior of ``now``'s window now, in the caller's thread."""
        return self._prior.compute(self.model, self.index.vectors, now)

    def wanted_priors(self) -> list[int]:
        """Windows requests asked for that are not computed yet, most recent first."""
        return self._prior.wanted()


def build_loaded_model(
    name: str,
    version: str,
    path: Path,
    model: ServableModel,
    index_params: IndexParams,
    history_size: int = 50,
    prior_refresh_s: int = 60,
    defer_prior: bool = False,
) -> LoadedModel:
    """Check the model against the interface, build its index and catalog.

    With ``defer_prior`` (the server) requests never compute the item prior (see
    :class:`PriorCache`); the current window's prior is computed here, at load time.
    """
    start = time.perf_counter()
    missing = missing_members(model)
    if missing:
        raise ModelLoadError(
            f"{path}: {type(model).__name__} is not servable: it lacks {', '.join(missing)} "
            "(see recops.serving.model_api.ServableModel)"
        )
    vectors = np.asarray(model.item_vectors(), dtype=np.float32)
    n_items = len(model.item_ids_)
    if vectors.shape != (n_items, model.dim):
        raise ModelLoadError(
            f"{path}: item_vectors() has shape {vectors.shape}, expected ({n_items}, {model.dim})"
        )
    index = VectorIndex(vectors, index_params)
    # One call now, so that the first request does not pay one-time costs (the
    # compilation of the tower kernel, lazily built tables).
    empty = np.array([], dtype=np.int64)
    model.encode_history(empty, empty, 0, None)
    rerank.warm_up()
    catalog_file = path / CATALOG_FILE
    item_ids = [str(i) for i in model.item_ids_]
    if catalog_file.is_file():
        catalog = ItemCatalog.from_parquet(catalog_file, item_ids, model.categories_)
    else:
        catalog = catalog_from_model(model, item_ids)
    histories = training_histories(getattr(model, "_train", None), history_size, model.item_index)
    tuning = index.tune_nprobe(sample_user_vectors(model, histories))
    if tuning is not None:
        log.info("%s/%s: %s", name, version, tuning.describe())
    known = frozenset(str(u) for u in getattr(model, "user_ids_", ())) | histories.keys()
    prior = PriorCache(prior_refresh_s, defer=defer_prior)
    if defer_prior:
        prior.compute(model, vectors, int(time.time()))
    return LoadedModel(
        name,
        version,
        path,
        model,
        index,
        catalog,
        load_seconds=time.perf_counter() - start,
        known_users=known,
        histories=histories,
        item_names=item_ids,
        _prior=prior,
        releases=Releases.of_model(model, n_items),
    )


#: Known users whose vectors tune the IVF index of a version as it loads.
TUNING_USERS = 256


def sample_user_vectors(
    model: ServableModel, histories: dict[str, RowHistory], n: int = TUNING_USERS
) -> np.ndarray:
    """Vectors of up to ``n`` known users (a seeded sample) at the end of their histories.

    The queries :meth:`~recops.serving.index.VectorIndex.tune_nprobe` measures recall
    on: real users, as the requests will bring them.
    """
    if not histories:
        return np.empty((0, model.dim), dtype=np.float32)
    users = sorted(histories)
    picked = np.random.default_rng(0).choice(len(users), min(n, len(users)), replace=False)
    now = 1 + max(int(h.times[-1]) for h in histories.values() if len(h.times))
    return np.stack(
        [
            np.asarray(
                model.encode_history(
                    histories[users[i]].rows, histories[users[i]].times, now, users[i]
                ),
                dtype=np.float32,
            )
            for i in sorted(picked)
        ]
    )


def missing_members(model: object) -> list[str]:
    """Names of :class:`ServableModel` members that ``model`` does not have."""
    if isinstance(model, ServableModel):
        return []
    members = {m for m in vars(ServableModel) if not m.startswith("_")}
    members |= set(ServableModel.__annotations__)
    return sorted(m for m in members if not hasattr(model, m))


def training_histories(
    interactions: object, limit: int, item_index: dict[str, int]
) -> dict[str, RowHistory]:
    """The last ``limit`` known items of each user in a frame with user_id, item_id, timestamp.

    Items are mapped to model rows here, once, so that a request does no lookups
    for the part of the history the model was trained on. Vectorised (one sort,
    one split) so that a few million training events take seconds at load time.
    """
    import pandas as pd

    if not isinstance(interactions, pd.DataFrame) or len(interactions) == 0:
        return {}
    if not {USER_ID, ITEM_ID, TIMESTAMP} <= set(interactions.columns):
        return {}
    item_rows = interactions[ITEM_ID].astype(str).map(item_index)
    known = item_rows.notna().to_numpy()
    frame = interactions[known]
    codes, users = pd.factorize(frame[USER_ID].astype(str))
    times = frame[TIMESTAMP].to_numpy(dtype=np.int64)
    items = item_rows[known].to_numpy(dtype=np.int64)
    order = np.lexsort((times, codes))
    starts = np.searchsorted(codes[order], np.arange(len(users)))
    ends = np.append(starts[1:], len(order))
    out: dict[str, RowHistory] = {}
    for user, start, end in zip(users, starts, ends, strict=True):
        rows = order[max(start, end - limit) : end]
        out[str(user)] = RowHistory(items[rows], times[rows])
    return out


def catalog_from_model(model: ServableModel, item_ids: list[str]) -> ItemCatalog:
    """Item facts the model carries itself, if any.

    A TwoTower keeps its catalog features as ``catalog_`` (padded category indices
    ``1..n_categories`` per item, 0 = padding, and publish times, -1 = unknown). A
    model without them still serves; category and age filters then match nothing.
    """
    features = getattr(model, "catalog_", None)
    categories = list(model.categories_)
    matrix = getattr(features, "categories", None)
    published = getattr(features, "publish_time", None)
    if matrix is None or published is None or len(published) != len(item_ids):
        return ItemCatalog.empty(len(item_ids), categories)
    matrix = np.asarray(matrix)
    masks = {c: (matrix == j + 1).any(axis=1) for j, c in enumerate(categories)}
    published = np.asarray(published, dtype=np.int64)
    times = np.where(published >= 0, published, UNKNOWN_TIME)
    return ItemCatalog(masks, times)
