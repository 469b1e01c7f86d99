"""The model repository and the atomically swapped "loaded model" the server reads.

Layout, like an inference server's, in a local folder or on object storage
(:mod:`recops.serving.storage`)::

    <root>/<name>/<version>/     a model artifact directory (TwoTower.save)
    <root>/<name>/<version>/items.parquet   optional catalog for category/age filters

A :class:`LoadedModel` is immutable once built: the model, its FAISS index and its
item facts. :class:`ModelManager` serves exactly one of them through a single
reference; a switch builds the new bundle completely first and then replaces the
reference in one assignment, so a request holds either the old bundle or the new
one, never a mix. A version that fails to load raises and leaves the serving one
untouched.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recops.data.schema import ITEM_ID, TIMESTAMP, USER_ID
from recops.serving import rerank
from recops.serving.catalog import UNKNOWN_TIME, ItemCatalog
from recops.serving.index import IndexParams, VectorIndex
from recops.serving.model_api import ModelLoader, ServableModel, load_two_tower
from recops.serving.releases import Releases
from recops.serving.storage import ModelStorage

log = logging.getLogger("recops.serving")

#: Names and versions are path components: no separators, no dot-dot.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CATALOG_FILE = "items.parquet"


class ModelNotFoundError(LookupError):
    """A model or version that the repository (or memory) does not have."""


class ModelLoadError(RuntimeError):
    """A version exists but could not be loaded; the message says why."""


class InvalidNameError(ValueError):
    """A model name or version that is not a safe path component."""


class NotReadyError(RuntimeError):
    """No model is being served yet (503 with ``Retry-After``: see :mod:`recops.serving.errors`)."""


#: Why nothing is served, until something else says why (:attr:`ModelManager.unserved`).
NOTHING_LOADED = "no model is loaded yet"


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a safe model name/version, else raise InvalidNameError."""
    if not isinstance(value, str) or not _SAFE_NAME.match(value) or ".." in value:
        raise InvalidNameError(
            f"{kind} must be 1-128 characters of letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit (got {value!r})"
        )
    return value


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Natural sort key: ``"10" > "9"``, ``"1.10" > "1.9"``; digits before letters."""
    parts = re.split(r"(\d+)", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


@dataclass(frozen=True)
class PriorSnapshot:
    """The item prior of one refresh window and its best items, ready to re-rank.

    Parameters
    ----------
    prior:
        ``(n_items,)`` float32 ``item_prior`` at the start of the window.
    top:
        Rows of the prior's best items, best first (at most ``top_n``).
    top_vectors:
        Their item vectors, contiguous: every request scores these same rows, so
        they stay in cache instead of being gathered from the item matrix.
    top_prior:
        ``prior[top]``.
    """

    prior: np.ndarray
    top: np.ndarray
    top_vectors: np.ndarray
    top_prior: np.ndarray


class _PriorCache:
    """The item prior and its best items, computed once per ``refresh_s`` window.

    ``item_prior`` is O(n_items) (about 20 ms at 100k items): computing it per
    request, or even per second, would put that stall in the latency tail. A
    popularity/freshness term a minute old ranks the same for all practical
    purposes, so requests share the prior at the start of their ``refresh_s``
    window. The lock only guards the slots; the computation runs outside it.

    Two modes. In a library (``defer=False``) a window not cached yet is computed by
    the call that needs it. In the server (``defer=True``) a request never computes:
    it gets the cached window nearest to its own, and its window is noted as
    :meth:`wanted`, for the prefetcher (:mod:`recops.serving.prefetch`) to
    :meth:`compute` in a thread, at a bounded rate; the prefetcher also computes
    the next window before it starts, so live requests find theirs ready. Only the
    very first call of a version (nothing cached at all) computes inline; the
    server makes that call when it loads the version.
    """

    #: Windows kept: the present one, the next one, and two for replays.
    SLOTS = 4
    #: Wanted windows remembered, the most recently asked: a replay moves from one
    #: window to the next, and computing the ones it left would only evict the new.
    WANTED = 2

    def __init__(self, refresh_s: int = 60, top_n: int = 50, defer: bool = False) -> None:
        if refresh_s < 1:
            raise ValueError(f"`refresh_s` must be a positive int (got {refresh_s!r})")
        self.refresh_s = refresh_s
        self.top_n = top_n
        self.defer = defer
        self._lock = threading.Lock()
        self._slots: OrderedDict[int, PriorSnapshot] = OrderedDict()
        self._wanted: OrderedDict[int, None] = OrderedDict()

    def window(self, now: int) -> int:
        """Start of the refresh window holding ``now``."""
        return now - now % self.refresh_s

    def cached(self, now: int) -> bool:
        """Whether the prior of ``now``'s window is ready."""
        with self._lock:
            return self.window(now) in self._slots

    def get(self, model: ServableModel, vectors: np.ndarray, now: int) -> PriorSnapshot:
        """The prior of ``now``'s window; in deferred mode, the nearest cached one if absent."""
        window = self.window(now)
        with self._lock:
            found = self._slots.get(window)
            if found is not None:
                self._slots.move_to_end(window)
                return found
            if self.defer and self._slots:
                self._wanted[window] = None
                self._wanted.move_to_end(window)
                while len(self._wanted) > self.WANTED:
                    self._wanted.popitem(last=False)
                nearest = min(self._slots, key=lambda w: (abs(w - window), w))
                return self._slots[nearest]
        return self.compute(model, vectors, window)

    def wanted(self) -> list[int]:
        """Windows requests asked for that are not cached, most recently asked first."""
        with self._lock:
            return [w for w in reversed(self._wanted) if w not in self._slots]

    def compute(self, model: ServableModel, vectors: np.ndarray, now: int) -> PriorSnapshot:
        """Compute and keep the prior of ``now``'s window (the caller's thread pays)."""
        window = self.window(now)
        prior = np.asarray(model.item_prior(window), dtype=np.float32)
        if len(prior) == 0 or prior.max() == prior.min():
            top = np.array([], dtype=np.int64)  # a flat prior favours nothing
        else:
            n = min(self.top_n, len(prior))
            part = np.argpartition(-prior, n - 1)[:n]
            top = part[np.argsort(-prior[part], kind="stable")].astype(np.int64)
        snapshot = PriorSnapshot(prior, top, np.ascontiguousarray(vectors[top]), prior[top])
        # The present window and the next one (what live traffic uses) are never
        # evicted by a replay's windows, or the prefetcher would compute them again.
        present = self.window(int(time.time()))
        keep = (present, present + self.refresh_s)
        with self._lock:
            self._slots[window] = snapshot
            self._wanted.pop(window, None)
            for old in [w for w in self._slots if w not in keep]:  # least recently used first
                if len(self._slots) <= self.SLOTS:
                    break
                del self._slots[old]
        return snapshot


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
    _prior: _PriorCache = field(default_factory=_PriorCache, repr=False, compare=False)
    releases: Releases = field(default_factory=Releases.empty, repr=False, compare=False)

    def prior_at(self, now: int) -> PriorSnapshot:
        """The prior of ``now``'s refresh window and its best items (one lookup).

        In the server a window not computed yet is answered with the nearest one
        computed (see :class:`_PriorCache`).
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
    :class:`_PriorCache`); the current window's prior is computed here, at load time.
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
    prior = _PriorCache(prior_refresh_s, defer=defer_prior)
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


class ModelRepository:
    """Read-only view of ``<root>/<name>/<version>/`` folders, local or on object storage.

    Parameters
    ----------
    root:
        The repository: a folder, or an fsspec URL (``s3://bucket/models``; see
        :mod:`recops.serving.storage` for what "complete" means there).
    cache_dir:
        Where versions on object storage are downloaded to be loaded; default a
        folder per repository under the system's temporary folder.
    """

    def __init__(self, root: str | Path, cache_dir: str | Path | None = None) -> None:
        self.storage = ModelStorage(root, cache_dir)

    @property
    def url(self) -> str:
        """The repository's folder (absolute) or URL, for messages."""
        return self.storage.url

    def available(self) -> bool:
        """Whether the repository's folder (or object-storage prefix) exists."""
        return self.storage.available()

    def models(self) -> dict[str, list[str]]:
        """Model name → its versions, oldest first."""
        out: dict[str, list[str]] = {}
        for name, versions in sorted(self.storage.listing().items()):
            if _SAFE_NAME.match(name):
                safe = [v for v in versions if _SAFE_NAME.match(v)]
                out[name] = sorted(safe, key=version_key)
        return out

    def exists(self, name: str, version: str) -> bool:
        """Whether ``name``/``version`` is in the repository (nothing is downloaded)."""
        return self.storage.exists(check_name("model name", name), check_name("version", version))

    def path(self, name: str, version: str) -> Path:
        """A local folder holding ``name``/``version`` (downloaded from object storage)."""
        check_name("model name", name)
        check_name("version", version)
        try:
            return self.storage.local_path(name, version)
        except FileNotFoundError:
            raise ModelNotFoundError(
                f"no version {version!r} of model {name!r} in {self.url}"
            ) from None

    def default_name(self, name: str | None) -> str:
        """``name`` if given, else the only model in the repository."""
        if name is not None:
            return check_name("model name", name)
        names = list(self.models())
        if len(names) != 1:
            raise ModelNotFoundError(
                f"{self.url} holds {len(names)} models ({', '.join(names) or 'none'}): "
                "say which one to serve"
            )
        return names[0]

    def latest(self, name: str) -> str:
        """The highest version of ``name``."""
        versions = self.models().get(check_name("model name", name), [])
        if not versions:
            raise ModelNotFoundError(f"model {name!r} has no versions in {self.url}")
        return versions[-1]


