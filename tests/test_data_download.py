"""Downloads: offline errors name the URL and the destination; checksums; atomic writes; data-dir
resolution."""

import hashlib
import urllib.error
import zipfile
from pathlib import Path

import pytest

from rhel.data import DataError, DownloadError, load, resolve_data_dir
from rhel.data import download as dl
from rhel.data.download import Remote, download, extract_zip, verify_checksum


def _offline(*args, **kwargs):
    raise urllib.error.URLError("network is unreachable")


def test_offline_error_says_what_to_fetch_and_where(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_urlopen", _offline)
    remote = Remote(
        "x.zip", ("https://example.org/a/x.zip", "https://mirror.example.org/x.zip"), ("sha256:" + "0" * 64,)
    )
    with pytest.raises(DownloadError) as err:
        download(remote, tmp_path, progress=False)
    msg = str(err.value)
    assert "https://example.org/a/x.zip" in msg and "https://mirror.example.org/x.zip" in msg
    assert str(tmp_path / "x.zip") in msg and "network is unreachable" in msg
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_offline_load_of_missing_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_urlopen", _offline)
    with pytest.raises(DownloadError, match=r"Fetch it by hand from https://github.com/RYH2077.*Bonn EEG dataset.zip"):
        load("bonn_eeg", data_dir=tmp_path)


def test_file_url_download_checksum_and_atomicity(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello rhel" * 1000)
    good = "sha256:" + hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / "out"
    path = download(Remote("f.bin", (src.as_uri(),), (good,)), out, progress=False)
    assert path.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["f.bin"]  # no .part file
    # a wrong checksum: error, and no file appears
    bad = Remote("g.bin", (src.as_uri(),), ("md5:" + "0" * 32,))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(bad, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["f.bin"]
    # md5 accepted as an alternative checksum
    md5 = "md5:" + hashlib.md5(src.read_bytes()).hexdigest()
    download(Remote("h.bin", (src.as_uri(),), ("sha256:" + "1" * 64, md5)), out, progress=False)


def test_first_download_records_checksum(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    out = tmp_path / "out"
    download(Remote("a.bin", (src.as_uri(),)), out, progress=False)
    recorded = (out / "a.bin.sha256").read_text().split()[0]
    assert recorded == hashlib.sha256(b"abc").hexdigest()
    (out / "a.bin").write_bytes(b"tampered")
    with pytest.raises(DataError, match="checksum mismatch"):
        download(Remote("a.bin", (src.as_uri(),)), out, progress=False)


def test_truncated_download_is_rejected(tmp_path, monkeypatch):
    class Response:
        headers = {"Content-Length": "100"}

        def __init__(self):
            self.chunks = [b"x" * 40, b""]

        def read(self, n):
            return self.chunks.pop(0)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(dl, "_urlopen", lambda url, timeout: Response())
    with pytest.raises(DownloadError, match="truncated download"):
        download(Remote("t.bin", ("https://example.org/t.bin",)), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_verify_checksum_no_op_without_checksums(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"1")
    verify_checksum(p, ())


def test_extract_zip_refuses_path_traversal(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(DataError, match="outside"):
        extract_zip(z, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        extract_zip(tmp_path / "bad.zip", tmp_path / "dest")


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("RHEL_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("RHEL_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == Path(tmp_path / "xdg" / "rhel")
