"""Thumbnails: small previews of images, made once and kept in an on-disk cache.

A thumbnail is the upright RGB image (see :func:`labeltune.core.imaging.decode_rgb`, which decodes big
JPEGs in draft mode) shrunk to fit a ``size`` x ``size`` square, aspect ratio kept, never enlarged.
It is stored as a JPEG under ``<cache folder>/<key[:2]>/<key>.jpg``; the key is a hash of the file's
absolute path, byte size, modification time and the thumbnail size, so an edited or replaced image gets
a new thumbnail and old entries are merely left behind (the cache folder may be deleted at any time).
Files are written through a temporary file and ``os.replace``, so several threads or processes may fill
the same cache.

The cache has a size limit (``max_bytes``, the ``thumbnail_cache_mb`` setting) on the disk space its files
take (whole blocks: a 5 KB thumbnail takes 8 KB): when it is passed, the least recently used thumbnails are
deleted until the cache is down to 80 % of it (docs/adr/0044).
"Recently used" is the entry's modification time, which a cache hit refreshes (access times are not
kept by ``noatime``/``relatime`` mounts nor by Windows). The folder is walked only when needed: once to
count it, then when the bytes this object wrote since would pass the limit, or after 256 writes or half
as many writes as the cache held (another process may fill it too) -- never once per thumbnail, and a
list of the entries is made only to prune.

Qt-free: the GUI wraps :meth:`ThumbnailCache.load` in worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from labeltune.core.errors import ImageDecodeError
from labeltune.core.file_problems import os_error_reason
from labeltune.core.imaging import decode_rgb

__all__ = ["DEFAULT_MAX_BYTES", "THUMBNAIL_FORMAT_VERSION", "Thumbnail", "ThumbnailCache"]

log = logging.getLogger(__name__)

#: Part of every cache key: change it when thumbnails are made differently.
THUMBNAIL_FORMAT_VERSION = 1
_JPEG_QUALITY = 85
#: The disk cache's size limit unless the caller gives one (the ``thumbnail_cache_mb`` setting).
DEFAULT_MAX_BYTES = 500 * 2**20
_CHECK_EVERY = 256  # writes between two counts of the folder (other processes write to it too)
_PRUNE_TO = 0.8  # a prune leaves this share of the limit, so the next one is many writes away
_STALE_TMP_S = 3600.0  # a temporary file this old was left by a crashed writer
_BLOCK = 4096  # a file takes whole blocks of the disk: a 5 KB thumbnail uses 8 KB


def _disk_usage(stat: os.stat_result) -> int:
    """Bytes a file takes on the disk (its blocks where the system says; else its size in whole blocks)."""
    blocks = getattr(stat, "st_blocks", None)
    if blocks:
        return int(blocks) * 512
    return -(-stat.st_size // _BLOCK) * _BLOCK


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail (RGB, at most ``size`` on its longer side) and whether it came from the disk cache."""

    image: Image.Image
    cached: bool


