"""Content hashes of files (the feature cache and run manifests key on them)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
from pathlib import Path

from labeltune.core.file_problems import storage_reason

log = logging.getLogger(__name__)


def file_sha256(path: Path | str, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class HashCache:
    """Remembers file hashes by (path, size, mtime) in a small SQLite file: unchanged files are not re-read.

    A re-run over 10 000 camera photos would otherwise read every byte again before it could use any
    cached feature.
    """

    def __init__(self, path: Path) -> None:
        """Use the cache file ``path``; if it cannot be written (ADR 0042), an in-memory cache."""
        self.path = path
        self._lock = threading.Lock()
        self._pending: list[tuple[str, int, int, str]] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open(path)
        except (OSError, sqlite3.Error) as exc:  # a cache only saves time: go on without its file
            if isinstance(exc, sqlite3.Error) and storage_reason(exc, path) is None:
                raise
            log.warning("hash cache %s cannot be used (%s): files are hashed again next time", path, exc)
            self._db = self._open(":memory:")

    @staticmethod
    def _open(where: Path | str) -> sqlite3.Connection:
        db = sqlite3.connect(where, check_same_thread=False, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS hashes "
                "(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT)"
            )
        except BaseException:
            db.close()
            raise
        return db

    def sha256(self, path: Path) -> str:
        """The file's sha256, from the cache when its size and mtime are unchanged."""
        key = str(Path(path).resolve())
        stat = os.stat(key)
        with self._lock:
            row = self._db.execute(
                "SELECT size, mtime_ns, sha256 FROM hashes WHERE path = ?", (key,)
            ).fetchone()
        if row is not None and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
            return str(row[2])
        digest = file_sha256(key)
        self._pending.append((key, stat.st_size, stat.st_mtime_ns, digest))
        if len(self._pending) >= 500:
            self.flush()
        return digest

    def flush(self) -> None:
        """Write remembered hashes."""
        with self._lock:
            try:
                self._db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)", self._pending)
                self._db.commit()
            except sqlite3.Error as exc:  # full or read-only: the hashes are computed again next time
                if storage_reason(exc, self.path) is None:
                    raise
                with contextlib.suppress(sqlite3.Error):
                    self._db.rollback()
                log.warning("cannot write the hash cache %s (%s)", self.path, storage_reason(exc, self.path))
            self._pending.clear()

    def close(self) -> None:
        """Write and close."""
        self.flush()
        self._db.close()

    def __enter__(self) -> HashCache:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
