"""Folders of images, one sub-folder per class (torchvision's ImageFolder layout).

    root/cat/0001.png, root/cat/0002.png, ..., root/dog/0001.png, ...

Classes are the sub-folders sorted by name (label 0 is the first). root may
also be a .tar, .tar.gz, .tgz or .zip archive holding such a layout, read
without unpacking, and `subfolder` selects a part of it (train/ or test/).
Any format Pillow reads is accepted; every image must have the same size.

Decoded arrays are cached (an .npz in the data folder) under a key made of
the file list and sizes (or the archive's size and modification time), so a
second load of 60,000 images is one file read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..atomic import write_atomically
from .errors import DataError, DatasetNotFound, data_dir

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
CACHE_VERSION = 1


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _image_files(names: list[str], prefix: str) -> list[tuple[str, str]]:
    """(class, name) for every image file under prefix/<class>/..., sorted."""
    found = []
    for name in names:
        if not name.startswith(prefix) or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        parts = name[len(prefix):].split("/")
        if len(parts) >= 2 and not any(p.startswith(".") for p in parts):
            found.append((parts[0], name))
    return sorted(found)


class _Folder:
    def __init__(self, root: Path, subfolder: str | None):
        self.base = root / subfolder if subfolder else root
        if not self.base.is_dir():
            raise DatasetNotFound(f"{self.base}: no such folder of class sub-folders")
        self.label = str(self.base.resolve())

    def listing(self) -> list[tuple[str, str, int]]:
        names = []
        for directory, subdirectories, files in os.walk(self.base):
            subdirectories.sort()
            for file in files:
                names.append(os.path.relpath(os.path.join(directory, file), self.base).replace(os.sep, "/"))
        entries = _image_files(names, "")
        return [(cls, name, (self.base / name).stat().st_size) for cls, name in entries]

    def key(self) -> list:
        self._listing = self.listing()
        return [self.label, [(name, size) for _, name, size in self._listing]]

    def read_all(self, names):
        for name in names:
            yield name, (self.base / name).read_bytes()


class _Archive:
    def __init__(self, path: Path, subfolder: str | None):
        self.path, self.prefix = path, (subfolder.strip("/") + "/" if subfolder else "")
        self.label = str(path.resolve())
        self.zip = path.name.lower().endswith(".zip")

    def _open(self):
        try:
            return zipfile.ZipFile(self.path) if self.zip else tarfile.open(self.path)
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
            raise DataError(f"{self.path}: not a readable archive ({error})") from None

    def listing(self) -> list[tuple[str, str, int]]:
        try:
            with self._open() as archive:
                if self.zip:
                    sizes = {i.filename: i.file_size for i in archive.infolist() if not i.is_dir()}
                else:
                    sizes = {m.name.lstrip("./"): m.size for m in archive.getmembers() if m.isfile()}
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
            raise DataError(f"{self.path}: truncated or corrupted archive ({error})") from None
        entries = _image_files(list(sizes), self.prefix)
        if not entries:
            where = f" under {self.prefix}" if self.prefix else ""
            raise DataError(f"{self.path}: no class sub-folders of images{where}")
        return [(cls, name, sizes[name]) for cls, name in entries]

    def key(self) -> list:
        # a stat, not a listing: listing a .tar.gz means decompressing all of it
        stat = self.path.stat()
        return [self.label, self.prefix, stat.st_size, stat.st_mtime_ns]

    def read_all(self, names):
        wanted = set(names)
        try:
            with self._open() as archive:
                if self.zip:
                    for name in names:
                        yield name, archive.read(name)
                    return
                for member in archive:
                    name = member.name.lstrip("./")
                    if name in wanted:
                        yield name, archive.extractfile(member).read()
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
            raise DataError(f"{self.path}: truncated or corrupted archive ({error})") from None


def _decoder(source_label: str, mode_holder: dict):
    from PIL import Image, UnidentifiedImageError

    def decode(item):
        name, data = item
        try:
            with Image.open(io.BytesIO(data)) as image:
                if "mode" not in mode_holder:
                    mode_holder["mode"] = "L" if image.mode in ("1", "L", "I;16", "I", "F") else "RGB"
                return name, np.asarray(image.convert(mode_holder["mode"]))
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise DataError(f"{source_label}/{name}: not a readable image ({error})") from None

    return decode


def load_image_folder(root, subfolder: str | None = None, cache: bool = True, workers: int | None = None):
    """Images and labels of a folder (or archive) of class sub-folders.

    Returns X uint8 (N, H, W, C), y int64 (N,) and the class names.
    """
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ImportError("reading image folders needs Pillow: pip install pillow") from None
    root = Path(root)
    if not root.exists():
        raise DatasetNotFound(f"{root}: no such folder or archive")
    source = _Archive(root, subfolder) if is_archive(root) else _Folder(root, subfolder)
    cache_file = _cache_path(source) if cache else None
    if cache_file is not None and cache_file.exists():
        try:
            with np.load(cache_file, allow_pickle=False) as cached:
                return cached["X"], cached["y"], [str(c) for c in cached["classes"]]
        except Exception:  # noqa: BLE001  a damaged cache is rebuilt, whatever zipfile or the .npy parser
            pass             # raise for it (RuntimeError for a flipped flag, tokenize.TokenError, ...)
    listing = getattr(source, "_listing", None) or source.listing()
    if not listing:
        raise DataError(f"{source.label}: no class sub-folders of images found")
    classes = sorted({cls for cls, _, _ in listing})
    X, y = _decode_all(source, listing, classes, workers)
    if cache_file is not None:
        write_atomically(cache_file, lambda f: np.savez(f, X=X, y=y, classes=np.array(classes)))
    return X, y, classes


def _cache_path(source) -> Path:
    key = json.dumps([CACHE_VERSION, *source.key()]).encode()
    return data_dir() / "image-folders" / f"{hashlib.sha256(key).hexdigest()[:24]}.npz"


def _decode_all(source, listing, classes, workers):
    index = {name: i for i, (_, name, _) in enumerate(listing)}
    label_of = {cls: i for i, cls in enumerate(classes)}
    y = np.array([label_of[cls] for cls, _, _ in listing], dtype=np.int64)
    mode: dict = {}
    decode = _decoder(source.label, mode)
    names = [name for _, name, _ in listing]
    first_name, first_bytes = next(source.read_all(names[:1]))
    _, first = decode((first_name, first_bytes))
    shape = first.shape if first.ndim == 3 else first.shape + (1,)
    X = np.empty((len(listing),) + shape, np.uint8)
    # Pillow releases the GIL while decoding: threads decode while this one reads
    with ThreadPoolExecutor(workers or min(4, os.cpu_count() or 1)) as pool:
        for name, pixels in pool.map(decode, source.read_all(names), chunksize=64):
            pixels = pixels if pixels.ndim == 3 else pixels[..., None]
            if pixels.shape != shape:
                raise DataError(f"{source.label}/{name}: image of size {pixels.shape[:2]} with {pixels.shape[2]} "
                                f"channels, but the folder's images are {shape[:2]} with {shape[2]}")
            X[index[name]] = pixels
    return X, y
