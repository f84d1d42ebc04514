"""Folders of images, one sub-folder per class (torchvision's ImageFolder layout).

    root/cat/0001.png, root/cat/0002.png, ..., root/dog/0001.png, ...

Classes are the sub-folders sorted by name (label 0 is the first). root may
also be a .tar, .tar.gz, .tgz or .zip archive holding such a layout, read
without unpacking, and `subfolder` selects a part of it (train/ or test/).
Members outside the archive's root (absolute paths, '..') and hidden files
or folders are ignored, the same way in both formats.

Any format Pillow reads is accepted. Images are grayscale (C=1) if all of
them are, else RGB (C=3; grayscale ones repeat their channel); 16-bit
grayscale is scaled to 0..255. Every image must have the same size unless
image_size=N is given: then each image's shorter side is resized to N
(bilinear) and the central N x N square kept, as torchvision's
Resize(N) + CenterCrop(N) do.

Decoded arrays are cached (an .npz in the data folder) under a key made of
each file's name (so its class), size, modification time and inode (or the
archive's), and image_size, so a second load of 60,000 images is one file
read. A damaged cache is rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..io import write_atomically
from .errors import DAMAGED_FILE_ERRORS, DataError, DatasetNotFound, data_dir, describe

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
CACHE_VERSION = 2
# An image file inside an archive may declare at most this many bytes: the declared size is
# checked before a member is inflated, so a small archive cannot make the loader hold gigabytes.
MAX_MEMBER_BYTES = 256 << 20
SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
GRAY_MODES = {"1", "L", "LA", "F"}


def is_archive(path: Path) -> bool:
    """Whether path is a file whose name ends in .tar, .tar.gz, .tgz or .zip (in any case)."""
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def member_name(raw: str) -> str | None:
    """An archive member's path relative to the archive's root ('./a//b' -> 'a/b'), or None
    for one that points outside it: absolute, with a '..' part, a drive letter or backslashes."""
    if raw.startswith("/") or "\\" in raw or (len(raw) > 1 and raw[1] == ":"):
        return None
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _image_files(names, prefix: str) -> list[tuple[str, str]]:
    """(class, name) for every image file under prefix/<class>/..., sorted; hidden parts skipped."""
    found = []
    for name in names:
        if not name.startswith(prefix) or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        parts = name[len(prefix) :].split("/")
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
        self._stats = {name: self._stat(name) for _, name in entries}
        return [(cls, name, self._stats[name].st_size) for cls, name in entries]

    def _stat(self, name: str):
        try:
            return (self.base / name).stat()
        except OSError as error:  # a dangling link, or a file removed while listing
            raise DataError(f"{self.base / name}: cannot be read ({describe(error)})") from None

    def key(self) -> list:
        # the name carries the class; mtime catches an edit in place at the same size, the
        # inode a file moved or swapped here from elsewhere (a rename keeps the mtime)
        self._listing = self.listing()
        return [self.label, [(name, s.st_size, s.st_mtime_ns, s.st_ino) for name, s in self._stats.items()]]

    def read_all(self, names):
        for name in names:
            try:
                yield name, (self.base / name).read_bytes()
            except OSError as error:
                raise DataError(f"{self.base / name}: cannot be read ({describe(error)})") from None


class _Archive:
    def __init__(self, path: Path, subfolder: str | None):
        self.path, self.prefix = path, (subfolder.strip("/") + "/" if subfolder else "")
        self.label = str(path.resolve())
        self.zip = path.name.lower().endswith(".zip")

    def _damaged(self, error) -> DataError:
        return DataError(f"{self.path}: truncated or corrupted archive ({describe(error)})")

    def _open(self):
        try:
            return zipfile.ZipFile(self.path) if self.zip else tarfile.open(self.path)
        except (*DAMAGED_FILE_ERRORS, ValueError) as error:
            raise DataError(f"{self.path}: not a readable archive ({describe(error)})") from None

    def _members(self) -> dict:
        """{relative name: (member, declared size)} of the regular files inside the archive's root."""
        members = {}
        with self._open() as archive:
            if self.zip:
                entries = ((i, i.filename, i.file_size) for i in archive.infolist() if not i.is_dir())
            else:
                entries = ((m, m.name, m.size) for m in archive.getmembers() if m.isfile())
            for member, raw_name, size in entries:
                name = member_name(raw_name)
                if name is not None:
                    members[name] = (member, size)
        return members

    def listing(self) -> list[tuple[str, str, int]]:
        try:
            self.members = self._members()
        except DataError:
            raise
        except (*DAMAGED_FILE_ERRORS, ValueError) as error:
            raise self._damaged(error) from None
        entries = _image_files(self.members, self.prefix)
        if not entries:
            where = f" under {self.prefix}" if self.prefix else ""
            raise DataError(f"{self.path}: no class sub-folders of images{where}")
        for _, name in entries:
            if self.members[name][1] > MAX_MEMBER_BYTES:
                raise DataError(
                    f"{self.path}: member {name} declares {self.members[name][1]} bytes, more than "
                    f"the {MAX_MEMBER_BYTES >> 20} MiB an image file may have (a decompression bomb?)"
                )
        return [(cls, name, self.members[name][1]) for cls, name in entries]

    def key(self) -> list:
        # a stat, not a listing: listing a .tar.gz means decompressing all of it
        stat = self.path.stat()
        return [self.label, self.prefix, stat.st_size, stat.st_mtime_ns, stat.st_ino]

    def read_all(self, names):
        """(name, bytes) for each name, each read only up to the size its header declared."""
        try:
            with self._open() as archive:
                if self.zip:
                    for name in names:
                        yield name, archive.read(self.members[name][0])
                    return
                wanted = {self.members[name][0].offset: name for name in names}
                for member in archive:
                    if member.offset in wanted:
                        yield wanted[member.offset], archive.extractfile(member).read()
        except DataError:
            raise
        except (*DAMAGED_FILE_ERRORS, ValueError) as error:
            raise self._damaged(error) from None


