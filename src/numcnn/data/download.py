"""Checked downloads: resumable, verified before use, and honest when there is no network.

download(url, dest, sha256=... or md5=...) streams into dest.part (resuming
it with an HTTP Range request if a previous attempt stopped), checks the
checksum of the whole file, and only then renames it to dest. A file that
fails the check is deleted and the error says so; with no network the error
says where to put the file by hand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DAMAGED_FILE_ERRORS, DataError, DatasetNotFound, describe

CHUNK = 1 << 16


def file_digest(path, algorithm: str) -> str:
    """The hex digest of a file's bytes by hashlib's `algorithm` ("sha256", "md5"), read 1 MiB at a time."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected(sha256, md5):
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    raise ValueError("download needs a checksum (sha256= or md5=): nothing unverified is ever used")


def _bar(total, name, enabled):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, unit="B", unit_scale=True, desc=name, file=sys.stderr)
        except ImportError:
            pass
    return None


def download(
    url: str,
    dest,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch url into dest (a file path) unless a verified copy is already there; returns dest."""
    algorithm, expected = _expected(sha256, md5)
    dest = Path(dest)
    if dest.is_file() and file_digest(dest, algorithm) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = offset and response.status == 206
            mode = "ab" if resumed else "wb"
            length = response.headers.get("Content-Length")
            total = (int(length) + (offset if resumed else 0)) if length else None
            bar = _bar(total, dest.name, progress)
            if bar is not None and resumed:
                bar.update(offset)
            with open(partial, mode) as f:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    if bar is not None:
                        bar.update(len(block))
            if bar is not None:
                bar.close()
            if total is not None and partial.stat().st_size < total:
                # the server closed early without an error: what arrived is good, keep it for a resume
                raise DatasetNotFound(
                    f"could not download {url}: the connection closed after "
                    f"{partial.stat().st_size} of {total} bytes; run again to resume "
                    f"(the partial download is kept at {partial}), or download it by hand "
                    f"and put it at {dest}"
                )
    except DatasetNotFound:  # an OSError too: raised above with its own message, not a network failure
        raise
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the partial file is already complete
            pass
        else:
            raise DatasetNotFound(
                f"could not download {url}: HTTP {error.code} {error.reason}. Download it by hand and put it at {dest}"
            ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DatasetNotFound(
            f"could not download {url} ({reason}): no network? Download it by hand "
            f"and put it at {dest}; a partial download is kept at {partial} and resumed "
            f"next time"
        ) from None
    actual = file_digest(partial, algorithm)
    if actual != expected:
        partial.unlink()
        raise DataError(
            f"{url}: the download's {algorithm} is {actual}, expected {expected}; "
            f"the corrupted file was deleted, nothing from it was used"
        )
    os.replace(partial, dest)
    return dest


def download_files(base_url: str, md5s: dict[str, str], folder) -> None:
    """download(base_url + name, folder/name, md5) for each name."""
    for name, md5 in md5s.items():
        download(base_url + name, Path(folder) / name, md5=md5)


def safe_extract(archive_path, folder) -> None:
    """Unpack a tar archive into folder, refusing members that would land outside it or are not files."""
    folder = Path(folder).resolve()
    try:
        with tarfile.open(archive_path) as archive:
            members = archive.getmembers()
            for member in members:
                target = (folder / member.name).resolve()
                if not (member.isfile() or member.isdir()) or folder not in (target, *target.parents):
                    raise DataError(
                        f"{archive_path}: refusing to unpack {member.name!r} (outside the folder, a link or a device)"
                    )
            for member in members:
                target = folder / member.name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.extractfile(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
    except DataError:
        raise
    except DAMAGED_FILE_ERRORS as error:  # zlib.error too, for a flipped bit in the deflate stream
        raise DataError(f"{archive_path}: truncated or corrupted archive ({describe(error)})") from None


def download_and_extract(url: str, folder, sha256: str | None = None, md5: str | None = None) -> Path:
    """Download a tar archive into folder (checked), then unpack it there."""
    folder = Path(folder)
    archive = download(url, folder / url.rsplit("/", 1)[-1], sha256=sha256, md5=md5)
    safe_extract(archive, folder)
    return folder
