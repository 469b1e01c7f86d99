"""Download the public datasets at run time, verified, into a local data folder.

The licenses of MovieLens and MIND forbid shipping them, so recops fetches the
publishers' archives on request. Every archive is checked against a pinned digest
before it is unpacked; a mismatch is refused and the file deleted. An archive whose
digest recops cannot pin (the publisher does not state one, or the file changes over
time) is only downloaded when the caller gives the expected SHA-256 or explicitly
allows an unpinned download.

Where data lives: the ``data_dir`` argument, else ``$RECOPS_DATA_DIR``, else
``~/.cache/recops/data``; each dataset is a folder named after it in there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import IO

from recops.data.errors import DatasetNotFoundError
from recops.progress_bar import transient_bar

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "RECOPS_DATA_DIR"
_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A downloaded file does not have the digest it must have."""


@dataclass(frozen=True)
class Archive:
    """Where a public dataset comes from and how to check and unpack it.

    Parameters
    ----------
    name:
        The dataset name, also the folder it is unpacked into.
    url:
        The publisher's download URL.
    filename:
        The archive's file name.
    sha256, md5:
        Pinned digests (hex); ``None`` when not pinned. MD5 is kept only where the
        publisher states nothing stronger (GroupLens publishes ``.md5`` files).
    member_prefix:
        The folder inside the archive whose contents become the dataset folder
        (``""`` for the whole archive).
    marker:
        A file, relative to the dataset folder, whose presence means "unpacked".
    terms:
        The license in one line, shown before downloading.
    """

    name: str
    url: str
    filename: str
    sha256: str | None
    md5: str | None
    member_prefix: str
    marker: str
    terms: str

    @property
    def pinned(self) -> bool:
        """Whether recops knows a digest to verify the archive against."""
        return self.sha256 is not None or self.md5 is not None


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
_GROUPLENS_TERMS = (
    "GroupLens terms: research use, cite Harper & Konstan (2015), no redistribution, "
    "no commercial use without permission"
)

ARCHIVES: Mapping[str, Archive] = MappingProxyType(
    {
        "ml-100k": Archive(
            name="ml-100k",
            url=f"{_GROUPLENS}/ml-100k.zip",
            filename="ml-100k.zip",
            sha256=None,
            # The digest GroupLens publishes beside the archive (ml-100k.zip.md5).
            md5="0e33842e24a9c977be4e0107933c0723",
            member_prefix="ml-100k/",
            marker="u.data",
            terms=_GROUPLENS_TERMS,
        ),
        "ml-latest-small": Archive(
            name="ml-latest-small",
            url=f"{_GROUPLENS}/ml-latest-small.zip",
            filename="ml-latest-small.zip",
            # GroupLens regenerates "latest" datasets, so no digest can stay pinned.
            sha256=None,
            md5=None,
            member_prefix="ml-latest-small/",
            marker="ratings.csv",
            terms=_GROUPLENS_TERMS,
        ),
        "mind-small": Archive(
            name="mind-small",
            url="https://mind201910small.blob.core.windows.net/release/MINDsmall_train.zip",
            filename="MINDsmall_train.zip",
            # Microsoft publishes no digest for the MIND archives.
            sha256=None,
            md5=None,
            member_prefix="",
            marker="behaviors.tsv",
            terms="Microsoft Research License Terms: non-commercial research use",
        ),
        "obd": Archive(
            name="obd",
            # The 10,000-row-per-log sample ships inside the obp source distribution.
            url="https://files.pythonhosted.org/packages/source/o/obp/obp-0.5.7.tar.gz",
            filename="obp-0.5.7.tar.gz",
            sha256="3060d67fedfcfadf1e7a6f2608987f74412b5eb74d2c567edeb147595c68f2a0",
            md5=None,
            member_prefix="obp-0.5.7/obp/dataset/obd/",
            marker="random/all/all.csv",
            terms="CC BY 4.0: cite Saito et al., Open Bandit Dataset and Pipeline (NeurIPS 2021)",
        ),
    }
)


