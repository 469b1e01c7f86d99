"""Where a model repository's folders are: a local folder, or object storage through fsspec.

A model repository is ``<root>/<name>/<version>/`` (see :mod:`recops.serving.repository`);
its root is a folder path or an fsspec URL: ``s3://bucket/models``, ``gs://bucket/models``
(with the protocol's package installed: ``s3fs``, ``gcsfs``), ``memory://models`` in tests.

**A local folder** is read in place. A new version is written under a hidden name
and renamed into place, so a reader never sees half of it, and two writers racing
for one version number cannot both win.

**Object storage** has no atomic rename of a folder, so completeness is marked by a
file instead: a version is *complete* once its ``config.json`` exists, the
artifact's manifest, which records the sha256 of every other file
(:mod:`recops.models.two_tower.artifact`). recops uploads it last and lists only
complete versions; a folder still being copied by another tool is not listed until
its ``config.json`` lands, and a corrupted copy fails the load's hash check (a
``ModelLoadError``; the version being served is untouched). Loading downloads the
version into a local cache (``cache_dir``, which the workers of one server share)
under a hidden name renamed into place, keyed by the sha256 of its ``config.json``:
an unchanged version is downloaded once, a version replaced in place again.

Publishing to object storage assumes one writer per model name at a time (the
training pipeline, or the continuous-training controller, which holds its lock):
there is no atomic "create if absent" across fsspec's stores, so two writers there
could pick the same version number.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import fsspec

#: The file that marks a version complete on object storage (written last).
COMPLETE_FILE = "config.json"


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def default_cache_dir(url: str) -> Path:
    """``<tmp>/recops-models/<sha256(url)[:16]>``: one cache per repository, shared by workers."""
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "recops-models" / key


class ModelStorage:
    """The folders of a model repository, local or behind an fsspec URL.

    Parameters
    ----------
    root:
        A folder path, ``file://...``, or any fsspec URL (``s3://``, ``gs://``,
        ``memory://``).
    cache_dir:
        Where versions on object storage are downloaded before loading; default
        :func:`default_cache_dir`. Unused for a local folder.
    """

    def __init__(self, root: str | Path, cache_dir: str | Path | None = None) -> None:
        text = str(root)
        fs, path = fsspec.core.url_to_fs(text)
        self.fs = fs
        self.local = _is_local(fs)
        self.url = os.path.abspath(text) if self.local and "://" not in text else text.rstrip("/")
        self._root = path.rstrip("/") or path
        self.cache_dir = (
            None if self.local else Path(cache_dir or default_cache_dir(self.url)).resolve()
        )

    def __repr__(self) -> str:
        return f"ModelStorage({self.url!r})"

    def __str__(self) -> str:
        return self.url

    def _remote(self, *parts: str) -> str:
        return "/".join((self._root, *parts))

    def available(self) -> bool:
        """Whether the root exists (a folder, or a prefix that holds anything)."""
        if self.local:
            return Path(self._root).is_dir()
        self.fs.invalidate_cache(self._root)
        try:
            return bool(self.fs.exists(self._root))
        except (OSError, ValueError):
            return False

    def listing(self) -> dict[str, list[str]]:
        """Model name → its version folder names (unsorted, unvalidated), complete only."""
        if self.local:
            root = Path(self._root)
            if not root.is_dir():
                return {}
            return {
                model.name: [v.name for v in model.iterdir() if v.is_dir()]
                for model in root.iterdir()
                if model.is_dir()
            }
        self.fs.invalidate_cache(self._root)
        out: dict[str, list[str]] = {}
        # One listing call, not one per version: the follower polls this.
        for marker in self.fs.glob(self._remote("*", "*", COMPLETE_FILE)):
            name, version = marker.rstrip("/").split("/")[-3:-1]
            out.setdefault(name, []).append(version)
        return out

    def exists(self, name: str, version: str) -> bool:
        """Whether ``name``/``version`` is there (complete, on object storage)."""
        if self.local:
            return Path(self._root, name, version).is_dir()
        return bool(self.fs.exists(self._remote(name, version, COMPLETE_FILE)))

    def read_bytes(self, name: str, version: str, file: str) -> bytes | None:
        """One small file of a version, ``None`` when absent (no download of the rest)."""
        try:
            if self.local:
                return Path(self._root, name, version, file).read_bytes()
            return bytes(self.fs.cat_file(self._remote(name, version, file)))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def local_path(self, name: str, version: str) -> Path:
        """A local folder holding ``name``/``version``: itself, or a cached download.

        FileNotFoundError when the version is absent (incomplete, on object storage).
        """
        if self.local:
            path = Path(self._root, name, version)
            if not path.is_dir():
                raise FileNotFoundError(str(path))
            return path
        assert self.cache_dir is not None
        manifest = self.read_bytes(name, version, COMPLETE_FILE)
        if manifest is None:
            raise FileNotFoundError(self._remote(name, version, COMPLETE_FILE))
        target = self.cache_dir / name / f"{version}-{hashlib.sha256(manifest).hexdigest()[:16]}"
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        hidden = target.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            self.fs.get(self._remote(name, version) + "/", str(hidden), recursive=True)
            # The manifest read above, not whatever is there now: the files' hashes
            # are checked against it when the version loads.
            (hidden / COMPLETE_FILE).write_bytes(manifest)
            # Another worker's download may have landed first: the same bytes.
            with contextlib.suppress(OSError):
                hidden.rename(target)
        finally:
            shutil.rmtree(hidden, ignore_errors=True)
        return target

    def add(self, name: str, staged: Path, version: str) -> bool:
        """Put the folder ``staged`` as ``name``/``version``; False if that version is taken."""
        if self.local:
            folder = Path(self._root, name)
            folder.mkdir(parents=True, exist_ok=True)
            if (folder / version).exists():
                return False
            hidden = folder / f".tmp-{uuid.uuid4().hex}"
            shutil.copytree(staged, hidden)
            try:
                hidden.rename(folder / version)
            except OSError:  # another writer took that version first
                shutil.rmtree(hidden, ignore_errors=True)
                return False
            return True
        if self.fs.exists(self._remote(name, version)):
            return False
        files = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
        if COMPLETE_FILE not in files:
            raise ValueError(f"{staged} has no {COMPLETE_FILE}: not a model artifact folder")
        files.remove(COMPLETE_FILE)
        for rel in [*files, COMPLETE_FILE]:  # the manifest last: it marks completeness
            self.fs.put_file(str(staged / rel), self._remote(name, version, rel))
        return True
