"""Project store: a folder holding ``project.json`` (metadata) and ``labeltune.sqlite`` (samples and labels).

Layout of a project folder::

    project.json        schema_version, name, domain, classes, sources, settings, created
    labeltune.sqlite    samples, labels (append-only history), runs, predictions; WAL journal
    runs/               one folder per training run (``Project.runs_dir``)
    cache/              derived data that may be deleted at any time (``Project.cache_dir``)

Labels are never overwritten: every change appends a row to ``labels`` and a sample's current label is
its latest row.  A trigger copies that latest value into ``samples.label`` / ``samples.label_source`` so
counting and filtering 100 000 samples is a single indexed query.  Every write commits at once, so a
label survives a crash of the application.

Sample paths are stored relative to the project folder (POSIX separators) when the file lies inside
it, so a project that carries its images can be moved; other files are stored by absolute path.

Thread safety: one ``sqlite3`` connection per project, opened with ``check_same_thread=False``; every
method takes the project's re-entrant lock, so a :class:`Project` may be shared by the GUI thread and
worker threads.  Hashing files (:meth:`Project.sha256_for`) reads the file outside the lock.  Two
processes may open the same project (SQLite serialises their writes), but ``project.json`` (classes,
settings) is only re-read by :meth:`Project.open`, so only one process should change classes at a time.

Where each part lives (docs/adr/0021): this module opens, migrates and closes a project; the parts of
:class:`Project` are mixins in ``core/project_store/`` — ``base`` (connection, lock, ``project.json``,
path keys), ``schema`` (tables and migration steps), ``samples``, ``labels`` (history and undo),
``classes`` and ``runs`` (runs and predictions).

This module imports only the standard library at module level (no Qt, torch or numpy).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from labeltune.core.atomic import remove_stale_temporaries
from labeltune.core.domain import DOMAINS, LabelChange, LabelEvent
from labeltune.core.errors import LabelTuneError, UnusableInputError
from labeltune.core.file_problems import storage_error, storage_reason
from labeltune.core.hashing import file_sha256
from labeltune.core.project_store.base import (
    DB_FILE,
    LABEL_SOURCES,
    PROJECT_FILE,
    LabelSource,
    SampleRef,
    atomic_write_json,
    clean_class_name,
    json_default,
    now_iso,
)
from labeltune.core.project_store.classes import ClassesMixin
from labeltune.core.project_store.integrity import (
    check_store,
    damaged_store_error,
    is_damage,
    missing_store_error,
    refresh_backup,
)
from labeltune.core.project_store.labels import LabelsMixin
from labeltune.core.project_store.runs import Prediction, RunsMixin
from labeltune.core.project_store.samples import SamplesMixin
from labeltune.core.project_store.schema import MIGRATIONS, SCHEMA, Migration, split_sql
from labeltune.core.untrusted import refuse_foreign_rows, remember_roots

__all__ = [
    "DB_FILE",
    "LABEL_SOURCES",
    "MIGRATIONS",
    "PROJECT_FILE",
    "SCHEMA_VERSION",
    "LabelChange",
    "LabelEvent",
    "LabelSource",
    "Migration",
    "NewerSchemaError",
    "Prediction",
    "Project",
    "SampleRef",
    "file_sha256",
    "is_project",
    "new_project_problem",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
"""Version of both ``project.json`` and the SQLite schema (``PRAGMA user_version``) this code writes."""


class NewerSchemaError(UnusableInputError):
    """The project was written by a newer LabelTune than this one."""


def is_project(folder: str | os.PathLike[str]) -> bool:
    """Return whether ``folder`` holds a readable ``project.json``."""
    path = Path(folder) / PROJECT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("schema_version"), int)


#: Files a file manager leaves in any folder it shows: they do not make a folder "not empty".
_HOUSEKEEPING_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".directory"})


def new_project_problem(folder: str | os.PathLike[str], allowed: Iterable[str] = ()) -> str | None:
    """Why a new project cannot be made in ``folder`` (``None``: it is missing or empty).

    Entries named in ``allowed`` (made for the new project, e.g. its library) do not count.
    A project gets a folder of its own: its database, cache and runs are never scattered among other
    files, and a folder of images is never turned into a project in place (the images are referred to
    where they are).
    """
    path = Path(folder)
    if not path.exists():
        return None
    if not path.is_dir():
        return f"{path} is a file, not a folder"
    if (path / PROJECT_FILE).exists():
        return f"{path} already holds a LabelTune project; open it instead"
    try:
        ignored = _HOUSEKEEPING_FILES.union(allowed)
        others = sorted(p.name for p in path.iterdir() if p.name not in ignored)
    except OSError as exc:
        return f"cannot look inside {path}: {exc.strerror or exc}"
    if others:
        example = ", ".join(others[:3]) + (", …" if len(others) > 3 else "")
        return (
            f"{path} is not empty ({len(others)} item{'s' if len(others) != 1 else ''}: {example}); a "
            "project needs a new or empty folder of its own"
        )
    return None


def _check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise UnusableInputError(f"unknown domain {domain!r}; choose one of: {', '.join(DOMAINS)}")


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / PROJECT_FILE
    if not path.is_file():
        raise UnusableInputError(f"{folder} is not a LabelTune project (no {PROJECT_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnusableInputError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("schema_version"), int):
        raise UnusableInputError(f"{path} is not a LabelTune project file (no schema_version)")
    version = data["schema_version"]
    if version > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"{folder} was saved by a newer LabelTune (project schema {version}; this version reads up "
            f"to {SCHEMA_VERSION}); update LabelTune to open it"
        )
    classes = data.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise UnusableInputError(f"{path}: 'classes' must be a list of names")
    domain = data.get("domain", "image")
    _check_domain(domain)
    settings = data.get("settings", {})
    sources = data.get("sources", [])
    if not isinstance(settings, dict) or not isinstance(sources, list):
        raise UnusableInputError(f"{path}: 'settings' must be an object and 'sources' a list")
    return {
        "schema_version": version,
        "name": str(data.get("name") or folder.name),
        "domain": domain,
        "classes": list(classes),
        "sources": [str(s) for s in sources],
        "settings": settings,
        "created": str(data.get("created", "")),
        **{k: v for k, v in data.items() if k not in _META_KEYS},  # keep fields a newer minor wrote
    }


_META_KEYS = ("schema_version", "name", "domain", "classes", "sources", "settings", "created")


class Project(SamplesMixin, LabelsMixin, ClassesMixin, RunsMixin):
    """An open LabelTune project; use :meth:`create` or :meth:`open`, and :meth:`close` (or ``with``).

    All methods are thread-safe (one connection shared under a re-entrant lock); see the module doc.
    Each group of methods lives in a mixin of its own (see the module doc).
    """

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    def create(
        cls,
        folder: str | os.PathLike[str],
        name: str | None = None,
        domain: str = "image",
        classes: Iterable[str] = (),
    ) -> Project:
        """Make ``folder`` (created if missing) a new project and open it.

        Raises :class:`UnusableInputError` if it is not new or empty (a project gets a folder of its own:
        see :func:`new_project_problem`), the domain is unknown or a class name is empty or repeated.
        """
        path = Path(os.path.abspath(folder))
        problem = new_project_problem(path)
        if problem is not None:
            raise UnusableInputError(problem)
        _check_domain(domain)
        class_list: list[str] = []
        for raw in classes:
            cleaned = clean_class_name(raw)
            if cleaned in class_list:
                raise UnusableInputError(f"class {cleaned!r} is given twice")
            class_list.append(cleaned)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, path, "create project folder") from exc
        meta: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "name": name.strip() if name and name.strip() else path.name,
            "domain": domain,
            "classes": class_list,
            "sources": [],
            "settings": {},
            "created": now_iso(),
        }
        conn = cls._connect(path / DB_FILE)
        try:
            cls._prepare_db(conn, meta, path)
            atomic_write_json(path / PROJECT_FILE, meta)
        except BaseException:
            conn.close()
            raise
        log.info("created project %r in %s", meta["name"], path)
        return cls(path, meta, conn)

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Project:
        """Open the project in ``folder`` (or the folder of a given ``project.json``).

        Raises :class:`UnusableInputError` if it is not a project and :class:`NewerSchemaError` if a
        newer LabelTune wrote it.  Older projects are migrated (see :data:`MIGRATIONS`).
        """
        path = Path(os.path.abspath(folder))
        if path.name == PROJECT_FILE and path.is_file():
            path = path.parent
        meta = _read_meta(path)
        remove_stale_temporaries(path / PROJECT_FILE)  # what a kill mid-write left (docs/adr/0040)
        db_path = path / DB_FILE
        if not db_path.exists():
            missing = missing_store_error(db_path)
            if missing is not None:
                raise missing
            log.warning("%s has no %s; starting an empty sample database", path, DB_FILE)
        conn = cls._connect(db_path)
        try:
            check_store(conn, db_path)  # a damaged store is refused and kept (docs/adr/0040)
            refresh_backup(conn, db_path)
            cls._prepare_db(conn, meta, path)
            refuse_foreign_rows(conn, path, meta["sources"], path / DB_FILE)
        except BaseException:
            conn.close()
            raise
        log.info("opened project %r in %s", meta["name"], path)
        return cls(path, meta, conn)

    @staticmethod
    def _connect(db_path: Path) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # FULL for label commits: StoreBase._write
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError) and is_damage(exc):
                raise damaged_store_error(db_path, str(exc)) from exc
            if storage_reason(exc, db_path) is not None:  # disk full, read-only, folder gone (ADR 0042)
                raise storage_error(exc, db_path, "open") from exc
            raise UnusableInputError(f"cannot open {db_path}: {exc}") from exc
        return conn

    @staticmethod
    def _prepare_db(conn: sqlite3.Connection, meta: dict[str, Any], folder: Path) -> None:
        """Create the schema in a new database or migrate an old one; update ``meta`` to match."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise NewerSchemaError(
                f"{folder / DB_FILE} was written by a newer LabelTune (database schema {version}; this "
                f"version reads up to {SCHEMA_VERSION}); update LabelTune to open it"
            )
        if version == SCHEMA_VERSION and meta["schema_version"] == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # again, now that we hold the lock
            if version == 0:  # a new database gets the current schema: nothing to migrate
                for statement in split_sql(SCHEMA):
                    conn.execute(statement)
                start = SCHEMA_VERSION
            else:  # min: a crash may have left project.json written and the database not committed
                start = min(version, meta["schema_version"])
            for step in range(start, SCHEMA_VERSION):
                migrate = MIGRATIONS.get(step)
                if migrate is None:
                    raise LabelTuneError(f"no migration from project schema {step} to {step + 1}")
                log.info("migrating project %s from schema %d to %d", folder, step, step + 1)
                migrate(conn, meta)
            conn.execute(f"PRAGMA user_version = {int(SCHEMA_VERSION)}")
            if meta["schema_version"] != SCHEMA_VERSION:
                meta["schema_version"] = SCHEMA_VERSION
                if (folder / PROJECT_FILE).exists():
                    atomic_write_json(folder / PROJECT_FILE, meta)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the database connection; further calls on this project raise ``RuntimeError``."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({self._meta['name']!r}, {str(self._folder)!r})"

    def save_settings(self, **values: Any) -> None:
        """Merge ``values`` into the settings and write ``project.json``.

        Values must be JSON-serialisable (paths and numpy values are converted); otherwise ``TypeError``
        is raised and nothing changes.
        """
        with self._lock:
            settings = {**self._meta["settings"], **values}
            settings = json.loads(json.dumps(settings, default=json_default))  # TypeError: nothing changed
            self._save_meta(settings=settings)

    def add_source(self, path: str | os.PathLike[str]) -> bool:
        """Remember ``path`` as an imported data root; return False if it was already recorded."""
        key = self._key(os.path.abspath(path))
        with self._lock:
            if key in self._meta["sources"]:
                return False
            self._save_meta(sources=[*self._meta["sources"], key])
            remember_roots([os.path.abspath(path)])  # ADR 0043: a folder this user imported here
            return True

    # ------------------------------------------------------------------ content hashes

    def sha256_for(self, path: str | os.PathLike[str]) -> str:
        """Sha256 of a file; for a sample it is cached and recomputed when its size or mtime changes.

        Raises :class:`UnusableInputError` if the file cannot be read.
        """
        key = self._key(path)
        full = self._abs(key)
        try:
            before = os.stat(full)
            with self._lock:
                row = (
                    self._db()
                    .execute("SELECT id, sha256, size, mtime FROM samples WHERE path = ?", (key,))
                    .fetchone()
                )
            if row is not None and row[1] and row[2] == before.st_size and row[3] == before.st_mtime:
                return str(row[1])
            digest = file_sha256(full)  # outside the lock: may take a while
            after = os.stat(full)
        except OSError as exc:
            raise UnusableInputError(f"cannot read {full}: {exc.strerror or exc}") from exc
        unchanged = (after.st_size, after.st_mtime) == (before.st_size, before.st_mtime)
        if row is not None and unchanged:
            with self._write() as conn:
                conn.execute(
                    "UPDATE samples SET sha256 = ?, size = ?, mtime = ? WHERE id = ?",
                    (digest, after.st_size, after.st_mtime, row[0]),
                )
        return digest
