"""Writing a file so that a reader, or a crash, sees the old content or the new one, whole.

Both kinds of project write their small files (``project.json``, ``xrd_project.json``, ``labels.csv``)
this way: a temporary file in the same folder, fsynced, then ``os.replace`` over the old one. A run
folder's files (``config.json``, ``history.csv``, ``metrics.json``, ``checkpoint.pt``,
``model.safetensors``) too, so that a run killed while it writes (kill -9, power cut) is left whole
and resumable (docs/adr/0041-training-survives-kill-and-oom.md).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_target", "write_text_atomic"]


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


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path for a writer that wants a file name (``torch.save``, safetensors' ``save_file``).

    What the block writes there is fsynced and renamed over ``path`` when the block ends; if it fails,
    the temporary file is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