def archive_for(name: str) -> Archive:
    """The archive of a dataset, or a ``ValueError`` listing the known names."""
    if name not in ARCHIVES:
        raise ValueError(f"unknown dataset {name!r} (expected one of {', '.join(ARCHIVES)})")
    return ARCHIVES[name]


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data folder: ``data_dir``, else ``$RECOPS_DATA_DIR``, else ``~/.cache/recops/data``.

    Parameters
    ----------
    data_dir:
        An explicit folder, which wins over everything else.

    Returns
    -------
    pathlib.Path
        The folder (not created here).
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path.home() / ".cache" / "recops" / "data"


def dataset_dir(name: str, data_dir: str | Path | None = None, download: bool = False) -> Path:
    """The folder of a dataset, downloading it first when asked.

    Parameters
    ----------
    name:
        A name in :data:`ARCHIVES`.
    data_dir:
        See :func:`resolve_data_dir`.
    download:
        Fetch the dataset when it is not there.

    Returns
    -------
    pathlib.Path
        The unpacked dataset folder.

    Raises
    ------
    DatasetNotFoundError
        When it is not there and ``download`` is false.
    """
    archive = archive_for(name)
    folder = resolve_data_dir(data_dir) / archive.name
    if (folder / archive.marker).is_file():
        return folder
    if download:
        return fetch(name, data_dir)
    raise DatasetNotFoundError(
        f"dataset {name!r} not found in {folder.parent} (looked for {folder / archive.marker}). "
        f"Download it with `recops data fetch {name}` (or download=True / --download), or set "
        f"{DATA_DIR_ENV} to a folder that has {archive.name}/ in it."
    )


Opener = Callable[[str], IO[bytes]]


def _open_url(url: str) -> IO[bytes]:
    if not url.startswith(("https://", "http://", "file://")):
        raise ValueError(f"refusing to download from {url!r}: only http(s) and file URLs")
    response: IO[bytes] = urllib.request.urlopen(url, timeout=60)
    return response


def _content_length(stream: IO[bytes]) -> int | None:
    headers = getattr(stream, "headers", None)
    length = headers.get("Content-Length") if headers is not None else None
    return int(length) if length and str(length).isdigit() else None


def download_file(
    url: str,
    destination: str | Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    opener: Opener = _open_url,
    progress: bool = True,
) -> str:
    """Stream ``url`` to ``destination``, verifying it; return its SHA-256.

    Parameters
    ----------
    url:
        What to fetch (``https://``, ``http://`` or ``file://``).
    destination:
        Where the verified file goes. It appears only once verified: the bytes go
        to a ``.part`` file first, which is deleted on any failure.
    sha256, md5:
        Expected digests (hex). Every digest given must match.
    opener:
        Opens a URL as a binary stream; tests pass a local one.
    progress:
        Show a progress bar.

    Returns
    -------
    str
        The file's SHA-256 (hex), worth pinning when none was given.

    Raises
    ------
    ChecksumError
        When a digest does not match; nothing is left at ``destination``.
    """
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5(usedforsecurity=False)}
    try:
        with (
            opener(url) as stream,
            partial.open("wb") as out,
            transient_bar(
                *Progress.get_default_columns(),
                DownloadColumn(),
                TransferSpeedColumn(),
                enabled=progress,
            ) as bar,
        ):
            task = bar.add_task(f"downloading {destination.name}", total=_content_length(stream))
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
                for h in hashes.values():
                    h.update(chunk)
                bar.advance(task, len(chunk))
        for algorithm, expected in (("sha256", sha256), ("md5", md5)):
            got = hashes[algorithm].hexdigest()
            if expected is not None and got != expected.lower():
                raise ChecksumError(
                    f"{destination.name} from {url}: {algorithm} is {got}, expected {expected}; "
                    "the download is corrupt or the file changed upstream, so it was deleted"
                )
        partial.replace(destination)
    finally:
        partial.unlink(missing_ok=True)
    return hashes["sha256"].hexdigest()


def _safe_relative(name: str, prefix: str) -> PurePosixPath | None:
    """The member's path below ``prefix``, or None; refuses paths that escape."""
    if not name.startswith(prefix):
        return None
    relative = PurePosixPath(name[len(prefix) :])
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"refusing archive member {name!r}: its path leaves the target folder")
    return relative if relative.parts else None


