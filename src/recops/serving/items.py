"""New items for the served versions without retraining, swapped in atomically.

Item vectors and the ANN index are built in batch, at training; an article published
since is embedded from its content (categories and title words) by the trained item
tower (``TwoTower.with_items``) and joins the served version in two steps:

1. :func:`grow` builds the grown bundle beside the one requests use: the grown model
   (the original is unchanged, the new rows appended), a copy of the FAISS index with
   the new rows' vectors added (:meth:`~recops.serving.index.VectorIndex.appended`:
   IVF files them under its trained centroids, HNSW links them in), the catalog's
   category masks and publish times extended, the item names extended, the release
   times sorted again, and a fresh prior cache (the prior has new rows);
2. :meth:`~recops.serving.repository.ModelManager.replace` puts it in the place of
   the old one, served or not, in one assignment: a request holds the old bundle or
   the new one, never a mix, and none fails meanwhile.

Each batch copies the version's per-item tables once (the id maps, the item matrix,
the index, the catalog masks: O(n_items)) on top of encoding the new items, so
updates come in batches. Adding 1,000 items to a 100k-item IVF version (dim 64) took
0.34-0.48 s on one core, 0.3 s of it in the model's test of which ids it knows (a
pandas ``isin`` against its id map); the rest (encoding, FAISS clone and add, the
copies, the present window's prior) took 60-90 ms.

Two ways in:

* ``POST /v1/admin/items`` (:mod:`recops.serving.routes.items`): :meth:`ItemUpdates.add`.
* A catalog file (``catalog_updates_path``): JSON Lines of
  :class:`~recops.serving.schemas.ItemIn`, appended to by the admin route or by any
  other writer (whole lines, one write each). Each worker follows it by byte offset,
  per loaded version (:meth:`ItemUpdates.poll`), so every worker of ``recops serve
  --workers N`` grows the same way without talking to the others; a version loaded
  later, and every version of a restarted worker, applies the whole file before it
  is served (:meth:`ItemUpdates.prepare`, the manager's load hook). Only complete
  lines are read; a line that is not an item is logged and skipped; a file that
  shrank is read again from its start (ids a version knows are skipped).

Clicks on the new items count as history at once: the online state keeps the events
on items a loaded version knows (:meth:`~recops.serving.repository.ModelManager.known_item`),
and the grown bundle knows them from the swap on. Events on an item that came before
the item are in the event log only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from recops.data.schema import CATEGORIES, ITEM_ID, PUBLISH_TIME, TITLE
from recops.serving.catalog import UNKNOWN_TIME, ItemCatalog
from recops.serving.experiments import ExperimentRuntime
from recops.serving.loaded_model import LoadedModel
from recops.serving.prior_cache import PriorCache
from recops.serving.releases import Releases
from recops.serving.repository import ModelManager, NotReadyError
from recops.serving.schemas import ItemIn, VersionItems
from recops.serving.settings import ServerSettings

log = logging.getLogger("recops.serving")

#: How often a worker looks for new lines in the catalog file.
POLL_S = 0.5
#: Most lines applied in one growth: bounds the time and memory of one step of a
#: catch-up (a restarted worker reading a long file grows once per this many).
BATCH_LINES = 50_000
#: Most bytes read from the catalog file at once (an item line is at most ~30 KB).
READ_BYTES = 16 * 1024 * 1024
#: The catalog file of a server with several workers that sets none, in its run folder.
RUN_DIR_FILE = "items.jsonl"


class CannotAddItemsError(RuntimeError):
    """A loaded version's model cannot embed new items (it has no ``with_items``)."""


def catalog_path(settings: ServerSettings) -> Path | None:
    """The catalog file the server follows: the setting, else one in the run folder."""
    if settings.catalog_updates_path is not None:
        return settings.catalog_updates_path
    return None if settings.run_dir is None else settings.run_dir / RUN_DIR_FILE


def items_frame(items: Sequence[ItemIn]) -> pd.DataFrame:
    """The items as a catalog table (``item_id``, ``title``, ``categories``, ``publish_time``)."""
    return pd.DataFrame(
        {
            ITEM_ID: [i.item_id for i in items],
            TITLE: [i.title for i in items],
            CATEGORIES: [list(i.categories) for i in items],
            PUBLISH_TIME: pd.array([i.publish_time for i in items], dtype="Int64"),
        }
    )