def resize_and_center_crop(image, size: int):
    """A PIL image with its shorter side resized to `size` (bilinear) and the central
    size x size square cut out: torchvision's Resize(size) then CenterCrop(size)."""
    from PIL import Image

    width, height = image.size
    if width <= height:
        new = (size, int(size * height / width))
    else:
        new = (int(size * width / height), size)
    if new != (width, height):
        image = image.resize(new, Image.BILINEAR)
    left, top = int(round((new[0] - size) / 2.0)), int(round((new[1] - size) / 2.0))
    if new != (size, size):
        image = image.crop((left, top, left + size, top + size))
    return image


def _eight_bit(image):
    """An 'L' or 'RGB' PIL image of any mode; 16-bit grayscale scaled (0..65535 -> 0..255), not clipped."""
    from PIL import Image

    if image.mode in SIXTEEN_BIT_MODES:
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")
    return image.convert("L" if image.mode in GRAY_MODES else "RGB")


def _decoder(source_label: str, image_size: int | None):
    """decode((name, bytes)) -> (name, uint8 (H, W, 1) or (H, W, 3)); any failure is a DataError."""
    from PIL import Image

    def decode(item):
        name, data = item
        try:
            with Image.open(io.BytesIO(data)) as image:
                image = _eight_bit(image)
                if image_size:
                    image = resize_and_center_crop(image, image_size)
                pixels = np.asarray(image)
        except Image.DecompressionBombError as error:
            raise DataError(f"{source_label}/{name}: too many pixels to decode safely ({error})") from None
        except Exception as error:  # Pillow's decoders raise many types on damaged files
            raise DataError(f"{source_label}/{name}: not a readable image ({describe(error)})") from None
        return name, pixels if pixels.ndim == 3 else pixels[..., None]

    return decode


def _check_image_size(image_size):
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1
    ):
        raise ValueError(f"image_size must be a positive int (the side of the square images), got {image_size!r}")


