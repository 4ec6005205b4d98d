"""Datasets given as .tar.gz / .tgz / .tar / .zip archives, extracted once, safely, into a cache.

Before anything is written, every member is checked: an absolute path, a `..` component, a link
or a device file is refused (Python's "data" extraction filter then applies as a second guard), and
the checksums are verified, so a damaged archive is refused whole rather than trained on in part.
"""

import contextlib
import fcntl
import gzip
import hashlib
import os
import pathlib
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib

from tqdm import tqdm

from harness.errors import UserError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
DAMAGED_ADVICE = "download or copy the archive again"
CACHE = pathlib.Path(os.environ.get("VIT_DATA_CACHE", pathlib.Path.home() / ".cache" / "vit-from-scratch"))


def is_archive(path):
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _unsafe_reason(name, is_link=False, is_special=False):
    parts = pathlib.PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]):
        return "an absolute path"
    if ".." in parts:
        return "a '..' component"
    if is_link:
        return "a link"
    if is_special:
        return "a device or other special file"
    return None


def _check_members(archive):
    """Raises UserError naming the first unsafe member."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as opened:
            members = [(info.filename, stat.S_ISLNK(info.external_attr >> 16), False) for info in opened.infolist()]
    else:
        with tarfile.open(archive) as opened:
            members = [(m.name, m.issym() or m.islnk(), not (m.isfile() or m.isdir())) for m in opened.getmembers()]
    for name, is_link, is_special in members:
        reason = _unsafe_reason(name, is_link, is_special and not is_link)
        if reason:
            raise UserError(f"refusing to extract {archive}: member {name!r} is {reason}")


def _check_integrity(archive):
    """Reads the whole archive once against its checksums (each zip member's CRC-32; a gzip stream's CRC and
    length at its very end, which extraction alone may never reach): a damaged archive is refused whole."""
    advice = f"nothing was extracted; {DAMAGED_ADVICE}"
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as opened:
                bad = opened.testzip()
            if bad is not None:
                raise UserError(f"{archive} is damaged: member {bad!r} fails its CRC check; {advice}")
        elif archive.name.lower().endswith((".tar.gz", ".tgz")):
            with gzip.open(archive, "rb") as stream:
                while stream.read(1 << 24):
                    pass
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
        raise UserError(f"{archive} is damaged ({error}); {advice}") from None


def _progress(members, archive):
    return tqdm(members, desc=f"extracting {archive.name}", unit="file", disable=None)  # a bar on terminals only


def extract_archive(archive):
    """The folder holding the archive's contents (extracted on first use); the top folder if single."""
    archive = pathlib.Path(archive)
    try:
        _check_members(archive)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise UserError(f"{archive} is not a readable .tar.gz/.tar/.zip archive ({error})") from None
    digest = hashlib.sha256(f"{archive.resolve()}:{archive.stat().st_size}:{archive.stat().st_mtime_ns}".encode())
    target = CACHE / f"{archive.name.split('.')[0]}-{digest.hexdigest()[:12]}"
    if not target.is_dir():
        _check_integrity(archive)  # before anything is written
        CACHE.mkdir(parents=True, exist_ok=True)
        with _only_extractor(archive):  # another process may be extracting the same archive
            if not target.is_dir():  # it may have finished while this one waited
                _extract(archive, target)
    children = [p for p in target.iterdir() if not p.name.startswith(".")]
    return children[0] if len(children) == 1 and children[0].is_dir() else target


@contextlib.contextmanager
def _only_extractor(archive):
    """Holds the cache folder's lock: one process extracts, the others wait, then reuse what it made. The lock
    is on the folder itself (no lock file to leave behind) and ends when the process does, however it ends."""
    folder = os.open(CACHE, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process extracting into {CACHE} (for {archive})", flush=True)
            fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)


def _extract(archive, target):
    """Checks `archive` whole, then extracts it into a hidden folder beside `target` that becomes `target` in one
    rename: a crash leaves only the hidden folder, never a `target` in part."""
    staging = pathlib.Path(tempfile.mkdtemp(dir=target.parent, prefix=".extracting-"))
    print(f"extracting {archive} into {target} (once; later runs reuse it)", flush=True)
    start = time.perf_counter()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as opened:
                for member in _progress(opened.infolist(), archive):
                    opened.extract(member, staging)
        else:
            with tarfile.open(archive) as opened:
                opened.extractall(staging, members=_progress(opened.getmembers(), archive), filter="data")
        os.replace(staging, target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise UserError(f"{archive} is damaged ({error}); nothing was extracted; {DAMAGED_ADVICE}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"extracted in {time.perf_counter() - start:.0f} s", flush=True)
