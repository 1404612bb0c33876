"""The data directory, checksums and downloads (with progress, verified, atomic).

Data directory resolution, in order: the ``data_dir`` argument (``--data-dir`` on the command line), the
environment variable ``RHEL_DATA_DIR``, then the per-user cache directory ``$XDG_CACHE_HOME/rhel``
(``~/.cache/rhel``). Each named dataset lives in its own folder under the data directory (see ``rhel data
info NAME``).

Downloads are written to a temporary file in the destination folder, checked against the expected checksum,
and only then renamed into place (``os.replace``), so an interrupted or corrupt download never leaves a file
that looks complete. Where no published checksum is known the sha256 of the first download is recorded next
to the file (``<file>.sha256``) and checked on every later download.

Files are verified again on every load (:func:`verify_folder`) against the checksums known for them: the
``SOURCE.md`` tables and ``sha256sum`` lines, ``SHA256SUMS`` manifests and ``<file>.sha256`` sidecars in the
dataset folder or its parent, and those the loaders know. The verified digest is cached with the file's size and
mtime in ``.rhel-verified.json`` in the dataset folder (written atomically; kept in memory only when the folder is
read-only), so a second load costs one ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Mapping, Sequence
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
    "known_checksums",
    "verify_folder",
    "has_data_files",
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


def _match(path: Path, checksums: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """The first of ``checksums`` that ``path`` matches (``None`` if none), and the digests computed."""
    found: dict[str, str] = {}
    for spec in checksums:
        algo, expected = _parse_checksum(spec)
        if algo not in found:
            found[algo] = file_digest(path, algo)
        if found[algo] == expected:
            return spec, found
    return None, found


def verify_checksum(path: Path, checksums: Sequence[str]) -> None:
    """Raise :class:`DataError` unless ``path`` matches one of ``checksums`` (no-op when none is given)."""
    if not checksums:
        return
    matched, found = _match(path, checksums)
    if matched is None:
        got = ", ".join(f"{a}:{d}" for a, d in found.items())
        raise DataError(f"checksum mismatch for {path}: got {got}, expected one of {list(checksums)}")


VERIFIED_CACHE = ".rhel-verified.json"
_MANIFESTS = ("SOURCE.md", "SHA256SUMS")
_TABLE_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|[^|]*\|\s*`([0-9a-fA-F]{64})`\s*\|")
_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(\S.*?)\s*$")
#: verified (path, size, mtime_ns, checksum) of this process, for read-only folders.
_VERIFIED: set[tuple[str, int, int, str]] = set()
#: files that are documentation, manifests or partial downloads, never data.
_NOT_DATA = re.compile(r"(^\.|^SOURCE\.md$|^SHA256SUMS$|^README|\.sha256$|\.part$)", re.IGNORECASE)


def known_checksums(folder: Path) -> dict[Path, tuple[tuple[str, ...], str]]:
    """Expected checksums of the files in ``folder``, with the manifest that states them.

    Read from ``SOURCE.md`` (its `` | `file` | bytes | `sha256` | `` table rows and ``sha256sum`` lines),
    ``SHA256SUMS`` and ``<file>.sha256`` in ``folder`` and its parent; a name is relative to its manifest's folder
    (or to a sub-folder of it holding the file, as ``fsdd/SHA256SUMS`` lists ``recordings/``). Only files inside
    ``folder`` are returned.
    """
    out: dict[Path, tuple[tuple[str, ...], str]] = {}
    for base in (folder.parent, folder):
        if not base.is_dir():
            continue
        subdirs: list[Path] | None = None
        for manifest in [base / m for m in _MANIFESTS] + sorted(base.glob("*.sha256")):
            if not manifest.is_file():
                continue
            for line in manifest.read_text(encoding="utf-8", errors="replace").splitlines():
                m = _TABLE_ROW.match(line) or _SUM_LINE.match(line)
                if m is None:
                    continue
                name, digest = (m[1], m[2]) if m.re is _TABLE_ROW else (m[2], m[1])
                path = base / name
                if not path.is_file():
                    subdirs = [d for d in base.iterdir() if d.is_dir()] if subdirs is None else subdirs
                    path = next((d / name for d in subdirs if (d / name).is_file()), path)
                if path.is_relative_to(folder):
                    out[path] = ((f"sha256:{digest.lower()}",), str(manifest))
    return out


def _cache_writable(folder: Path) -> bool:
    try:
        return bool(folder.stat().st_mode & 0o200) and os.access(folder, os.W_OK)
    except OSError:
        return False


def _read_cache(folder: Path) -> dict[str, dict]:
    try:
        data = json.loads((folder / VERIFIED_CACHE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(folder: Path, cache: dict[str, dict]) -> None:
    """Write the cache atomically (temporary file, then ``os.replace``); a failure only loses the cache."""
    try:
        fd, name = tempfile.mkstemp(prefix=f"{VERIFIED_CACHE}.", suffix=".part", dir=folder)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(cache, f, indent=0, sort_keys=True)
        os.replace(name, folder / VERIFIED_CACHE)
    except OSError:
        Path(name).unlink(missing_ok=True)


def verify_folder(folder: Path, extra: Mapping[Path, Sequence[str]] | None = None, *, what: str = "") -> int:
    """Check every file of ``folder`` with a known checksum (:func:`known_checksums`, plus ``extra``); return how
    many were checked.

    A file whose size and mtime match the cached verified digest is not read again. A mismatch raises
    :class:`DataError` naming the file, the manifest and what to do (``what``: the dataset name for the hint).
    """
    expected = known_checksums(folder)
    for path, sums in (extra or {}).items():
        expected.setdefault(Path(path), (tuple(sums), "rhel's recorded checksum"))
    writable = _cache_writable(folder)
    cache = _read_cache(folder) if writable else {}
    changed = False
    checked = 0
    for path, (sums, source) in sorted(expected.items()):
        try:
            st = path.stat()
        except OSError:
            continue  # a missing file is the loader's error to report
        checked += 1
        key = path.relative_to(folder).as_posix()
        entry = cache.get(key) or {}
        stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if entry.get("checksum") in sums and (entry.get("size"), entry.get("mtime_ns")) == stamp[1:]:
            continue
        if any((*stamp, s) in _VERIFIED for s in sums):
            continue
        matched, found = _match(path, sums)
        if matched is None:
            got = next(iter(found.values()))
            raise DataError(
                f"{path}: checksum mismatch (got {got[:16]}..., expected {sums[0]} from {source}); the file is "
                f"corrupt or was changed: delete it and "
                + (f"run `rhel data fetch {what}`" if what else "fetch it again")
            )
        _VERIFIED.add((*stamp, matched))
        cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "checksum": matched}
        changed = True
    if changed and writable:
        _write_cache(folder, cache)
    return checked


def has_data_files(folder: Path) -> bool:
    """Whether ``folder`` holds at least one data file (not only manifests, notes or partial downloads): an empty
    folder left by a failed download is not a dataset."""
    if not folder.is_dir():
        return False
    return any(p.is_file() and not _NOT_DATA.search(p.name) for p in folder.rglob("*"))


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
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
            raise DataError(f"{archive}: truncated or corrupt zip ({e})") from None
        for entry in Path(tmpdir).iterdir():
            target = folder / entry.name
            if target.is_dir() and entry.is_dir():
                shutil.copytree(entry, target, dirs_exist_ok=True)
            else:
                os.replace(entry, target)
    return folder
