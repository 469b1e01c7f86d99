"""The two-tower artifact: a self-describing directory of safetensors and JSON files.

Layout (format version 2)::

    config.json              format, version, model config, training summary,
                             sizes, and the sha256 of every other file
    vocab.json               item ids, categories, user ids, text hashing params,
                             time-bucket params of the prior, and the item titles
                             (the lexical search index is rebuilt from them; an
                             artifact saved without them searches by its tower)
    weights.safetensors      the network's parameters
    item_vectors.safetensors ``item_vectors`` (n_items, dim), unit rows
    catalog.safetensors      item content as indices (categories, tokens, publish time)
    events.safetensors       training events as indices (user, item, timestamp): the
                             snapshot the time prior and known users' histories
                             are rebuilt from

Nothing is ever unpickled. Any file whose sha256 differs from ``config.json``, or
whose content disagrees with the config (shapes, vocabulary sizes), raises
:class:`ArtifactError` naming the file and what is wrong.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file as load_torch
from safetensors.torch import save_file as save_torch

from recops.models.text.tokenize import TOKENIZER
from recops.models.two_tower.config import TwoTowerConfig
from recops.models.two_tower.features import CatalogFeatures
from recops.models.two_tower.training import TrainingSummary

if TYPE_CHECKING:
    from recops.models.two_tower.model import TwoTower

FORMAT = "recops.two_tower"
#: 2 (issue 11): the user tower reads item content, ``has_id`` marks trained id rows,
#: and items added after training (``add_items``) are part of the catalog.
FORMAT_VERSION = 2
CONFIG = "config.json"
VOCAB = "vocab.json"
WEIGHTS = "weights.safetensors"
ITEM_VECTORS = "item_vectors.safetensors"
CATALOG = "catalog.safetensors"
EVENTS = "events.safetensors"
HASHED_FILES = (VOCAB, WEIGHTS, ITEM_VECTORS, CATALOG, EVENTS)


class ArtifactError(ValueError):
    """A model directory that is missing, corrupted or inconsistent with its config."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_artifact(model: TwoTower, path: Path) -> Path:
    """Write ``model`` to the directory ``path`` (created; existing files replaced)."""
    if not hasattr(model, "net_"):
        raise ValueError("cannot save an unfitted TwoTower: call fit() first")
    path.mkdir(parents=True, exist_ok=True)
    vocab = {
        "item_ids": [str(i) for i in model.item_ids_],
        "categories": list(model.categories_),
        "user_ids": [str(u) for u in model.user_ids_],
        "text": {
            "tokenizer": TOKENIZER,
            "hash": "crc32 % buckets + 1",
            "buckets": model.config.text_buckets,
        },
        "titles": [str(t) for t in model.titles_],
    }
    (path / VOCAB).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    state = {k: v.detach().contiguous() for k, v in model.net_.state_dict().items()}
    save_torch(state, str(path / WEIGHTS))
    save_numpy({"item_vectors": model.item_vectors()}, str(path / ITEM_VECTORS))
    catalog = model.catalog_
    save_numpy(
        {
            "categories": np.ascontiguousarray(catalog.categories),
            "tokens": np.ascontiguousarray(catalog.tokens),
            "publish_time": np.ascontiguousarray(catalog.publish_time),
        },
        str(path / CATALOG),
    )
    events = model.events_
    save_numpy(
        {"users": events.users, "items": events.items, "times": events.times}, str(path / EVENTS)
    )
    for written in (WEIGHTS, ITEM_VECTORS, CATALOG, EVENTS):
        # safetensors writes 0600: a server running as another user (the image's)
        # could not read the model. Model files are not secrets; the folder's
        # permissions decide who may read them.
        (path / written).chmod(0o644)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.config.model_dump(mode="json"),
        "training": dataclasses.asdict(model.summary_),
        "sizes": {
            "n_items": len(model.item_ids_),
            "n_categories": len(model.categories_),
            "n_users": len(model.user_ids_),
            "n_events": len(events.items),
            "n_id_rows": int(model.net_.has_id.shape[0]) - 1,
            "n_trained_items": int(model.net_.has_id.sum()),
            "dim": model.dim,
        },
        "score": {"score_scale": model.score_scale, "has_item_prior": model.config.time_prior},
        "sha256": {name: _sha256(path / name) for name in HASHED_FILES},
    }
    (path / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(value, dict):
        raise ArtifactError(f"{path}: expected a JSON object (got {type(value).__name__})")
    return value


def _verified_config(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise ArtifactError(f"{path}: not a model directory")
    config = _read_json(path / CONFIG)
    if config.get("format") == FORMAT and config.get("format_version") == 1:
        raise ArtifactError(
            f"{path / CONFIG}: saved in format version 1 by an older recops, whose user tower "
            f"did not read item content; this recops reads version {FORMAT_VERSION}: retrain"
        )
    if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path / CONFIG}: expected format {FORMAT!r} version {FORMAT_VERSION} "
            f"(got {config.get('format')!r} version {config.get('format_version')!r})"
        )
    hashes = config.get("sha256", {})
    for name in HASHED_FILES:
        file = path / name
        if not file.is_file():
            raise ArtifactError(f"{file}: missing from the model directory")
        actual = _sha256(file)
        if hashes.get(name) != actual:
            raise ArtifactError(
                f"{file}: sha256 mismatch (config.json records {hashes.get(name)!r}, "
                f"the file has {actual!r}); the file is corrupted or was modified"
            )
    return config


