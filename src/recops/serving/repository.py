"""The model repository and the atomically swapped "loaded model" the server reads.

Layout, like an inference server's, in a local folder or on object storage
(:mod:`recops.serving.storage`)::

    <root>/<name>/<version>/     a model artifact directory (TwoTower.save)
    <root>/<name>/<version>/items.parquet   optional catalog for category/age filters

A :class:`~recops.serving.loaded_model.LoadedModel` is immutable once built: the
model, its FAISS index and its item facts. :class:`ModelManager` serves exactly one
of them through a single reference; a switch builds the new bundle completely first
and then replaces the reference in one assignment, so a request holds either the old
bundle or the new one, never a mix. A version that fails to load raises and leaves the serving one
untouched.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from recops.serving.index import IndexParams
from recops.serving.loaded_model import LoadedModel, ModelLoadError, build_loaded_model
from recops.serving.model_api import ModelLoader, load_two_tower
from recops.serving.storage import ModelStorage

log = logging.getLogger("recops.serving")

#: Names and versions are path components: no separators, no dot-dot.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelNotFoundError(LookupError):
    """A model or version that the repository (or memory) does not have."""


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
