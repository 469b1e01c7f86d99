"""Downloads are verified and unpacked without the network (file:// URLs, fake openers)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from recops.data.download import (
    ARCHIVES,
    Archive,
    ChecksumError,
    dataset_dir,
    download_file,
    extract,
    fetch,
    resolve_data_dir,
)


def _zip(path: Path, files: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path.read_bytes()


def _archive(url: str, sha256: str | None, prefix: str = "toy/") -> Archive:
    return Archive(
        name="toy",
        url=url,
        filename="toy.zip",
        sha256=sha256,
        md5=None,
        member_prefix=prefix,
        marker="ratings.csv",
        terms="test data",
    )


@pytest.fixture
def toy_zip(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "upstream" / "toy.zip"
    path.parent.mkdir()
    data = _zip(path, {"toy/ratings.csv": b"user_id,item_id,timestamp\n1,2,3\n", "toy/": b""})
    return path, hashlib.sha256(data).hexdigest()


def test_fetch_verifies_and_unpacks_from_a_file_url(tmp_path, toy_zip):
    path, digest = toy_zip
    folder = fetch(_archive(path.as_uri(), digest), tmp_path / "data", progress=False)
    assert folder == tmp_path / "data" / "toy"
    assert (folder / "ratings.csv").read_text().endswith("1,2,3\n")
    # The archive itself is removed once unpacked.
    assert not list((tmp_path / "data" / ".downloads").iterdir())


def test_checksum_mismatch_is_refused_and_nothing_is_kept(tmp_path, toy_zip):
    path, _ = toy_zip
    wrong = "0" * 64
    with pytest.raises(
        ChecksumError, match=r"toy.zip from file:.*sha256 is [0-9a-f]{64}, expected"
    ):
        fetch(_archive(path.as_uri(), wrong), tmp_path / "data", progress=False)
    assert not (tmp_path / "data" / "toy").exists()
    assert not list((tmp_path / "data" / ".downloads").iterdir())


def test_md5_pin_is_checked_too(tmp_path):
    payload = b"some archive bytes"

    def opener(url: str) -> io.BytesIO:
        return io.BytesIO(payload)

    target = tmp_path / "file.bin"
    with pytest.raises(ChecksumError, match="md5"):
        download_file("https://example.org/x", target, md5="0" * 32, opener=opener, progress=False)
    digest = download_file(
        "https://example.org/x",
        target,
        md5=hashlib.md5(payload).hexdigest(),
        opener=opener,
        progress=False,
    )
    assert digest == hashlib.sha256(payload).hexdigest()
    assert target.read_bytes() == payload


def test_unpinned_archive_needs_explicit_consent(tmp_path, toy_zip):
    path, digest = toy_zip
    archive = _archive(path.as_uri(), None)
    with pytest.raises(ValueError, match=r"no pinned checksum .*--sha256 HEX.*--allow-unpinned"):
        fetch(archive, tmp_path / "a", progress=False)
    assert not (tmp_path / "a").exists()
    assert (fetch(archive, tmp_path / "b", sha256=digest, progress=False)).is_dir()
    assert fetch(archive, tmp_path / "c", allow_unpinned=True, progress=False).is_dir()


def test_fetch_by_name_uses_the_pinned_obd_archive_through_the_opener(tmp_path):
    """The real OBD spec, fed a fake archive: the pinned sha256 refuses it."""

    def opener(url: str) -> io.BytesIO:
        assert url == ARCHIVES["obd"].url
        return io.BytesIO(b"not the obp sdist")

    with pytest.raises(ChecksumError):
        fetch("obd", tmp_path, opener=opener, progress=False)
    assert not (tmp_path / "obd").exists()


def test_fetch_skips_a_dataset_already_there(tmp_path):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t2\t3\t4\n")

    def opener(url: str) -> io.BytesIO:
        raise AssertionError("must not download")

    assert fetch("ml-100k", tmp_path, opener=opener) == tmp_path / "ml-100k"
    assert dataset_dir("ml-100k", tmp_path) == tmp_path / "ml-100k"


def test_tar_members_are_stripped_of_their_prefix(tmp_path):
    path = tmp_path / "pkg.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in {
            "pkg-1/data/obd/random/all/all.csv": b"a\n",
            "pkg-1/setup.py": b"",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    target = extract(path, "pkg-1/data/obd/", tmp_path / "obd")
    assert [p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()] == [
        "random/all/all.csv"
    ]


def test_members_escaping_the_target_are_refused(tmp_path):
    path = tmp_path / "evil.zip"
    _zip(path, {"toy/../../escape.txt": b"x"})
    with pytest.raises(ValueError, match="leaves the target folder"):
        extract(path, "toy/", tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out").exists()


def test_only_http_and_file_urls_are_opened(tmp_path):
    with pytest.raises(ValueError, match="only http"):
        download_file("ftp://example.org/x", tmp_path / "x", progress=False)


def test_data_dir_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOPS_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("RECOPS_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "recops" / "data"


def test_every_public_archive_is_described():
    assert set(ARCHIVES) == {"ml-100k", "ml-latest-small", "mind-small", "obd"}
    for archive in ARCHIVES.values():
        assert archive.url.startswith("https://")
        assert archive.terms
    assert ARCHIVES["ml-100k"].pinned
    assert ARCHIVES["obd"].pinned
