"""The content-addressed artifact store: a local folder, or any fsspec URL.

Layout::

    <root>/<digest>/                 the files the codec wrote
    <root>/<digest>/_artifact.json   the manifest, written last (its presence = complete)

``digest = sha256("recops-artifact/1\\n" + codec + "\\n" + Σ relpath "\\0" sha256(bytes) "\\n")``
over the files in sorted order, where ``bytes`` are what the codec counts as content
(:meth:`~recops.pipelines.codecs.Codec.canonical`). An artifact that exists is never
written again, so two runs that produce the same content share its files.

A local folder is written through a hidden temporary folder renamed into place (atomic);
other file systems (``memory://`` in tests, ``s3://``, ``gs://``) file by file, the
manifest last. Reads from a remote store download into a local cache folder first,
because models load from a directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import fsspec

from recops.pipelines.artifacts import ArtifactRecord
from recops.pipelines.codecs import codec_for, dumps, type_name, unwrap_optional

MANIFEST = "_artifact.json"
_DIGEST_HEADER = b"recops-artifact/1\n"


class ArtifactNotFoundError(LookupError):
    """A digest the store does not hold (or holds incompletely)."""


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def content_digest(folder: Path, tp: Any) -> tuple[str, dict[str, str], int]:
    """The digest of the artifact files in ``folder``, per-file sha256 and total bytes."""
    codec = codec_for(tp)
    outer = hashlib.sha256(_DIGEST_HEADER + codec.name.encode() + b"\n")
    hashes: dict[str, str] = {}
    size = 0
    for rel in _files(folder):
        data = (folder / rel).read_bytes()
        size += len(data)
        hashes[rel] = hashlib.sha256(data).hexdigest()
        counted = hashlib.sha256(codec.canonical(tp, rel, data)).hexdigest()
        outer.update(f"{rel}\0{counted}\n".encode())
    return outer.hexdigest(), hashes, size


def write_artifact(value: Any, tp: Any, folder: Path, uri: str) -> ArtifactRecord:
    """Write ``value`` with its codec into the empty ``folder`` plus its manifest."""
    inner, _ = unwrap_optional(tp)
    codec = codec_for(inner)
    folder.mkdir(parents=True, exist_ok=True)
    summary = codec.write(value, inner, folder)
    digest, hashes, size = content_digest(folder, inner)
    record = ArtifactRecord(
        digest=digest,
        kind=codec.kind(inner),
        codec=codec.name,
        type=type_name(type(value)),
        uri=uri.replace("{digest}", digest),
        size=size,
        summary=summary,
    )
    manifest = {**record.to_dict(), "files": hashes}
    (folder / MANIFEST).write_bytes(dumps(manifest))
    return record


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an artifact folder; ArtifactNotFoundError when incomplete."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtifactNotFoundError(f"{folder} is not a complete artifact (no {MANIFEST})")
    manifest: dict[str, Any] = json.loads(path.read_bytes())
    return manifest


def read_artifact(folder: Path, tp: Any) -> Any:
    """Read an artifact folder as ``tp``; TypeError when its codec does not store ``tp``."""
    inner, _ = unwrap_optional(tp)
    codec = codec_for(inner)
    manifest = read_manifest(folder)
    if manifest["codec"] != codec.name:
        raise TypeError(
            f"artifact {manifest['digest'][:12]} is a {manifest['type']} "
            f"(codec {manifest['codec']}), not a {type_name(inner)} (codec {codec.name})"
        )
    return codec.read(inner, folder)


class ArtifactStore:
    """Artifacts by digest, in a folder or behind an fsspec URL.

    Parameters
    ----------
    url:
        A folder path, ``file://...``, ``memory://...``, ``s3://bucket/prefix``,
        ``gs://...`` (any fsspec protocol whose package is installed).
    cache_dir:
        Where a remote store's artifacts are downloaded before reading; default a
        temporary folder removed by :meth:`close`.
    """

    def __init__(self, url: str | Path, cache_dir: str | Path | None = None) -> None:
        text = str(url)
        fs, root = fsspec.core.url_to_fs(text)
        self.fs = fs
        self.local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        self.root = root.rstrip("/")
        self.url = os.path.abspath(text) if self.local and "://" not in text else text.rstrip("/")
        self._own_cache = cache_dir is None and not self.local
        self._cache = (
            Path(cache_dir)
            if cache_dir is not None
            else Path(tempfile.mkdtemp(prefix="recops-artifacts-"))
            if not self.local
            else None
        )

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    def _remote(self, digest: str, rel: str = "") -> str:
        return f"{self.root}/{digest}" + (f"/{rel}" if rel else "")

    def exists(self, digest: str) -> bool:
        """Whether the store holds the complete artifact ``digest``."""
        return bool(self.fs.exists(self._remote(digest, MANIFEST)))

    def put(self, value: Any, tp: Any) -> ArtifactRecord:
        """Store ``value`` (annotated ``tp``) and return its record (existing ones kept)."""
        with tempfile.TemporaryDirectory(prefix="recops-artifact-") as tmp:
            staged = Path(tmp) / "content"
            record = write_artifact(value, tp, staged, f"{self.url}/{{digest}}")
            if self.exists(record.digest):
                return self.record(record.digest)
            if self.local:
                self._publish_local(staged, record.digest)
            else:
                files = _files(staged)
                files.remove(MANIFEST)
                for rel in [*files, MANIFEST]:  # the manifest last: it marks completeness
                    self.fs.put_file(str(staged / rel), self._remote(record.digest, rel))
        return record

    def _publish_local(self, staged: Path, digest: str) -> None:
        root = Path(self.root)
        root.mkdir(parents=True, exist_ok=True)
        hidden = root / f".tmp-{uuid.uuid4().hex}"
        shutil.copytree(staged, hidden)
        try:
            hidden.rename(root / digest)
        except OSError:
            # Another writer published the same content first; theirs is identical.
            shutil.rmtree(hidden, ignore_errors=True)

    def record(self, digest: str) -> ArtifactRecord:
        """The record of a stored artifact; ArtifactNotFoundError when absent."""
        try:
            data = self.fs.cat_file(self._remote(digest, MANIFEST))
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"artifact {digest} is not in {self.url}") from None
        return ArtifactRecord.from_dict(json.loads(data))

    def folder(self, digest: str) -> Path:
        """A local folder holding the artifact's files (downloaded for a remote store)."""
        if self.local:
            folder = Path(self.root) / digest
            read_manifest(folder)
            return folder
        assert self._cache is not None
        folder = self._cache / digest
        if not (folder / MANIFEST).is_file():
            if not self.exists(digest):
                raise ArtifactNotFoundError(f"artifact {digest} is not in {self.url}")
            manifest = json.loads(self.fs.cat_file(self._remote(digest, MANIFEST)))
            for rel in manifest["files"]:
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(self._remote(digest, rel), str(folder / rel))
            (folder / MANIFEST).write_bytes(dumps(manifest))
        return folder

    def get(self, digest: str, tp: Any) -> Any:
        """The stored artifact ``digest`` read as ``tp``."""
        return read_artifact(self.folder(digest), tp)

    def close(self) -> None:
        """Remove the download cache this store created."""
        if self._own_cache and self._cache is not None:
            shutil.rmtree(self._cache, ignore_errors=True)
