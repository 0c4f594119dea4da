"""Writing a file so that a reader, or a crash, sees the old content or the new one, whole.

Both kinds of project write their small files (``project.json``, ``xrd_project.json``, ``labels.csv``)
this way: a temporary file in the same folder, fsynced, then ``os.replace`` over the old one.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

__all__ = ["STALE_AFTER", "remove_stale_temporaries", "write_text_atomic"]

STALE_AFTER = 600.0
"""Seconds after which a temporary file is a killed writer's leftover, not another process's write."""


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, line ends as given) to ``path``, committed to disk before this returns."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(path: Path, older_than: float = STALE_AFTER) -> None:
    """Remove the temporary files a killed :func:`write_text_atomic` of ``path`` left (never raises)."""
    limit = time.time() - older_than
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < limit:
                stale.unlink()
