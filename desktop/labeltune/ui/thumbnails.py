"""Thumbnails made off the GUI thread: a small thread pool fed with requests for the rows on screen.

Requests are served newest first (what the user looks at now), requests for rows that scrolled away are
dropped with :meth:`ThumbnailLoader.retain`, and results come back to the GUI thread as signals.  The
core :class:`~labeltune.core.thumbnails.ThumbnailCache` does the decoding and the disk cache.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Collection

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from labeltune.core.errors import ImageDecodeError
from labeltune.core.thumbnails import ThumbnailCache

log = logging.getLogger(__name__)


def to_qimage(image: object) -> QImage:
    """Copy a PIL RGB image into a ``QImage`` (safe in any thread; the copy owns its pixels)."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    data = rgb.tobytes()
    return QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class _Relay(QObject):
    """Carries results from pool threads to the GUI thread (it lives there: queued connections)."""

    done = Signal(int, int, object, str)  # generation, key, QImage or None, error


class _Queue:
    """The shared request queue: plain Python under a lock, so pool threads never touch Qt objects."""

    def __init__(self, cache: ThumbnailCache | None, display_size: int, relay: _Relay) -> None:
        self.cache = cache
        self.display_size = display_size
        self.relay = relay
        self.lock = threading.Lock()
        self.pending: OrderedDict[int, str] = OrderedDict()
        self.in_flight: set[int] = set()
        self.runners = 0
        self.idle: list[_Runner] = []  # runners that finished, started again for the next requests
        self.generation = 0
        self.closed = False

    def take(self, runner: _Runner) -> tuple[int, int, str] | None:
        with self.lock:
            if self.closed or not self.pending:
                self.runners -= 1
                self.idle.append(runner)
                return None
            key, path = self.pending.popitem(last=True)  # newest first: the rows on screen now
            self.in_flight.add(key)
            return self.generation, key, path

    def make(self, path: str) -> tuple[QImage | None, str]:
        cache = self.cache
        if cache is None:
            return None, "no thumbnail cache"
        try:
            image = to_qimage(cache.load(path).image)
        except ImageDecodeError as error:
            return None, str(error)
        except Exception as error:  # whatever happens to one file must not stop the others
            log.exception("thumbnail of %s failed", path)
            return None, f"{type(error).__name__}: {error}"
        size = self.display_size
        if image.width() < size and image.height() < size:  # small images: enlarge to the grid size
            image = image.scaled(
                size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        # the format the raster engine draws fastest: converted once here, not at every paint
        return image.convertToFormat(QImage.Format.Format_RGB32), ""


class _Runner(QRunnable):
    """Takes requests from the queue until it is empty; then waits in ``queue.idle`` to be started again.

    Runners are reused, never auto-deleted: PySide6 6.12's ``QThreadPool`` keeps the Python object of
    every runnable it started, so a new runner per burst of requests leaked one object each time (a
    100 000-image scroll: thousands; docs/adr/0044).
    """

    def __init__(self, queue: _Queue) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self._queue = queue

    def run(self) -> None:
        """Serve requests (runs in a pool thread)."""
        queue = self._queue
        while (job := queue.take(self)) is not None:
            generation, key, path = job
            image, error = queue.make(path)
            try:
                queue.relay.done.emit(generation, key, image, error)
            except RuntimeError:  # the loader was deleted while we worked
                return


class ThumbnailLoader(QObject):
    """Makes thumbnails in background threads; ``loaded``/``failed`` arrive in the GUI thread.

    Keys are caller-chosen ints (sample ids).  A key is served once per request; ask again to reload.
    """

    loaded = Signal(int, QImage)  # key, thumbnail
    failed = Signal(int, str)  # key, readable reason

    def __init__(
        self,
        cache: ThumbnailCache | None = None,
        threads: int = 2,
        display_size: int = 0,
        parent: QObject | None = None,
    ) -> None:
        """Serve ``cache``'s thumbnails with ``threads`` threads; enlarge small ones to ``display_size``."""
        super().__init__(parent)
        self._pool = QThreadPool(self)  # first child, so destroyed (waiting for its threads) first
        self._pool.setMaxThreadCount(max(1, threads))
        self._pool.setExpiryTimeout(5000)
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_relay_done, Qt.ConnectionType.QueuedConnection)
        self._queue = _Queue(cache, display_size or (cache.size if cache else 128), self._relay)

    @property
    def cache(self) -> ThumbnailCache | None:
        """The disk cache in use (``None``: requests are ignored)."""
        return self._queue.cache

    def set_cache(self, cache: ThumbnailCache | None, display_size: int = 0) -> None:
        """Use another cache (another project was opened); waiting requests are dropped."""
        self.clear()
        with self._queue.lock:
            self._queue.cache = cache
            if display_size or cache is not None:
                self._queue.display_size = display_size or (cache.size if cache else 128)

    def request(self, key: int, path: str) -> None:
        """Ask for the thumbnail of ``path`` (no disk access here); newer requests are served first."""
        queue = self._queue
        with queue.lock:
            if queue.closed or queue.cache is None or key in queue.in_flight:
                return
            if key in queue.pending:
                queue.pending.move_to_end(key)
                return
            queue.pending[key] = path
            if queue.runners >= self._pool.maxThreadCount():
                return
            queue.runners += 1
            runner = queue.idle.pop() if queue.idle else _Runner(queue)
        self._pool.start(runner)

    def retain(self, keys: Collection[int]) -> None:
        """Drop waiting requests whose key is not in ``keys`` (rows that scrolled out of view)."""
        queue = self._queue
        with queue.lock:
            for key in [k for k in queue.pending if k not in keys]:
                del queue.pending[key]

    def set_thread_count(self, threads: int) -> None:
        """Use at most ``threads`` threads (more threads: faster thumbnails, a busier GUI thread)."""
        self._pool.setMaxThreadCount(max(1, threads))

    def pending_count(self) -> int:
        """How many requests wait (not counting those being made)."""
        with self._queue.lock:
            return len(self._queue.pending)

    def clear(self) -> None:
        """Drop every waiting request and ignore results still being made (another project opened)."""
        queue = self._queue
        with queue.lock:
            queue.pending.clear()
            queue.in_flight.clear()
            queue.generation += 1

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Stop serving requests and wait for the threads (before the window closes)."""
        with self._queue.lock:
            self._queue.closed = True
            self._queue.pending.clear()
        self._pool.waitForDone(timeout_ms)

    @Slot(int, int, object, str)
    def _on_relay_done(self, generation: int, key: int, image: object, error: str) -> None:
        queue = self._queue
        with queue.lock:
            if generation != queue.generation:
                return
            queue.in_flight.discard(key)
        if isinstance(image, QImage):
            self.loaded.emit(key, image)
        else:
            self.failed.emit(key, error or "cannot make a thumbnail")
