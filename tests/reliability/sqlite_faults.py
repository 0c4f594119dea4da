"""Real SQLite faults on an open connection (issue 13, docs/adr/0042).

SQLite writes through its own C code, which no Python monkeypatch reaches, so each fault is made real:

- disk full: the connection's writing statements raise SQLite's own SQLITE_FULL error ("database or disk
  is full", ``sqlite_errorcode`` 13); ``PRAGMA max_page_count`` would not do, as a label row fits in the
  free space of a page the database already has;
- read-only: ``PRAGMA query_only`` (SQLITE_READONLY, "attempt to write a readonly database");
- permission denied: an authorizer that refuses every write (SQLITE_AUTH, "not authorized");
- folder gone: the project folder really deleted (``shutil.rmtree``; SQLite itself would go on writing
  into the unlinked file, which is what the store must notice).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_WRITES = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}


def _deny_writes(action: int, *_: Any) -> int:
    return sqlite3.SQLITE_DENY if action in _WRITES else sqlite3.SQLITE_OK


class FullDisk:
    """A connection whose writing statements fail with SQLITE_FULL; everything else is the real one."""

    _VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _check(self, sql: str) -> None:
        if sql.lstrip().upper().startswith(self._VERBS):
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = 13  # type: ignore[attr-defined]
            error.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
            raise error

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self._conn.executemany(sql, *args)

    def executescript(self, sql: str) -> sqlite3.Cursor:
        self._check(sql)
        return self._conn.executescript(sql)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def arm(conn: sqlite3.Connection, code: int, folder: Path) -> Any:
    """Make writes on ``conn`` (a database in ``folder``) fail as errno ``code`` would; use the result."""
    if code == 28:  # ENOSPC
        return FullDisk(conn)
    if code == 30:  # EROFS
        conn.execute("PRAGMA query_only = 1")
    elif code == 13:  # EACCES
        conn.set_authorizer(_deny_writes)
    elif code == 2:  # ENOENT; the app's thumbnail loader may still be writing into the folder's cache
        for _ in range(100):
            shutil.rmtree(folder, ignore_errors=True)
            if not (folder / "labeltune.sqlite").exists():
                break
    else:
        raise ValueError(f"no SQLite fault for errno {code}")
    return conn


@contextlib.contextmanager
def on_connect(code: int, db_file: Path) -> Iterator[list[Any]]:
    """Arm the fault on every connection opened to ``db_file`` while the ``with`` block runs."""
    real = sqlite3.connect
    armed: list[Any] = []
    target = db_file.resolve()

    def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
        conn = real(database, *args, **kwargs)
        if Path(str(database)).resolve() == target:
            armed.append(arm(conn, code, db_file.parent))
            return armed[-1]
        return conn

    sqlite3.connect = connect  # type: ignore[assignment]
    try:
        yield armed
    finally:
        sqlite3.connect = real  # type: ignore[assignment]