def grow(bundle: LoadedModel, items: Sequence[ItemIn]) -> tuple[LoadedModel, np.ndarray]:
    """``bundle`` with ``items`` appended, and their rows; ``bundle`` itself if none is new.

    ``bundle`` is not changed: requests keep using it until the grown one is swapped in.
    """
    with_items = getattr(bundle.model, "with_items", None)
    if with_items is None:
        raise CannotAddItemsError(
            f"{bundle.name}/{bundle.version}: a {type(bundle.model).__name__} cannot add "
            "items (it has no with_items)"
        )
    model, rows = with_items(items_frame(items))
    rows = np.asarray(rows, dtype=np.int64)
    n = bundle.index.n_items
    if len(rows) == 0:
        return bundle, rows
    if not np.array_equal(rows, np.arange(n, n + len(rows))):
        raise RuntimeError(
            f"{type(model).__name__}.with_items must append the new rows after the "
            f"{n} known ones (got rows {rows[:5].tolist()}...)"
        )
    index = bundle.index.appended(model.item_vectors())
    names = [str(i) for i in model.item_ids_[n:]]
    # A fresh cache: the cached priors have one entry per old row.
    old = bundle._prior
    prior = PriorCache(old.refresh_s, old.top_n, defer=old.defer)
    if old.defer:  # requests never compute it: the present window is computed here
        prior.compute(model, index.vectors, int(time.time()))
    grown = dataclasses.replace(
        bundle,
        model=model,
        index=index,
        catalog=extended_catalog(bundle.catalog, names, items),
        item_names=bundle.item_names + names,
        releases=Releases.of_model(model, index.n_items),
        _prior=prior,
    )
    return grown, rows


def extended_catalog(
    catalog: ItemCatalog, names: list[str], items: Sequence[ItemIn]
) -> ItemCatalog:
    """``catalog`` with rows for ``names`` (new items, in row order), facts from ``items``.

    An item's categories the catalog has no mask for are left out, as the model
    leaves out those it does not know; the catalog itself is not changed.
    """
    facts = {i.item_id: i for i in items}  # the last of repeated ids, as with_items keeps
    n, m = catalog.n_items, len(names)
    masks = {
        c: np.concatenate([mask, np.zeros(m, dtype=np.bool_)])
        for c, mask in catalog.category_masks.items()
    }
    published = np.full(m, UNKNOWN_TIME, dtype=np.int64)
    for j, name in enumerate(names):
        item = facts[name]
        for category in item.categories:
            if category in masks:
                masks[category][n + j] = True
        if item.publish_time is not None:
            published[j] = item.publish_time
    return ItemCatalog(masks, np.concatenate([catalog.publish_time, published]))


