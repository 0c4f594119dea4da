"""Content hashes of files (the feature cache and run manifests key on them)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path


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
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS hashes "
            "(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT)"
        )
        self._pending: list[tuple[str, int, int, str]] = []

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
            self._db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)", self._pending)
            self._db.commit()
            self._pending.clear()

    def close(self) -> None:
        """Write and close."""
        self.flush()
        self._db.close()

    def __enter__(self) -> HashCache:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