class ThumbnailCache:
    """Makes thumbnails of one size and keeps them as JPEG files in ``folder``."""

    def __init__(
        self, folder: str | os.PathLike[str], size: int = 128, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        """Use ``folder`` (created when the first thumbnail is written) for thumbnails of ``size`` px.

        ``max_bytes`` bounds the folder (0: no limit); least recently used thumbnails go first.
        """
        if size < 8:
            raise ValueError(f"thumbnail size must be at least 8 px, not {size!r}")
        self.folder = Path(folder)
        self.size = int(size)
        self.max_bytes = max(0, int(max_bytes))
        self._warned = False  # a read-only cache is reported once, not for each of 100 000 images
        self._lock = threading.Lock()  # pool threads share this object
        self._pruning = threading.Lock()  # one walk at a time; the other threads go on making thumbnails
        self._counted: int | None = None  # bytes in the folder when last counted, plus those written since
        self._writes = 0  # thumbnails written since the last count
        self._entries = 0  # thumbnails at the last count
        self._stuck = False  # the last prune could not get under the limit: wait for the next count

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
            with contextlib.suppress(
                OSError
            ):  # used now: the last to be pruned (a read-only cache: no matter)
                os.utime(entry)
            return Thumbnail(cached, cached=True)
        image = self.make(image_path)
        try:
            written = self._write_entry(entry, image)
        except OSError as exc:  # read-only or full disk: thumbnails still work, only slower
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(level, "cannot write thumbnail cache file %s: %s", entry, exc)
        else:
            self._after_write(written)
        return Thumbnail(image, cached=False)

    # -- size limit ---------------------------------------------------------------------------------
    def _after_write(self, written: int) -> None:
        """Count a written entry; prune when the cache may have passed its limit or a count is due."""
        if not self.max_bytes:
            return
        with self._lock:
            self._writes += 1
            if self._counted is not None:
                self._counted += -(-written // _BLOCK) * _BLOCK  # whole blocks, as the walk counts
            due = (
                self._counted is None
                or self._writes >= max(_CHECK_EVERY, self._entries // 2)  # a walk's cost, spread out
                or (self._counted > self.max_bytes and not self._stuck)
            )
        if due:
            self.prune()

    def prune(self) -> int:
        """Delete the least recently used thumbnails until the cache is at 80 % of its limit if it passed it.

        Also removes temporary files left by crashed writers. Returns the bytes left in the cache. Cheap
        to skip: if another thread is pruning, returns at once with the last count.
        """
        if not self._pruning.acquire(blocking=False):
            with self._lock:
                return self._counted or 0
        try:
            total, count = self._scan()  # counting only: no list of 100 000 entries kept for nothing
            if self.max_bytes and total > self.max_bytes:
                entries: list[tuple[int, int, str]] = []
                total, count = self._scan(entries)
                total, deleted = self._delete_oldest(entries, total, int(self.max_bytes * _PRUNE_TO))
                count -= deleted
                del entries
            with self._lock:
                self._counted, self._entries, self._writes = total, count, 0
                self._stuck = bool(self.max_bytes) and total > self.max_bytes
            return total
        finally:
            self._pruning.release()

    def disk_bytes(self) -> int:
        """Disk space the cache's files take now (a walk of the folder): what the limit bounds."""
        return self._scan()[0]

    def _scan(self, entries: list[tuple[int, int, str]] | None = None) -> tuple[int, int]:
        """Disk space and number of the entries; stale temporary files go.

        ``entries``, when given, receives ``(modified ns, bytes, path)`` of every entry (to prune).
        """
        total = count = 0
        stale_before = time.time() - _STALE_TMP_S
        try:
            shards = [d.path for d in os.scandir(self.folder) if len(d.name) == 2 and d.is_dir()]
        except OSError:  # not made yet, or gone
            return 0, 0
        for shard in shards:
            try:
                with os.scandir(shard) as found:
                    for item in found:
                        try:
                            stat = item.stat(follow_symlinks=False)
                        except OSError:  # deleted meanwhile by another process
                            continue
                        if item.name.endswith(".tmp"):
                            if stat.st_mtime < stale_before:
                                with contextlib.suppress(OSError):
                                    os.unlink(item.path)
                                continue
                        elif not item.name.endswith(".jpg"):
                            continue
                        used = _disk_usage(stat)
                        if entries is not None:
                            entries.append((stat.st_mtime_ns, used, item.path))
                        total += used
                        count += 1
            except OSError:
                continue
        return total, count

    def _delete_oldest(self, entries: list[tuple[int, int, str]], total: int, target: int) -> tuple[int, int]:
        """Delete entries, least recently used first, until ``total`` is at most ``target``.

        Returns the new total and how many were deleted.
        """
        entries.sort()
        deleted = 0
        for _mtime, size, path in entries:
            if total <= target:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:  # another process pruned it
                pass
            except OSError as exc:  # a read-only cache cannot shrink; say so once
                level = logging.DEBUG if self._warned else logging.WARNING
                self._warned = True
                log.log(level, "cannot prune thumbnail cache file %s: %s", path, exc)
                break
            total -= size
            deleted += 1
        log.debug("pruned %d thumbnails from %s: %d bytes left", deleted, self.folder, total)
        return total, deleted

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
    def _write_entry(entry: Path, image: Image.Image) -> int:
        """Write ``entry`` atomically; return its size in bytes."""
        tmp = ""
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=entry.stem, suffix=".tmp", dir=entry.parent)
            with os.fdopen(fd, "wb") as handle:
                image.save(handle, format="JPEG", quality=_JPEG_QUALITY)
                written = handle.tell()
            os.replace(tmp, entry)
            return written
        except OSError:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