def _expect(condition: bool, file: Path, message: str) -> None:
    if not condition:
        raise ArtifactError(f"{file}: {message}")


def _read_tensors(file: Path, numpy: bool = True) -> dict[str, Any]:
    try:
        return load_numpy(str(file)) if numpy else load_torch(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{file}: not a readable safetensors file ({exc})") from exc


def load_artifact(cls: type[TwoTower], path: Path) -> TwoTower:
    """Read and verify a model directory written by :func:`save_artifact`."""
    from recops.models.two_tower.preparation import Events

    config = _verified_config(path)
    try:
        cfg = TwoTowerConfig(**config["model"])
    except (KeyError, TypeError, ValidationError) as exc:
        raise ArtifactError(f"{path / CONFIG}: invalid model config ({exc})") from exc
    sizes = config.get("sizes", {})
    vocab = _read_json(path / VOCAB)
    item_ids = np.array(vocab.get("item_ids", []), dtype=object)
    categories = list(vocab.get("categories", []))
    user_ids = np.array(vocab.get("user_ids", []), dtype=object)
    for key, n in (
        ("n_items", len(item_ids)),
        ("n_categories", len(categories)),
        ("n_users", len(user_ids)),
    ):
        _expect(
            sizes.get(key) == n,
            path / VOCAB,
            f"{key} is {n} but config.json says {sizes.get(key)!r}",
        )
    _expect(
        vocab.get("text", {}).get("buckets") == cfg.text_buckets,
        path / VOCAB,
        f"text buckets {vocab.get('text', {}).get('buckets')!r} differ from the config's "
        f"{cfg.text_buckets}",
    )
    tokenizer = vocab.get("text", {}).get("tokenizer")
    _expect(
        tokenizer == TOKENIZER,
        path / VOCAB,
        f"titles were tokenized as {tokenizer!r}, this recops reads them as {TOKENIZER!r}: "
        "retrain the model (its search and content vectors would not match)",
    )
    titles = vocab.get("titles")
    if titles is not None:
        _expect(
            isinstance(titles, list)
            and len(titles) == len(item_ids)
            and all(isinstance(t, str) for t in titles),
            path / VOCAB,
            f"expected {len(item_ids)} titles (strings), one per item",
        )
        titles = np.array(titles, dtype=object)
    vectors = _read_tensors(path / ITEM_VECTORS).get("item_vectors")
    if vectors is None or vectors.shape != (len(item_ids), cfg.dim):
        raise ArtifactError(
            f"{path / ITEM_VECTORS}: expected item_vectors of shape {(len(item_ids), cfg.dim)} "
            f"(got {None if vectors is None else vectors.shape})"
        )
    cat = _read_tensors(path / CATALOG)
    _expect(
        {"categories", "tokens", "publish_time"} <= set(cat),
        path / CATALOG,
        f"expected tensors categories, tokens, publish_time (got {sorted(cat)})",
    )
    catalog = CatalogFeatures(cat["categories"], cat["tokens"], cat["publish_time"])
    _expect(
        all(len(v) == len(item_ids) for v in cat.values()),
        path / CATALOG,
        f"expected {len(item_ids)} rows per tensor",
    )
    _expect(
        int(catalog.categories.max(initial=0)) <= len(categories),
        path / CATALOG,
        "category indices exceed the vocabulary",
    )
    ev = _read_tensors(path / EVENTS)
    _expect(
        {"users", "items", "times"} <= set(ev),
        path / EVENTS,
        f"expected tensors users, items, times (got {sorted(ev)})",
    )
    events = Events(ev["users"], ev["items"], ev["times"])
    _expect(
        int(events.items.max(initial=0)) <= len(item_ids)
        and int(events.users.max(initial=0)) <= len(user_ids),
        path / EVENTS,
        "event indices exceed the item or user vocabulary",
    )
    state = _read_tensors(path / WEIGHTS, numpy=False)
    try:
        training = dict(config.get("training", {}))
        training["tower_weights"] = tuple(training.get("tower_weights", (1.0, 1.0)))
        summary = TrainingSummary(**training)
    except TypeError as exc:
        raise ArtifactError(f"{path / CONFIG}: invalid training summary ({exc})") from exc
    model = cls(config=cfg)
    try:
        model._restore(
            state,
            item_ids,
            categories,
            user_ids,
            catalog,
            events,
            summary,
            vectors,
            titles,
        )
    except (RuntimeError, KeyError) as exc:  # load_state_dict: missing keys or shapes
        raise ArtifactError(f"{path / WEIGHTS}: does not match the config ({exc})") from exc
    return model
