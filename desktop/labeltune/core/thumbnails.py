"""Thumbnails: small previews of images, made once and kept in an on-disk cache.

A thumbnail is the upright RGB image (see :func:`labeltune.core.imaging.decode_rgb`, which decodes big
JPEGs in draft mode) shrunk to fit a ``size`` x ``size`` square, aspect ratio kept, never enlarged.
It is stored as a JPEG under ``<cache folder>/<key[:2]>/<key>.jpg``; the key is a hash of the file's
absolute path, byte size, modification time and the thumbnail size, so an edited or replaced image gets
a new thumbnail and old entries are merely left behind (the cache folder may be deleted at any time).
Files are written through a temporary file and ``os.replace``, so several threads or processes may fill
the same cache.

Qt-free: the GUI wraps :meth:`ThumbnailCache.load` in worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from labeltune.core.errors import ImageDecodeError
from labeltune.core.file_problems import os_error_reason
from labeltune.core.imaging import decode_rgb

__all__ = ["THUMBNAIL_FORMAT_VERSION", "Thumbnail", "ThumbnailCache"]

log = logging.getLogger(__name__)

#: Part of every cache key: change it when thumbnails are made differently.
THUMBNAIL_FORMAT_VERSION = 1
_JPEG_QUALITY = 85


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail (RGB, at most ``size`` on its longer side) and whether it came from the disk cache."""

    image: Image.Image
    cached: bool


class ThumbnailCache:
    """Makes thumbnails of one size and keeps them as JPEG files in ``folder``."""

    def __init__(self, folder: str | os.PathLike[str], size: int = 128) -> None:
        """Use ``folder`` (created when the first thumbnail is written) for thumbnails of ``size`` px."""
        if size < 8:
            raise ValueError(f"thumbnail size must be at least 8 px, not {size!r}")
        self.folder = Path(folder)
        self.size = int(size)
        self._warned = False  # a read-only cache is reported once, not for each of 100 000 images

    def key(self, image_path: str | os.PathLike[str], stat: os.stat_result) -> str:
        """Cache key of an image: its absolute path, byte size, mtime and this cache's thumbnail size."""
        text = "\0".join(
            (
                f"v{THUMBNAIL_FORMAT_VERSION}",
                os.path.abspath(image_path),
                str(stat.st_size),
                str(stat.st_mtime_ns),
                str(self.size),
            )
        )
        return hashlib.sha1(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()

    def entry_path(self, image_path: str | os.PathLike[str]) -> Path:
        """Where the thumbnail of ``image_path`` is (or will be) stored; raises if the image is missing."""
        return self._entry(self.key(image_path, self._stat(image_path)))

    def _entry(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.jpg"

    @staticmethod
    def _stat(image_path: str | os.PathLike[str]) -> os.stat_result:
        try:
            return os.stat(image_path)
        except OSError as exc:
            raise ImageDecodeError(os_error_reason(exc)) from None

    def load(self, image_path: str | os.PathLike[str]) -> Thumbnail:
        """Return the thumbnail of ``image_path``, from the cache or freshly made (and then cached).

        Raises :class:`ImageDecodeError` (with a readable reason) if the image cannot be read.  A
        damaged cache entry is remade; a cache that cannot be written only costs speed.
        """
        entry = self._entry(self.key(image_path, self._stat(image_path)))
        cached = self._read_entry(entry)
        if cached is not None:
            return Thumbnail(cached, cached=True)
        image = self.make(image_path)
        try:
            self._write_entry(entry, image)
        except OSError as exc:  # read-only or full disk: thumbnails still work, only slower
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(level, "cannot write thumbnail cache file %s: %s", entry, exc)
        return Thumbnail(image, cached=False)

    def make(self, image_path: str | os.PathLike[str]) -> Image.Image:
        """Decode ``image_path`` and shrink it to fit the thumbnail size (no cache involved)."""
        image = decode_rgb(os.fspath(image_path), self.size)
        if max(image.size) > self.size:
            image.thumbnail((self.size, self.size), Image.Resampling.LANCZOS, reducing_gap=2.0)
        return image

    @staticmethod
    def _read_entry(entry: Path) -> Image.Image | None:
        try:
            with Image.open(entry, formats=("JPEG",)) as stored:
                stored.load()
                return stored.convert("RGB")
        except (FileNotFoundError, NotADirectoryError):  # not made yet
            return None
        except Exception as exc:  # damaged or half-written by a crashed process: make it again
            log.debug("remaking damaged thumbnail %s: %s", entry, exc)
            return None

    @staticmethod
    def _write_entry(entry: Path, image: Image.Image) -> None:
        tmp = ""
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=entry.stem, suffix=".tmp", dir=entry.parent)
            with os.fdopen(fd, "wb") as handle:
                image.save(handle, format="JPEG", quality=_JPEG_QUALITY)
            os.replace(tmp, entry)
        except OSError:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
