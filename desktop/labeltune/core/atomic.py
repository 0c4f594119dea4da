"""Writing a file so that a reader, or a crash, sees the old content or the new one, whole.

Both kinds of project write their small files (``project.json``, ``xrd_project.json``, ``labels.csv``)
this way: a temporary file in the same folder, fsynced, then ``os.replace`` over the old one; a run's files
(``history.csv``, ``checkpoint.pt``, ``model.safetensors``, ``config.json``) too, through
:func:`write_atomic`, which takes the library writer (``torch.save``, safetensors' ``save_file``).
A failure (disk full, read-only, folder gone) removes the temporary file, leaves the old file as it was
and raises a :class:`~labeltune.core.errors.StorageError` naming ``path`` (an ``OSError`` too; ADR 0042).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from labeltune.core.errors import StorageError
from labeltune.core.file_problems import library_write_error, storage_error

__all__ = ["STALE_AFTER", "remove_stale_temporaries", "write_atomic", "write_text_atomic"]

STALE_AFTER = 600.0
"""Seconds after which a temporary file is a killed writer's leftover, not another process's write."""


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, line ends as given) to ``path``, committed to disk before this returns."""

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    write_atomic(path, write)


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Let ``write(tmp)`` write the whole file to a temporary sibling of ``path``, then put it in place.

    The writer's own errors for a disk that refuses (torch's ``RuntimeError``, safetensors' error) become
    a :class:`StorageError` too, when they say so (:func:`~labeltune.core.file_problems.library_write_error`).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:  # on disk before the rename: a power cut leaves the old file or the new
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        if isinstance(exc, StorageError):
            raise
        raise storage_error(exc, path) from exc
    except Exception as exc:
        _remove_quietly(tmp)
        error = library_write_error(exc, path)
        if error is None:
            raise
        raise error from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


def remove_stale_temporaries(path: Path, older_than: float = STALE_AFTER) -> None:
    """Remove the temporary files a killed :func:`write_text_atomic` of ``path`` left (never raises)."""
    limit = time.time() - older_than
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < limit:
                stale.unlink()


def _remove_quietly(path: Path) -> None:
    """Remove a temporary file; its folder may be gone or read-only too."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
