"""Writing a file so that a reader, or a crash, sees the old content or the new one, whole.

Both kinds of project write their small files (``project.json``, ``xrd_project.json``, ``labels.csv``)
this way: a temporary file in the same folder, fsynced, then ``os.replace`` over the old one.
A failure (disk full, read-only, folder gone) removes the temporary file, leaves the old file as it was
and raises a :class:`~labeltune.core.errors.StorageError` naming ``path`` (an ``OSError`` too).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from labeltune.core.errors import StorageError
from labeltune.core.file_problems import storage_error

__all__ = ["write_text_atomic"]


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, line ends as given) to ``path``, committed to disk before this returns."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        if isinstance(exc, StorageError):
            raise
        raise storage_error(exc, path) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: Path) -> None:
    """Remove a temporary file; its folder may be gone or read-only too."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
