"""The data directory, checksums and downloads (with progress, verified, atomic).

Data directory resolution, in order: the ``data_dir`` argument (``--data-dir`` on the command line), the
environment variable ``RHEL_DATA_DIR``, then the per-user cache directory ``$XDG_CACHE_HOME/rhel``
(``~/.cache/rhel``). Each named dataset lives in its own folder under the data directory (see ``rhel data
info NAME``).

Downloads are written to a temporary file in the destination folder, checked against the expected checksum,
and only then renamed into place (``os.replace``), so an interrupted or corrupt download never leaves a file
that looks complete. Where no published checksum is known the sha256 of the first download is recorded next
to the file (``<file>.sha256``) and checked on every later download.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from rhel.data.core import DataError, DownloadError

__all__ = [
    "ENV_VAR",
    "Remote",
    "default_data_dir",
    "resolve_data_dir",
    "file_digest",
    "verify_checksum",
    "download",
    "extract_zip",
]

ENV_VAR = "RHEL_DATA_DIR"
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0

#: the opener used for every download (tests replace it; nothing else in rhel touches the network).
_urlopen = urllib.request.urlopen


@dataclass(frozen=True)
class Remote:
    """A file to download: its name in the dataset folder, mirror URLs tried in order, and accepted checksums.

    Each checksum is ``"sha256:<hex>"`` or ``"md5:<hex>"`` (a bare hex string means sha256); the file is
    accepted when it matches any of them. An empty tuple means no published checksum is known (trust on first
    download).
    """

    filename: str
    urls: tuple[str, ...]
    checksums: tuple[str, ...] = field(default=())


def default_data_dir() -> Path:
    """The per-user cache directory: ``$XDG_CACHE_HOME/rhel`` or ``~/.cache/rhel``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rhel"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Explicit argument > ``$RHEL_DATA_DIR`` > :func:`default_data_dir`."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _parse_checksum(spec: str) -> tuple[str, str]:
    algo, _, hexdigest = spec.rpartition(":")
    return (algo or "sha256").lower(), hexdigest.lower()


def verify_checksum(path: Path, checksums: Sequence[str]) -> None:
    """Raise :class:`DataError` unless ``path`` matches one of ``checksums`` (no-op when none is given)."""
    if not checksums:
        return
    found: dict[str, str] = {}
    for spec in checksums:
        algo, expected = _parse_checksum(spec)
        if algo not in found:
            found[algo] = file_digest(path, algo)
        if found[algo] == expected:
            return
    got = ", ".join(f"{a}:{d}" for a, d in found.items())
    raise DataError(f"checksum mismatch for {path}: got {got}, expected one of {list(checksums)}")


def _recorded_checksum(dest: Path) -> tuple[str, ...]:
    sidecar = dest.with_name(dest.name + ".sha256")
    if sidecar.is_file():
        return (sidecar.read_text().split()[0],)
    return ()


def _fetch(url: str, tmp: Path, label: str, progress: bool) -> None:
    with _urlopen(url, timeout=_TIMEOUT_S) as response, open(tmp, "wb") as out:
        total = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
        total = int(total) if total and str(total).isdigit() else None
        with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not progress, leave=False) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and out.tell() != total:
            raise DataError(f"truncated download from {url}: {out.tell()} of {total} bytes")
        out.flush()
        os.fsync(out.fileno())


def download(remote: Remote, folder: Path, *, progress: bool = True, force: bool = False) -> Path:
    """Download ``remote`` into ``folder`` (atomically, verified) and return its path.

    An existing file that passes the checksum is kept. Every mirror is tried in turn; when all fail,
    :class:`DownloadError` says which URL to fetch by hand and where to put the file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / remote.filename
    checksums = remote.checksums or _recorded_checksum(dest)
    if dest.is_file() and not force:
        verify_checksum(dest, checksums)
        return dest
    errors: list[str] = []
    for url in remote.urls:
        fd, name = tempfile.mkstemp(prefix=f".{remote.filename}.", suffix=".part", dir=folder)
        os.close(fd)
        tmp = Path(name)
        try:
            _fetch(url, tmp, remote.filename, progress)
            verify_checksum(tmp, checksums)
        except (urllib.error.URLError, OSError, DataError, ValueError) as e:
            tmp.unlink(missing_ok=True)
            errors.append(f"  {url}: {e}")
            continue
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if not checksums:
            digest = file_digest(tmp)
            dest.with_name(dest.name + ".sha256").write_text(f"{digest}  {remote.filename}\n")
            print(f"note: no published checksum for {remote.filename}; recorded sha256 {digest}")
        os.replace(tmp, dest)
        return dest
    raise DownloadError(
        f"could not download {remote.filename}:\n"
        + "\n".join(errors)
        + f"\nFetch it by hand from {remote.urls[0]} and save it as {dest}"
        + (f" (expected checksum: {checksums[0]})" if checksums else "")
    )


def extract_zip(archive: Path, folder: Path, members: Sequence[str] | None = None) -> Path:
    """Extract ``archive`` (or only ``members``) into ``folder``, refusing paths that leave it; atomic per
    archive.

    Everything is first extracted into a temporary folder next to ``folder`` and then moved into place.
    """
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as e:
        raise DataError(f"{archive}: not a valid zip file ({e})") from None
    with zf, tempfile.TemporaryDirectory(prefix=".extract-", dir=folder) as tmpdir:
        names = [n for n in zf.namelist() if members is None or n in members]
        for n in names:
            target = (root / n).resolve()
            if root != target and root not in target.parents:
                raise DataError(f"{archive}: member {n!r} would be written outside {folder}")
        try:
            zf.extractall(tmpdir, members=names)
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise DataError(f"{archive}: truncated or corrupt zip ({e})") from None
        for entry in Path(tmpdir).iterdir():
            target = folder / entry.name
            if target.is_dir() and entry.is_dir():
                shutil.copytree(entry, target, dirs_exist_ok=True)
            else:
                os.replace(entry, target)
    return folder