def extract(archive_path: str | Path, member_prefix: str, target: str | Path) -> Path:
    """Unpack the files under ``member_prefix`` of a zip or tar archive into ``target``.

    Parameters
    ----------
    archive_path:
        A ``.zip``, ``.tar.gz``, ``.tgz`` or ``.tar`` file.
    member_prefix:
        Folder inside the archive to unpack (``""`` for everything); it is stripped.
    target:
        The folder to create. It appears complete or not at all: files go to a
        temporary sibling first.

    Returns
    -------
    pathlib.Path
        ``target``.
    """
    archive_path, target = Path(archive_path), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        count = 0
        if zipfile.is_zipfile(archive_path):
            with zipfile.ZipFile(archive_path) as zf:
                for info in zf.infolist():
                    relative = _safe_relative(info.filename, member_prefix)
                    if relative is None or info.is_dir():
                        continue
                    _write_member(staging / relative, zf.open(info))
                    count += 1
        else:
            with tarfile.open(archive_path) as tf:
                for member in tf.getmembers():
                    relative = _safe_relative(member.name, member_prefix)
                    if relative is None or not member.isfile():
                        continue
                    stream = tf.extractfile(member)
                    if stream is not None:
                        _write_member(staging / relative, stream)
                        count += 1
        if count == 0:
            raise ValueError(f"{archive_path.name} has no files under {member_prefix!r}")
        if target.exists():
            shutil.rmtree(target)
        staging.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_member(path: Path, stream: IO[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with stream, path.open("wb") as out:
        shutil.copyfileobj(stream, out, _CHUNK)


def fetch(
    dataset: str | Archive,
    data_dir: str | Path | None = None,
    *,
    sha256: str | None = None,
    allow_unpinned: bool = False,
    force: bool = False,
    opener: Opener = _open_url,
    progress: bool = True,
) -> Path:
    """Download, verify and unpack a public dataset; return its folder.

    Parameters
    ----------
    dataset:
        A name in :data:`ARCHIVES` (``ml-100k``, ``ml-latest-small``, ``mind-small``,
        ``obd``), or an :class:`Archive` describing another source (e.g. a mirror).
    data_dir:
        See :func:`resolve_data_dir`.
    sha256:
        The expected SHA-256 of the archive; overrides the pinned one.
    allow_unpinned:
        Accept an archive that has no pinned digest and no ``sha256``; its SHA-256 is
        logged so that it can be pinned next time.
    force:
        Download again even when the dataset is already there.
    opener:
        Opens a URL as a binary stream (tests pass a local one).
    progress:
        Show a progress bar.

    Returns
    -------
    pathlib.Path
        The dataset folder.

    Raises
    ------
    ValueError
        When the archive cannot be verified and ``allow_unpinned`` is false.
    ChecksumError
        When the archive does not match its digest.
    """
    archive = dataset if isinstance(dataset, Archive) else archive_for(dataset)
    root = resolve_data_dir(data_dir)
    target = root / archive.name
    if (target / archive.marker).is_file() and not force:
        return target
    expected_sha256 = sha256 or archive.sha256
    if expected_sha256 is None and archive.md5 is None and not allow_unpinned:
        raise ValueError(
            f"recops has no pinned checksum for {archive.filename} ({archive.url}), so it "
            "cannot verify the download. Pass the expected SHA-256 (--sha256 HEX) or accept an "
            "unverified download explicitly (--allow-unpinned)."
        )
    logger.info("downloading %s (%s) from %s", archive.name, archive.terms, archive.url)
    downloaded = root / ".downloads" / archive.filename
    digest = download_file(
        archive.url,
        downloaded,
        sha256=expected_sha256,
        md5=None if sha256 else archive.md5,
        opener=opener,
        progress=progress,
    )
    if expected_sha256 is None:
        logger.warning(
            "%s was not verified against a pinned digest; sha256=%s", archive.name, digest
        )
    extract(downloaded, archive.member_prefix, target)
    downloaded.unlink()
    return target