class ItemUpdates:
    """Grows the versions a :class:`ModelManager` has loaded, from requests and a catalog file.

    Parameters
    ----------
    manager:
        Whose loaded versions grow.
    path:
        The catalog file (JSON Lines of :class:`ItemIn`), created if absent; ``None``:
        items come from :meth:`add` only and reach the versions loaded at the time.
    """

    def __init__(self, manager: ModelManager, path: Path | None = None) -> None:
        self.manager = manager
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
        # One growth at a time in this process (the route and the file's poll). Never
        # taken by `prepare`, which runs under the manager's lock: `replace` takes that
        # lock while this one is held.
        self._lock = threading.Lock()
        # Per version: the bundle that read the file and the byte offset it read up to
        # (a weak reference: an unloaded version is freed).
        self._read: dict[tuple[str, str], tuple[weakref.ref[LoadedModel], int]] = {}
        #: Lines of the catalog file that were not items, since start.
        self.skipped = 0

    # -- the catalog file -------------------------------------------------------------

    def _offset(self, bundle: LoadedModel) -> int:
        entry = self._read.get((bundle.name, bundle.version))
        return entry[1] if entry is not None and entry[0]() is bundle else 0

    def _mark(self, bundle: LoadedModel, offset: int) -> None:
        self._read[(bundle.name, bundle.version)] = (weakref.ref(bundle), offset)

    def _size(self) -> int:
        assert self.path is not None
        return self.path.stat().st_size

    def behind(self) -> bool:
        """Whether a loaded version has not read the catalog file to its end (one stat)."""
        if self.path is None:
            return False
        size = self._size()
        return any(self._offset(b) != size for b in self.manager.loaded())

    def _lines(self, offset: int, until: int | None = None) -> tuple[list[ItemIn], int]:
        """The items of the whole lines from byte ``offset`` (to ``until``), and their end."""
        assert self.path is not None
        budget = READ_BYTES if until is None else min(READ_BYTES, until - offset)
        with open(self.path, "rb") as f:
            f.seek(offset)
            data = f.read(budget)
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < READ_BYTES:
                return [], offset  # nothing new, or a line still being written
            log.error(
                "%s: no line end in the %d bytes from byte %d; skipped",
                self.path,
                len(data),
                offset,
            )
            self.skipped += 1
            return [], offset + len(data)
        items: list[ItemIn] = []
        position = offset
        for line in data[:cut].splitlines(keepends=True):
            if len(items) == BATCH_LINES:
                break
            if line.strip():
                try:
                    items.append(ItemIn.model_validate_json(line))
                except ValidationError as exc:
                    self.skipped += 1
                    reason = "; ".join(
                        f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}"
                        for e in exc.errors()[:3]
                    )
                    log.warning(
                        "%s: the line at byte %d is not an item (%s); skipped",
                        self.path,
                        position,
                        reason,
                    )
            position += len(line)
        return items, position

    def _catch_up(
        self, bundle: LoadedModel, offset: int, until: int | None = None
    ) -> tuple[LoadedModel, int]:
        """``bundle`` grown by the file's lines from ``offset`` (to ``until``), and their end.

        A batch the version cannot apply is logged and passed by: reading it again
        every round would fail again.
        """
        while True:
            items, end = self._lines(offset, until)
            if end == offset:
                return bundle, offset
            try:
                if items:
                    bundle, _ = grow(bundle, items)
            except Exception:
                log.exception(
                    "%s: bytes %d-%d not applied to %s/%s", self.path, offset, end,
                    bundle.name, bundle.version,
                )  # fmt: skip
            offset = end

    def _append(self, items: Sequence[ItemIn]) -> tuple[int, int]:
        """Write ``items`` as lines at the end of the file, durably; their byte range."""
        assert self.path is not None
        data = b"".join(i.model_dump_json(exclude_defaults=True).encode() + b"\n" for i in items)
        with open(self.path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # writers of other workers wait
            try:
                start = f.seek(0, os.SEEK_END)
                if start:
                    f.seek(start - 1)
                    if f.read(1) != b"\n":  # another writer's unfinished line stays its own
                        data = b"\n" + data
                        start += 1
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                end = f.tell()
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return start, end

    def prepare(self, bundle: LoadedModel) -> LoadedModel:
        """``bundle`` with every item of the catalog file: the manager's hook, as it loads."""
        if self.path is None or not hasattr(bundle.model, "with_items"):
            return bundle
        grown, end = self._catch_up(bundle, 0)
        self._mark(grown, end)
        return grown

    def poll(self) -> int:
        """Apply the catalog file's new lines to every loaded version; how many grew."""
        if self.path is None:
            return 0
        grown_versions = 0
        with self._lock:
            size = self._size()
            for bundle in self.manager.loaded():
                key = (bundle.name, bundle.version)
                offset = self._offset(bundle)
                if offset == size:
                    continue
                if offset > size:
                    log.warning("%s shrank: %s/%s reads it again from the start", self.path, *key)
                    offset = 0
                if not hasattr(bundle.model, "with_items"):
                    log.error("%s/%s cannot add items: the catalog file passes it by", *key)
                    self._mark(bundle, size)
                    continue
                grown, end = self._catch_up(bundle, offset)
                if grown is bundle or self.manager.replace(bundle, grown):
                    self._mark(grown, end)  # else it was unloaded meanwhile
                    grown_versions += grown is not bundle
        return grown_versions

    # -- the admin route --------------------------------------------------------------

    def add(self, items: Sequence[ItemIn]) -> tuple[list[VersionItems], bool]:
        """Add ``items`` to every loaded version (and to the catalog file, when there is one).

        Returns
        -------
        (versions, appended):
            Per loaded version, how many of the items it added and how many it knew;
            whether the items were written to the catalog file.

        Raises
        ------
        CannotAddItemsError
            A loaded version's model cannot add items (nothing is changed).
        NotReadyError
            No version is loaded and no catalog file would keep the items for one.
        """
        ids = list(dict.fromkeys(i.item_id for i in items))
        with self._lock:
            bundles = self.manager.loaded()
            if not bundles and self.path is None:
                raise NotReadyError(
                    "no model is loaded yet, and no catalog file (catalog_updates_path) "
                    "keeps the items for the version that will be"
                )
            unable = [
                f"{b.name}/{b.version}" for b in bundles if not hasattr(b.model, "with_items")
            ]
            if unable:
                raise CannotAddItemsError(f"{', '.join(unable)} cannot add items (no with_items)")
            span = None if self.path is None else self._append(items)
            out = []
            for bundle in bundles:
                offset = self._offset(bundle)
                grown = bundle
                if span is not None and offset < span[0]:
                    grown, offset = self._catch_up(grown, offset, span[0])  # others' lines first
                grown, rows = grow(grown, items)
                if grown is not bundle and not self.manager.replace(bundle, grown):
                    continue  # unloaded meanwhile
                if span is not None:
                    self._mark(grown, max(offset, span[1]))
                out.append(
                    VersionItems(
                        name=bundle.name,
                        version=bundle.version,
                        added=len(rows),
                        known=len(ids) - len(rows),
                        n_items=grown.index.n_items,
                    )
                )
        return out, span is not None


async def follow_experiments(runtime: ExperimentRuntime) -> None:
    """Let the experiments' arms serve their grown versions now, not at their next refresh."""
    if runtime.due():
        await run_in_threadpool(runtime.refresh)


async def follow_forever(updates: ItemUpdates, runtime: ExperimentRuntime) -> None:
    """Apply the catalog file's new lines every :data:`POLL_S` (in a thread)."""
    while True:
        try:
            grown = await run_in_threadpool(updates.poll) if updates.behind() else 0
            if grown:
                await follow_experiments(runtime)
        except Exception:  # keep following: one failed round must not stop it
            log.exception("following the catalog file %s failed", updates.path)
        await asyncio.sleep(POLL_S)
