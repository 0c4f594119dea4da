"""What every part of an image project shares: the connection, the lock, ``project.json``, the path keys.

The connection and its re-entrant lock, ``project.json``'s content (``_meta``), the undo stack, and the
keys under which sample paths are stored.

The parts (samples, labels, classes, runs) are mixins over :class:`StoreBase`, each in a module of its own;
core/project.py puts them together and adds opening, schema migration and closing. See docs/adr/0021.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from labeltune.core.atomic import write_text_atomic
from labeltune.core.domain import LabelChange
from labeltune.core.errors import StorageError, UnusableInputError
from labeltune.core.file_problems import FOLDER_GONE, storage_error, storage_reason
from labeltune.core.project_store.integrity import damaged_store_error, is_damage
from labeltune.core.undo import LabelBatch, UndoStack

__all__ = [
    "LABEL_SOURCES",
    "PERSON_SOURCES",
    "PROJECT_FILE",
    "UNDO_LIMIT",
    "ImageLabelBatch",
    "ImageLabelChange",
    "LabelSource",
    "SampleRef",
    "StoreBase",
]

PROJECT_FILE = "project.json"
DB_FILE = "labeltune.sqlite"
LABEL_SOURCES = ("human", "import", "model", "accepted")
"""``accepted``: the model suggested the label and a person confirmed it (Space on the Label page)."""
PERSON_SOURCES = ("human", "accepted")
"""Sources of labels a person decided: never overwritten by an import; undoable."""
UNDO_LIMIT = 10_000
CHUNK = 500  # parameters per ``IN (...)`` query, well below SQLite's limit

LabelSource = Literal["human", "import", "model", "accepted"]
SampleRef = int | str | os.PathLike[str]
"""A sample given by database id, or by path (absolute, or relative to the project folder)."""

ImageLabelChange = LabelChange[int, str | None]
"""A label change of an image project: sample id, its file, class name (or ``None``) before and after."""

ImageLabelBatch = LabelBatch[int, str | None]
"""The undo entry of many samples labeled at once (``set_labels``, docs/adr/0039)."""


def json_default(value: Any) -> Any:
    """Let ``json.dumps`` take numpy scalars and arrays (via ``tolist``) and paths, without numpy."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def now_iso() -> str:
    """The time now, as ``project.json`` writes it (ISO 8601, UTC, to the second)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def clean_class_name(name: str) -> str:
    """A class name without surrounding blanks; raises :class:`UnusableInputError` when it is empty."""
    if not isinstance(name, str):
        raise TypeError(f"class names are strings, not {type(name).__name__}")
    cleaned = name.strip()
    if not cleaned:
        raise UnusableInputError("a class name cannot be empty")
    return cleaned


def check_source(source: str) -> None:
    """Raise ``ValueError`` unless ``source`` is one of :data:`LABEL_SOURCES`."""
    if source not in LABEL_SOURCES:
        raise ValueError(f"label source must be one of {', '.join(LABEL_SOURCES)}, not {source!r}")


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` as indented JSON, whole or not at all (core/atomic.py)."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


class StoreBase:
    """The state and plumbing the parts of a project share (see the module docstring).

    All methods are thread-safe (one connection shared under a re-entrant lock).
    """

    def __init__(self, folder: Path, meta: dict[str, Any], conn: sqlite3.Connection) -> None:
        """Wrap an open connection; call :meth:`create` or :meth:`open` instead."""
        self._folder = folder
        self._meta = meta
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._undo_stack: UndoStack[ImageLabelChange | ImageLabelBatch] = UndoStack(UNDO_LIMIT)
        folder_str = os.path.abspath(folder)
        prefixes = {folder_str, os.path.realpath(folder_str)}
        self._prefixes = [os.path.normcase(os.path.join(p, "")) for p in sorted(prefixes, key=len)]

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._conn is None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"project {self._meta['name']!r} is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """Hold the lock and a write transaction on the shared connection (see :meth:`_transaction`)."""
        with self._lock, self._transaction(self._db(), durable) as conn:
            yield conn

    @contextlib.contextmanager
    def _transaction(self, conn: sqlite3.Connection, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction on ``conn``: commit on success, roll back on error.

        ``durable``: the commit is fsynced (``synchronous=FULL``), so it survives a power cut too, not only
        a killed process; labels are written so (docs/adr/0040). A disk failure (full, read-only, the
        folder gone) raises a :class:`StorageError` naming the database, with nothing written (docs/adr/0042).
        The database file is looked for first: on a deleted folder (a pulled drive) SQLite would go on
        writing into the unlinked file, and lose it. Damage met while writing is said as at open.
        """
        db_path = self._folder / DB_FILE
        if not db_path.exists():
            raise StorageError(f"cannot save to {db_path}: {FOLDER_GONE}", errno=2)
        try:
            if durable:
                conn.execute("PRAGMA synchronous=FULL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    self._rollback(conn)
                    raise
                conn.execute("COMMIT")
            finally:
                if durable:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            self._rollback(conn)
            if isinstance(exc, sqlite3.DatabaseError) and is_damage(exc):  # keep a copy, say which file
                raise damaged_store_error(db_path, str(exc), opening=False) from exc
            if storage_reason(exc) is None:  # a constraint or SQL error: not the disk's doing
                raise
            raise storage_error(exc, db_path, "save to") from exc

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _save_meta(self, **changes: Any) -> None:
        """Write ``project.json`` with ``changes`` applied, then adopt them (call inside :meth:`_write`)."""
        new = {**self._meta, **changes}
        atomic_write_json(self._folder / PROJECT_FILE, new)
        self._meta = new

    # ------------------------------------------------------------------ metadata

    @property
    def folder(self) -> Path:
        """The project folder (absolute)."""
        return self._folder

    @property
    def name(self) -> str:
        """The project's display name."""
        return str(self._meta["name"])

    @property
    def domain(self) -> str:
        """``"image"`` or ``"xrd"``."""
        return str(self._meta["domain"])

    @property
    def created(self) -> str:
        """When the project was created (ISO 8601, UTC)."""
        return str(self._meta["created"])

    @property
    def classes(self) -> list[str]:
        """The class names in hotkey order (a copy: change them with the class methods)."""
        return list(self._meta["classes"])

    @property
    def settings(self) -> dict[str, Any]:
        """The project settings (a copy: change them with :meth:`save_settings`)."""
        return copy.deepcopy(self._meta["settings"])

    @property
    def sources(self) -> list[Path]:
        """The data roots imported so far (absolute paths)."""
        return [self._abs(s) for s in self._meta["sources"]]

    @property
    def runs_dir(self) -> Path:
        """Folder for training runs (not created here)."""
        return self._folder / "runs"

    @property
    def cache_dir(self) -> Path:
        """Folder for derived data that may be deleted (not created here)."""
        return self._folder / "cache"

    # ------------------------------------------------------------------ paths

    def _key_from_abs(self, path: str) -> str:
        """Database key of a normalised absolute path: relative to the folder when inside it; POSIX."""
        folded = os.path.normcase(path)
        for prefix in self._prefixes:
            if folded.startswith(prefix):
                path = path[len(prefix) :]
                break
        return path.replace(os.sep, "/") if os.sep != "/" else path

    def _key(self, path: str | os.PathLike[str]) -> str:
        """Database key of ``path``; a relative path is taken relative to the project folder."""
        text = os.fspath(path)
        if not os.path.isabs(text):
            text = os.path.join(self._folder, text)
        return self._key_from_abs(os.path.normpath(text))

    def _abs(self, key: str) -> Path:
        return Path(key) if os.path.isabs(key) else self._folder / key

    def stored_path(self, path: str | os.PathLike[str]) -> str:
        """Return the string under which ``path`` is (or would be) stored in the database."""
        return self._key(path)

    # ------------------------------------------------------------------ finding samples

    def _lookup(self, conn: sqlite3.Connection, ref: SampleRef) -> tuple[int, str, str | None, str | None]:
        """Return ``(id, key, label, label_source)`` of a sample or raise UnusableInputError."""
        if isinstance(ref, bool):
            raise TypeError("a sample is given by id or path, not by a bool")
        if isinstance(ref, int):
            row = conn.execute(
                "SELECT id, path, label, label_source FROM samples WHERE id = ?", (ref,)
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT id, path, label, label_source FROM samples WHERE path = ?", (self._key(ref),)
            ).fetchone()
        if row is None:
            raise UnusableInputError(f"{ref} is not a sample of project {self.name!r}")
        return row[0], row[1], row[2], row[3]

    @staticmethod
    def _rows_for_keys(
        conn: sqlite3.Connection, keys: list[str]
    ) -> dict[str, tuple[int, str | None, str | None, str | None]]:
        found: dict[str, tuple[int, str | None, str | None, str | None]] = {}
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT path, id, label, label_source, group_key FROM samples WHERE path IN ({marks})"
            for path, sample_id, label, label_source, group in conn.execute(query, chunk):
                found[path] = (sample_id, label, label_source, group)
        return found
