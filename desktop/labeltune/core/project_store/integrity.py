"""A damaged label store is found when the project opens, never written to, and a good copy is kept.

At open, ``PRAGMA quick_check`` (cheap: it reads every page once, without cross-checking indexes) runs
before anything else; a database that fails it, or that SQLite cannot read at all (truncated, not a
database), is refused with :class:`DamagedStoreError`: one line naming the file and the reason, where a
copy of the damaged file was put aside (``labeltune.sqlite.corrupt-<time>``) and where the last good
backup is.  A store that passes is copied with SQLite's online backup API to ``labeltune.backup.sqlite``
(temporary file + rename, so a kill during the copy leaves the previous backup whole).  See docs/adr/0040.
"""

from __future__ import annotations

import contextlib
import filecmp
import logging
import os
import shutil
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path

from labeltune.core.atomic import remove_stale_temporaries
from labeltune.core.errors import UnusableInputError

__all__ = [
    "BACKUP_SUFFIX",
    "CORRUPT_SUFFIX",
    "DamagedStoreError",
    "backup_path",
    "check_reason",
    "check_store",
    "damaged_store_error",
    "is_damage",
    "missing_store_error",
    "refresh_backup",
]

log = logging.getLogger(__name__)

CORRUPT_SUFFIX = ".corrupt-"
BACKUP_SUFFIX = ".backup.sqlite"
_DAMAGE_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB


class DamagedStoreError(UnusableInputError):
    """A project's database is damaged; the message names it, the copy put aside and the backup."""


def backup_path(db_path: Path) -> Path:
    """Where the good copy of ``db_path`` is kept (``labeltune.sqlite``: ``labeltune.backup.sqlite``)."""
    return db_path.with_name(db_path.stem + BACKUP_SUFFIX)


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether SQLite's error says the file is damaged or no database (not locked, missing or denied)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _DAMAGE_CODES
    text = str(exc)
    return "malformed" in text or "not a database" in text


def check_store(conn: sqlite3.Connection, db_path: Path) -> None:
    """Run ``PRAGMA quick_check``; raise :class:`DamagedStoreError` (after keeping a copy) unless ``ok``."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise UnusableInputError(f"cannot read {db_path}: {exc}") from exc
        raise damaged_store_error(db_path, str(exc)) from exc
    if rows != [("ok",)]:
        raise damaged_store_error(db_path, check_reason(rows))


def check_reason(rows: list[tuple[object, ...]]) -> str:
    """SQLite's ``quick_check`` answer as one short reason: its first problem and how many more.

    A damaged page gives dozens of problems, one row or one line of a row each (seen: 80 lines in one
    row); all of them made the app's message taller than the screen, hiding the backup and the button.
    """
    problems = [
        " ".join(line.split())
        for row in rows
        for line in str(row[0]).replace("*** in database main ***", "").splitlines()
        if line.strip()
    ]
    if not problems:
        return "no answer from SQLite's check"
    more = len(problems) - 1
    return problems[0] + (f", and {more} more problem{'s' if more != 1 else ''}" if more else "")


def damaged_store_error(db_path: Path, reason: str, opening: bool = True) -> DamagedStoreError:
    """The error for a damaged ``db_path``, after copying it (and its WAL) aside; never raises OSError.

    ``opening``: found at open (the project is not opened), else while writing (the change was not made).
    """
    log.info("%s is damaged: %s", db_path, reason)  # the error says it; the CLI prints one line
    outcome = "LabelTune does not open it" if opening else "the change was not saved; close the project"
    parts = [f"{db_path} is damaged ({reason}); {outcome}"]
    kept = _keep_damaged_copy(db_path)
    if kept is not None:
        parts.append(f"a copy of it is in {kept}")
    backup = backup_path(db_path)
    if backup.is_file():
        parts.append(
            f"the last good backup ({_mtime(backup)}) is {backup}: to go back to it, close LabelTune, delete "
            f"{db_path.name}-wal and {db_path.name}-shm if present and copy the backup over {db_path.name} "
            "(labels made since the backup are lost)"
        )
    else:
        parts.append("there is no backup of it (one is made each time the project opens)")
    return DamagedStoreError("; ".join(parts))


def missing_store_error(db_path: Path) -> DamagedStoreError | None:
    """The error for a missing ``db_path`` whose backup exists (``None``: no backup, start empty).

    Starting an empty store would hide the labels, and the next open would back the empty one up.
    """
    backup = backup_path(db_path)
    if not backup.is_file():
        return None
    return DamagedStoreError(
        f"{db_path} is missing (moved or deleted?), but a backup of it is here: {backup} "
        f"({_mtime(backup)}); to get the labels back, copy it to {db_path.name}; to start the project "
        "with no samples, delete the backup"
    )


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")


def _keep_damaged_copy(db_path: Path) -> Path | None:
    """Copy the damaged file (and its WAL) to ``<name>.corrupt-<UTC time>``; reuse an identical copy."""
    if not db_path.is_file():
        return None
    for earlier in sorted(db_path.parent.glob(db_path.name + CORRUPT_SUFFIX + "*")):
        with contextlib.suppress(OSError):
            if filecmp.cmp(earlier, db_path, shallow=False):
                return earlier  # opened again: one copy is enough
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = db_path.with_name(db_path.name + CORRUPT_SUFFIX + stamp)
    try:
        shutil.copy2(db_path, target)
        wal = db_path.with_name(db_path.name + "-wal")
        if wal.is_file() and wal.stat().st_size:  # an empty WAL holds nothing to keep
            shutil.copy2(wal, wal.with_name(wal.name + CORRUPT_SUFFIX + stamp))
    except OSError as exc:
        log.warning("cannot copy the damaged %s aside: %s", db_path, exc)
        return None
    return target


def refresh_backup(conn: sqlite3.Connection, db_path: Path) -> None:
    """Copy the (checked) store to :func:`backup_path` unless the backup is newer than every change.

    A failure is logged, never raised: the project opens without a fresh backup.
    """
    backup = backup_path(db_path)
    remove_stale_temporaries(backup)  # left by a kill during a copy (a young one: another process's)
    try:
        files = [db_path, db_path.with_name(db_path.name + "-wal")]  # an empty WAL: made by this open
        newest = max((s.st_mtime for s in (p.stat() for p in files if p.exists()) if s.st_size), default=0.0)
        if backup.is_file() and backup.stat().st_mtime > newest:
            return
    except OSError:
        pass
    tmp = backup.with_name(f".{backup.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        target = sqlite3.connect(tmp)
        try:
            conn.backup(target)
        finally:
            target.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, backup)
    except (OSError, sqlite3.Error) as exc:
        log.warning("cannot back up %s to %s: %s", db_path, backup, exc)
        tmp.unlink(missing_ok=True)