def load_image_folder(
    root, subfolder: str | None = None, cache: bool = True, workers: int | None = None, image_size: int | None = None
):
    """Images and labels of a folder (or archive) of class sub-folders.

    Returns X uint8 (N, H, W, C), y int64 (N,) and the class names. With
    image_size=N every image becomes N x N (shorter side resized to N, then
    center-cropped), so photos of any size can be loaded together.
    """
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ImportError("reading image folders needs Pillow: pip install pillow") from None
    _check_image_size(image_size)
    root = Path(root)
    if not root.exists():
        raise DatasetNotFound(f"{root}: no such folder or archive")
    source = _Archive(root, subfolder) if is_archive(root) else _Folder(root, subfolder)
    cache_file = _cache_path(source, image_size) if cache else None
    if cache_file is not None and cache_file.exists():
        cached = _read_cache(cache_file)
        if cached is not None:
            return cached
    listing = getattr(source, "_listing", None) or source.listing()  # a folder's key has listed it
    if not listing:
        raise DataError(f"{source.label}: no class sub-folders of images found")
    classes = sorted({cls for cls, _, _ in listing})
    X, y = _decode_all(source, listing, classes, workers, image_size)
    if cache_file is not None:
        _write_cache(cache_file, X, y, classes)
    return X, y, classes


def _cache_path(source, image_size) -> Path:
    key = json.dumps([CACHE_VERSION, image_size, *source.key()]).encode()
    return data_dir() / "image-folders" / f"{hashlib.sha256(key).hexdigest()[:24]}.npz"


def _read_cache(cache_file: Path):
    """(X, y, classes) from a cache file, or None (with a warning) if it is damaged: it is then rebuilt."""
    try:
        with np.load(cache_file, allow_pickle=False) as cached:
            X, y, classes = cached["X"], cached["y"], [str(c) for c in cached["classes"]]
        if (
            X.ndim != 4
            or X.dtype != np.uint8
            or y.shape != X.shape[:1]
            or (y.size and not 0 <= y.min() <= y.max() < len(classes))
        ):
            raise ValueError(f"inconsistent arrays X {X.dtype} {X.shape}, y {y.shape}, {len(classes)} classes")
        return X, y, classes
    except Exception as error:  # a flipped bit shows up as any of zipfile's, zlib's or NumPy's errors
        warnings.warn(
            f"{cache_file}: damaged cache of decoded images ({describe(error)}); decoding the images again",
            stacklevel=3,
        )
        return None


def _write_cache(cache_file: Path, X, y, classes) -> None:
    """Keep the decoded arrays; a cache that cannot be written (read-only, full disk) only costs time."""
    try:
        write_atomically(cache_file, lambda f: np.savez(f, X=X, y=y, classes=np.array(classes)))
    except OSError as error:
        warnings.warn(f"{cache_file}: could not cache the decoded images ({error})", stacklevel=3)


def _size_error(source_label, name, size, expected) -> DataError:
    return DataError(
        f"{source_label}/{name}: image of size {size}, but the folder's images are {expected}; "
        f"pass image_size=N (--image-size N on the command line) to resize every image's shorter "
        f"side to N and center-crop it to N x N"
    )


def _decode_all(source, listing, classes, workers, image_size=None):
    """X uint8 (N, H, W, C), y int64 (N,): C is 1 if every image is grayscale, else 3."""
    index = {name: i for i, (_, name, _) in enumerate(listing)}
    label_of = {cls: i for i, cls in enumerate(classes)}
    y = np.array([label_of[cls] for cls, _, _ in listing], dtype=np.int64)
    decode = _decoder(source.label, image_size)
    X = None
    # Pillow releases the GIL while decoding: threads decode while this one reads
    with ThreadPoolExecutor(workers or min(4, os.cpu_count() or 1)) as pool:
        for name, pixels in pool.map(decode, source.read_all([name for _, name, _ in listing])):
            if X is None:
                X = np.empty((len(listing),) + pixels.shape, np.uint8)
            if pixels.shape[:2] != X.shape[1:3]:
                raise _size_error(source.label, name, pixels.shape[:2], X.shape[1:3])
            if pixels.shape[2] > X.shape[3]:  # the first colour image: earlier grayscale ones get 3 channels
                X = np.repeat(X, 3, axis=3)
            X[index[name]] = pixels  # a grayscale image in a colour folder broadcasts to R = G = B
    return X, y
