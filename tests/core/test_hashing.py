"""Content hashes, and the cache that spares re-reading unchanged files."""

from __future__ import annotations

import hashlib
import os

from labeltune.core import hashing
from labeltune.core.hashing import HashCache, file_sha256


def test_file_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "f.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # several chunks
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_hash_cache_reuses_and_notices_changes(tmp_path, monkeypatch):
    path = tmp_path / "image.png"
    path.write_bytes(b"first version")
    reads: list[str] = []
    real = hashing.file_sha256
    monkeypatch.setattr(hashing, "file_sha256", lambda p: reads.append(str(p)) or real(p))

    with HashCache(tmp_path / "hashes.sqlite") as cache:
        first = cache.sha256(path)
    with HashCache(tmp_path / "hashes.sqlite") as cache:  # a later run: no read
        assert cache.sha256(path) == first
    assert len(reads) == 1

    path.write_bytes(b"second version, longer")
    with HashCache(tmp_path / "hashes.sqlite") as cache:
        second = cache.sha256(path)
    assert second == hashlib.sha256(b"second version, longer").hexdigest() != first
    assert len(reads) == 2

    stat = path.stat()  # same size, new mtime: re-read
    path.write_bytes(b"third version, longe!")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    with HashCache(tmp_path / "hashes.sqlite") as cache:
        assert cache.sha256(path) == hashlib.sha256(b"third version, longe!").hexdigest()
    assert len(reads) == 3
