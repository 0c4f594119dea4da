"""Content hashes of files (the feature cache and run manifests key on them)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path | str, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