class ModelManager:
    """Loads versions, serves one, and swaps it atomically.

    Parameters
    ----------
    repository:
        Where versions come from.
    index_params:
        How each version's FAISS index is built.
    loader:
        Loads an artifact directory; ``TwoTower.load`` by default.
    history_size:
        Training items kept per known user.
    prior_refresh_s:
        Seconds between recomputations of the item prior.
    defer_prior:
        Requests never compute the item prior; a background task does (the server,
        see :class:`_PriorCache`).
    on_load:
        Called after each load attempt with ``(name, version, seconds, ok)`` (the
        server's load-duration and failure metrics).

    Attributes
    ----------
    prepare:
        Applied to each version as it loads, before it is kept (the server's: the
        new items of its catalog file, see :mod:`recops.serving.items`).
    unserved:
        Why nothing is served, while nothing is: what ``/readyz`` and the 503 of every
        request say (the alias follower says which alias names no version yet, see
        :mod:`recops.serving.registry_follower`).
    """

    def __init__(
        self,
        repository: ModelRepository,
        index_params: IndexParams | None = None,
        loader: ModelLoader | None = None,
        history_size: int = 50,
        prior_refresh_s: int = 60,
        defer_prior: bool = False,
        on_load: Callable[[str, str, float, bool], None] | None = None,
    ) -> None:
        self.repository = repository
        self.on_load = on_load
        self.history_size = history_size
        self.prior_refresh_s = prior_refresh_s
        self.defer_prior = defer_prior
        self.index_params = index_params or IndexParams()
        self.loader: ModelLoader = loader or load_two_tower
        # Serialises loads/switches/unloads; requests and readers never take it.
        self._admin_lock = threading.RLock()
        # Replaced, never changed in place, under the admin lock: readers take the
        # reference without a lock (a load that takes seconds blocks no reader).
        self._loaded: dict[tuple[str, str], LoadedModel] = {}
        # The one reference requests read. Replaced by a single assignment.
        self._serving: LoadedModel | None = None
        # A switch scheduled for a moment (unix time, bundle): the workers of one
        # server flip together (see recops.serving.coordination).
        self._scheduled: tuple[float, LoadedModel] | None = None
        self.prepare: Callable[[LoadedModel], LoadedModel] | None = None
        self.unserved = NOTHING_LOADED

    def _due(self) -> LoadedModel | None:
        scheduled = self._scheduled
        if scheduled is not None and time.time() >= scheduled[0]:
            self._serving = scheduled[1]  # the atomic swap, at its moment
            self._scheduled = None
        return self._serving

    @property
    def serving(self) -> LoadedModel | None:
        """The bundle requests use now, or ``None`` before the first load."""
        return self._due()

    def current(self) -> LoadedModel:
        """The serving bundle; NotReadyError when none is loaded."""
        bundle = self._due()
        if bundle is None:
            raise NotReadyError(self.unserved)
        return bundle

    def switch_at(self, name: str, version: str, at: float) -> LoadedModel:
        """Serve ``name``/``version`` from unix time ``at`` on (loading it first if needed).

        Every request from ``at`` on gets the new version, whichever thread asks;
        a switch scheduled later replaces one not yet due.
        """
        with self._admin_lock:
            bundle = self.load(name, version)
            self._scheduled = (at, bundle)
            self._due()
            return bundle

    def loaded(self) -> list[LoadedModel]:
        """Bundles in memory (the serving one included); never waits for a load."""
        return list(self._loaded.values())

    def known_item(self, item_id: str) -> str | None:
        """A loaded version's own string for ``item_id`` (the served one first), or None.

        The online state keeps only items some loaded version knows, under this
        string, which every user holding the item shares. Before any version is
        loaded (a server waiting for its alias, say) every item is kept as it is,
        so the first version to load finds the users' recent histories.
        """
        if not self._loaded:
            return item_id
        serving = self._serving
        bundles = self._loaded.values() if serving is None else (serving, *self._loaded.values())
        for bundle in bundles:
            row = bundle.model.item_index.get(item_id)
            if row is not None:
                return bundle.item_names[row]
        return None

    def load(self, name: str, version: str) -> LoadedModel:
        """Load ``name``/``version`` into memory without serving it (idempotent)."""
        with self._admin_lock:
            key = (name, version)
            if key in self._loaded:
                return self._loaded[key]
            start = time.perf_counter()
            where = f"{self.repository.url}/{name}/{version}"
            try:
                # Inside the try: on object storage this downloads, and a network
                # failure is a failed load like any other.
                path = self.repository.path(name, version)
                model = self.loader(path)
                bundle = build_loaded_model(
                    name,
                    version,
                    path,
                    model,
                    self.index_params,
                    self.history_size,
                    self.prior_refresh_s,
                    self.defer_prior,
                )
                if self.prepare is not None:
                    bundle = self.prepare(bundle)
            except (ModelNotFoundError, ModelLoadError):
                self._observe_load(name, version, start, ok=False)
                raise
            except Exception as exc:  # any failure of a version becomes one error type
                self._observe_load(name, version, start, ok=False)
                raise ModelLoadError(
                    f"could not load model {name!r} version {version!r} from {where}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self._observe_load(name, version, start, ok=True)
            self._loaded = {**self._loaded, key: bundle}
            return bundle

    def _observe_load(self, name: str, version: str, start: float, ok: bool) -> None:
        if self.on_load is not None:
            self.on_load(name, version, time.perf_counter() - start, ok)

    def switch(self, name: str, version: str) -> LoadedModel:
        """Serve ``name``/``version``, loading it first; the old one stays on failure."""
        with self._admin_lock:
            bundle = self.load(name, version)
            self._scheduled = None
            self._serving = bundle  # the atomic swap
            return bundle

    def replace(self, old: LoadedModel, new: LoadedModel) -> bool:
        """Put ``new`` (``old`` grown by new items) in its place: loaded, served, scheduled.

        One assignment each, so a request holds the old bundle or the new one. False,
        and nothing changed, when ``old`` is no longer the loaded bundle of its version.
        """
        with self._admin_lock:
            key = (old.name, old.version)
            if self._loaded.get(key) is not old or (new.name, new.version) != key:
                return False
            self._loaded = {**self._loaded, key: new}
            scheduled = self._scheduled
            if scheduled is not None and scheduled[1] is old:
                self._scheduled = (scheduled[0], new)
            if self._serving is old:
                self._serving = new
            return True

    def unload(self, name: str, version: str) -> None:
        """Drop a loaded version; the serving one cannot be unloaded."""
        with self._admin_lock:
            key = (name, version)
            if key not in self._loaded:
                raise ModelNotFoundError(f"model {name!r} version {version!r} is not loaded")
            scheduled = self._scheduled
            serving = self._due()
            if scheduled is not None and (scheduled[1].name, scheduled[1].version) == key:
                serving = scheduled[1]
            if serving is not None and (serving.name, serving.version) == key:
                raise ValueError(
                    f"model {name!r} version {version!r} is being served: switch to another "
                    "version before unloading it"
                )
            self._loaded = {k: b for k, b in self._loaded.items() if k != key}

    def resolve_policy(self, name: str | None, policy: str, pinned: str | None) -> tuple[str, str]:
        """The ``(name, version)`` the policy names now (``latest`` or ``pinned``)."""
        model_name = self.repository.default_name(name)
        if policy == "pinned":
            if not pinned:
                raise ValueError("version policy 'pinned' needs a version (got none)")
            return model_name, pinned
        if policy == "latest":
            return model_name, self.repository.latest(model_name)
        raise ValueError(f"version policy must be 'latest' or 'pinned' (got {policy!r})")

    def apply_policy(self, name: str | None, policy: str, pinned: str | None) -> LoadedModel:
        """Serve the version the policy names (``latest`` or ``pinned``)."""
        return self.switch(*self.resolve_policy(name, policy, pinned))
