"""A new folder built out of sight: written into a temporary sibling, renamed into place when complete.

A failure or a stop part-way leaves nothing behind — no half-written project that looks like a real one.
Used by every writer of a ready-made project folder (the shipped demos, image and XRD alike).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from labeltune.core.errors import UnusableInputError

__all__ = ["build_folder", "check_empty_target", "make_staging"]


def check_empty_target(folder: Path) -> None:
    """Raise :class:`UnusableInputError` unless ``folder`` is missing or an empty folder."""
    if folder.exists() and not folder.is_dir():
        raise UnusableInputError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise UnusableInputError(f"{folder} exists and is not empty; choose another folder")


def make_staging(target: Path) -> Path:
    """An empty, uniquely named sibling of ``target`` with the usual permissions (mkdtemp's are 0700)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        staging = target.parent / f".{target.name}.{secrets.token_hex(4)}.partial"
        try:
            staging.mkdir()
        except FileExistsError:
            continue
        return staging


def build_folder(
    target: str | os.PathLike[str], build: Callable[[Path], None], what: str = "the demo"
) -> Path:
    """Make ``target`` (missing or empty) by ``build(staging)``, then rename; return its absolute path.

    ``build`` writes everything into the empty staging folder it is given; whatever it raises (a
    :class:`~labeltune.core.progress.StoppedError` on Stop included) removes the staging folder and goes
    on up, an ``OSError`` worded as ``cannot write <what> to <target>``.
    """
    folder = Path(os.path.abspath(target))
    check_empty_target(folder)
    try:
        staging = make_staging(folder)
    except OSError as exc:
        raise UnusableInputError(f"cannot write {what} to {folder}: {exc}") from exc
    try:
        build(staging)
        if folder.is_dir():  # empty (checked above): a rename replaces it on POSIX, not on Windows
            folder.rmdir()
        os.replace(staging, folder)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnusableInputError(f"cannot write {what} to {folder}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
