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

This module imports only the standard library at module level (no Qt, torch or numpy).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from labeltune.core.errors import LabelTuneError, UnusableInputError
from labeltune.core.hashing import file_sha256

if TYPE_CHECKING:  # datasets imports imaging (numpy, PIL): imported lazily where Samples are built
    from labeltune.core.datasets import Sample

__all__ = [
    "DB_FILE",
    "DOMAINS",
    "LABEL_SOURCES",
    "PROJECT_FILE",
    "SCHEMA_VERSION",
    "LabelChange",
    "LabelEvent",
    "LabelSource",
    "NewerSchemaError",
    "Prediction",
    "Project",
    "SampleRef",
    "file_sha256",
    "is_project",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""Version of both ``project.json`` and the SQLite schema (``PRAGMA user_version``) this code writes."""

PROJECT_FILE = "project.json"
DB_FILE = "labeltune.sqlite"
DOMAINS = ("image", "xrd")
LABEL_SOURCES = ("human", "import", "model")
UNDO_LIMIT = 10_000
_CHUNK = 500  # parameters per ``IN (...)`` query, well below SQLite's limit

LabelSource = Literal["human", "import", "model"]
SampleRef = int | str | os.PathLike[str]
"""A sample given by database id, or by path (absolute, or relative to the project folder)."""

Migration = Callable[[sqlite3.Connection, dict[str, Any]], None]
MIGRATIONS: dict[int, Migration] = {}
"""Migration hook: ``MIGRATIONS[n]`` upgrades a version-``n`` project to ``n + 1``.

It receives the open connection (inside the transaction that also bumps ``user_version``) and the
``project.json`` content as a dict, which it may change in place; the dict is written before the
transaction commits, so a step may meet a dict it already changed once (keep that part idempotent).
"""


def _add_ood_score(conn: sqlite3.Connection, _meta: dict[str, Any]) -> None:
    """Schema 1 → 2: predictions carry the unfamiliar-input score (core/familiarity.py)."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(predictions)")]
    if "ood_score" not in columns:
        conn.execute("ALTER TABLE predictions ADD COLUMN ood_score REAL")


MIGRATIONS[1] = _add_ood_score

_SCHEMA = """
CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,   -- relative to the project folder when inside it, else absolute; POSIX
    sha256 TEXT,                 -- content hash, valid for the size and mtime next to it
    size INTEGER,
    mtime REAL,
    group_key TEXT,              -- grouping key for grouped splits (e.g. a fish track id)
    added REAL NOT NULL,
    label TEXT,                  -- cache of the latest labels.value, kept by trigger labels_current
    label_source TEXT            -- cache of the latest labels.source (add_samples fills both at once)
);
CREATE INDEX samples_label ON samples(label);

CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    value TEXT,                  -- NULL: label removed
    source TEXT NOT NULL CHECK (source IN ('human', 'import', 'model')),
    time REAL NOT NULL,
    note TEXT                    -- why, for rows not typed by hand: undo, redo, rename, merge, delete
);
CREATE INDEX labels_sample ON labels(sample_id, id);

CREATE TRIGGER labels_current AFTER INSERT ON labels
WHEN NOT EXISTS (
    SELECT 1 FROM samples WHERE id = NEW.sample_id AND label IS NEW.value AND label_source IS NEW.source
)
BEGIN
    UPDATE samples SET label = NEW.value, label_source = NEW.source WHERE id = NEW.sample_id;
END;
CREATE TRIGGER labels_append_only BEFORE UPDATE ON labels BEGIN
    SELECT RAISE(ABORT, 'labels is append-only');
END;

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    created REAL NOT NULL,
    backbone TEXT,
    strategy TEXT,
    metrics TEXT NOT NULL DEFAULT '{}'   -- JSON object
);

CREATE TABLE predictions (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    confidence REAL NOT NULL,
    topk TEXT NOT NULL DEFAULT '[]',     -- JSON list of [label, probability]
    ood_score REAL,                      -- above 1: unlike the run's training images (schema 2)
    PRIMARY KEY (run_id, sample_id)
) WITHOUT ROWID;
"""


class NewerSchemaError(UnusableInputError):
    """The project was written by a newer LabelTune than this one."""


@dataclass(frozen=True)
class LabelChange:
    """A label change made by :meth:`Project.undo` or :meth:`Project.redo`: which sample, old and new."""

    sample_id: int
    path: Path
    old: str | None
    new: str | None


@dataclass(frozen=True)
class LabelEvent:
    """One row of a sample's label history."""

    value: str | None
    source: str
    time: float
    note: str | None = None


@dataclass(frozen=True)
class Prediction:
    """A model's prediction for one sample in one run."""

    path: Path
    label: str
    confidence: float
    topk: list[tuple[str, float]]
    ood_score: float | None = None  # above 1: the image is unlike the run's training images

    @property
    def unfamiliar(self) -> bool:
        """Whether the image is unlike the images the run was trained on."""
        return self.ood_score is not None and self.ood_score > 1.0


@dataclass(frozen=True)
class _UndoEntry:
    sample_id: int
    before: str | None
    after: str | None


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


def _json_default(value: Any) -> Any:
    """Let ``json.dumps`` take numpy scalars and arrays (via ``tolist``) and paths, without numpy."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clean_class_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"class names are strings, not {type(name).__name__}")
    cleaned = name.strip()
    if not cleaned:
        raise UnusableInputError("a class name cannot be empty")
    return cleaned


def _check_source(source: str) -> None:
    if source not in LABEL_SOURCES:
        raise ValueError(f"label source must be one of {', '.join(LABEL_SOURCES)}, not {source!r}")


def _check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise UnusableInputError(f"unknown domain {domain!r}; choose one of: {', '.join(DOMAINS)}")


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (never a half-written file)."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


class Project:
    """An open LabelTune project; use :meth:`create` or :meth:`open`, and :meth:`close` (or ``with``).

    All methods are thread-safe (one connection shared under a re-entrant lock); see the module doc.
    """

    def __init__(self, folder: Path, meta: dict[str, Any], conn: sqlite3.Connection) -> None:
        """Wrap an open connection; call :meth:`create` or :meth:`open` instead."""
        self._folder = folder
        self._meta = meta
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._undo: list[_UndoEntry] = []
        self._redo: list[_UndoEntry] = []
        folder_str = os.path.abspath(folder)
        prefixes = {folder_str, os.path.realpath(folder_str)}
        self._prefixes = [os.path.normcase(os.path.join(p, "")) for p in sorted(prefixes, key=len)]

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
            cleaned = _clean_class_name(raw)
            if cleaned in class_list:
                raise UnusableInputError(f"class {cleaned!r} is given twice")
            class_list.append(cleaned)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UnusableInputError(f"cannot create project folder {path}: {exc}") from exc
        meta: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "name": name.strip() if name and name.strip() else path.name,
            "domain": domain,
            "classes": class_list,
            "sources": [],
            "settings": {},
            "created": _now_iso(),
        }
        conn = cls._connect(path / DB_FILE)
        try:
            cls._prepare_db(conn, meta, path)
            _atomic_write_json(path / PROJECT_FILE, meta)
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
        db_path = path / DB_FILE
        if not db_path.exists():
            log.warning("%s has no %s; starting an empty sample database", path, DB_FILE)
        conn = cls._connect(db_path)
        try:
            cls._prepare_db(conn, meta, path)
        except BaseException:
            conn.close()
            raise
        log.info("opened project %r in %s", meta["name"], path)
        return cls(path, meta, conn)

    @staticmethod
    def _connect(db_path: Path) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
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
                for statement in _split_sql(_SCHEMA):
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
                    _atomic_write_json(folder / PROJECT_FILE, meta)
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

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._conn is None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"project {self._meta['name']!r} is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and a write transaction; commit on success, roll back on error."""
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _save_meta(self, **changes: Any) -> None:
        """Write ``project.json`` with ``changes`` applied, then adopt them (call inside :meth:`_write`)."""
        new = {**self._meta, **changes}
        _atomic_write_json(self._folder / PROJECT_FILE, new)
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

    def save_settings(self, **values: Any) -> None:
        """Merge ``values`` into the settings and write ``project.json``.

        Values must be JSON-serialisable (paths and numpy values are converted); otherwise ``TypeError``
        is raised and nothing changes.
        """
        with self._lock:
            settings = {**self._meta["settings"], **values}
            settings = json.loads(json.dumps(settings, default=_json_default))  # TypeError: nothing changed
            self._save_meta(settings=settings)

    def add_source(self, path: str | os.PathLike[str]) -> bool:
        """Remember ``path`` as an imported data root; return False if it was already recorded."""
        key = self._key(os.path.abspath(path))
        with self._lock:
            if key in self._meta["sources"]:
                return False
            self._save_meta(sources=[*self._meta["sources"], key])
            return True

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

    # ------------------------------------------------------------------ samples

    def add_samples(self, samples: Iterable[Sample], source: LabelSource = "import") -> int:
        """Add samples (with their labels) and return how many were new.

        Known paths are not added twice.  A sample's label is recorded (with ``source``) when the sample
        is new, or when its current label did not come from a person and differs; a label set or
        removed by a person is never overwritten, and an unlabeled sample clears nothing, so importing
        the same data again changes nothing.  Class names not yet known are appended to
        :attr:`classes`.  A sample's group is updated when one is given.  Relative paths are taken
        relative to the current directory (``Sample.path`` is meant to be absolute).
        """
        _check_source(source)
        batch: dict[str, Sample] = {}
        for sample in samples:
            key = self._key_from_abs(os.path.abspath(sample.path))
            batch.setdefault(key, sample)
        if not batch:
            return 0
        now = time.time()
        with self._write() as conn:
            existing = self._rows_for_keys(conn, list(batch))
            new_rows: list[tuple[str, str | None, float, str | None, str | None]] = []
            group_updates: list[tuple[str, int]] = []
            label_rows: list[tuple[str, str, float, str]] = []
            known = set(self._meta["classes"])
            new_classes: list[str] = []
            for key, sample in batch.items():
                label = None if sample.label is None else _clean_class_name(sample.label)
                row = existing.get(key)
                if row is None:
                    # the label cache is filled at once (the trigger then has nothing to update: faster)
                    record = label is not None
                    new_rows.append((key, sample.group, now, label, source if record else None))
                else:
                    sample_id, current, current_source, group = row
                    if sample.group is not None and sample.group != group:
                        group_updates.append((sample.group, sample_id))
                    record = label is not None and current_source != "human" and current != label
                if record and label is not None:
                    label_rows.append((label, source, now, key))
                    if label not in known:
                        known.add(label)
                        new_classes.append(label)
            conn.executemany(
                "INSERT INTO samples (path, group_key, added, label, label_source) VALUES (?, ?, ?, ?, ?)",
                new_rows,
            )
            conn.executemany("UPDATE samples SET group_key = ? WHERE id = ?", group_updates)
            conn.executemany(
                "INSERT INTO labels (sample_id, value, source, time) "
                "SELECT id, ?, ?, ? FROM samples WHERE path = ?",
                label_rows,
            )
            if new_classes:
                self._save_meta(classes=[*self._meta["classes"], *new_classes])
        log.info(
            "added %d new samples (%d given), %d labels, %d new classes",
            len(new_rows),
            len(batch),
            len(label_rows),
            len(new_classes),
        )
        return len(new_rows)

    @staticmethod
    def _rows_for_keys(
        conn: sqlite3.Connection, keys: list[str]
    ) -> dict[str, tuple[int, str | None, str | None, str | None]]:
        found: dict[str, tuple[int, str | None, str | None, str | None]] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT path, id, label, label_source, group_key FROM samples WHERE path IN ({marks})"
            for path, sample_id, label, label_source, group in conn.execute(query, chunk):
                found[path] = (sample_id, label, label_source, group)
        return found

    def samples(self, label: str | None = None, unlabeled_only: bool = False) -> list[Sample]:
        """Return samples in import order with their current labels and absolute paths.

        ``label`` keeps only that class; ``unlabeled_only`` keeps only unlabeled samples.
        """
        from labeltune.core.datasets import Sample

        where, params = _label_filter(label, unlabeled_only)
        with self._lock:
            query = f"SELECT path, label, group_key FROM samples{where} ORDER BY id"
            rows = self._db().execute(query, params).fetchall()
        return [Sample(self._abs(path), value, group) for path, value, group in rows]

    def sample_ids(self, label: str | None = None, unlabeled_only: bool = False) -> list[int]:
        """Database ids of the samples :meth:`samples` would return, in the same order."""
        where, params = _label_filter(label, unlabeled_only)
        with self._lock:
            return [
                row[0] for row in self._db().execute(f"SELECT id FROM samples{where} ORDER BY id", params)
            ]

    def rows(
        self,
        label: str | None = None,
        unlabeled_only: bool = False,
        ids: Iterable[int] | None = None,
    ) -> list[tuple[int, str, str | None]]:
        """Return ``(id, absolute path, label)`` of samples in import order: a fast listing for galleries.

        Paths are plain strings (no :class:`~pathlib.Path` objects), so listing 100 000 samples takes a
        fraction of :meth:`samples`' time.  ``label`` keeps only that class, ``unlabeled_only`` only the
        unlabeled samples and ``ids`` only those samples (unknown ids are left out).
        """
        if label is not None and unlabeled_only:
            raise ValueError("give either label or unlabeled_only, not both")
        clauses: list[str] = []
        params: list[object] = []
        if label is not None:
            clauses.append("label = ?")
            params.append(label)
        elif unlabeled_only:
            clauses.append("label IS NULL")
        query = "SELECT id, path, label FROM samples"
        with self._lock:
            conn = self._db()
            if ids is None:
                where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
                found = conn.execute(query + where + " ORDER BY id", params).fetchall()
            else:
                wanted = sorted(set(ids))
                found = []
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    where = " AND ".join([*clauses, f"id IN ({marks})"])
                    found.extend(conn.execute(f"{query} WHERE {where} ORDER BY id", [*params, *chunk]))
        prefix = os.path.join(self._folder, "")
        isabs = os.path.isabs
        if os.sep == "/":  # an absolute POSIX key starts with "/": cheaper than isabs() 100 000 times
            return [(i, key if key[:1] == "/" else prefix + key, value) for i, key, value in found]
        return [  # keys use "/": give native separators, as :meth:`samples` does
            (i, key.replace("/", os.sep) if isabs(key) else prefix + key.replace("/", os.sep), value)
            for i, key, value in found
        ]

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

    def sample_id(self, ref: SampleRef) -> int:
        """Database id of a sample (raises :class:`UnusableInputError` if unknown)."""
        with self._lock:
            return self._lookup(self._db(), ref)[0]

    def sample(self, ref: SampleRef) -> Sample:
        """One sample with its current label (raises :class:`UnusableInputError` if unknown)."""
        from labeltune.core.datasets import Sample

        with self._lock:
            sample_id = self._lookup(self._db(), ref)[0]
            path, label, group = (
                self._db()
                .execute("SELECT path, label, group_key FROM samples WHERE id = ?", (sample_id,))
                .fetchone()
            )
        return Sample(self._abs(path), label, group)

    def label_of(self, ref: SampleRef) -> str | None:
        """Return the current label of a sample (``None``: unlabeled)."""
        with self._lock:
            return self._lookup(self._db(), ref)[2]

    def sample_count(self) -> int:
        """Return the number of samples."""
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Return the number of samples per class, in class order (0 for empty classes); no unlabeled."""
        with self._lock:
            rows = self._db().execute(
                "SELECT label, COUNT(*) FROM samples WHERE label IS NOT NULL GROUP BY label"
            )
            found = dict(rows.fetchall())
        result = {name: int(found.pop(name, 0)) for name in self._meta["classes"]}
        result.update(sorted(found.items()))  # labels outside the class list (should not happen)
        return result

    def group_count(self) -> int:
        """Return how many distinct groups (e.g. fish tracks) the samples carry (0: none are grouped)."""
        with self._lock:
            query = "SELECT COUNT(DISTINCT group_key) FROM samples WHERE group_key IS NOT NULL"
            return int(self._db().execute(query).fetchone()[0])

    def unlabeled_count(self) -> int:
        """Return the number of samples without a label."""
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM samples WHERE label IS NULL").fetchone()[0])

    # ------------------------------------------------------------------ labels

    def set_label(
        self,
        sample: SampleRef,
        label: str | None,
        source: LabelSource = "human",
        *,
        create_class: bool = False,
    ) -> None:
        """Set (or with ``None`` remove) a sample's label; it is committed before this returns.

        An unknown class raises :class:`UnusableInputError` unless ``create_class`` is true, which
        appends it to :attr:`classes`.  Setting the label a sample already has from the same source,
        or removing a label it does not have, records nothing.  A human change can be undone; it
        clears the redo stack.
        """
        _check_source(source)
        cleaned = None if label is None else _clean_class_name(label)
        with self._lock:
            with self._write() as conn:
                sample_id, _key, current, current_source = self._lookup(conn, sample)
                if cleaned == current and (current_source == source or cleaned is None):
                    return
                new_class = cleaned is not None and cleaned not in self._meta["classes"]
                if new_class and not create_class:
                    raise UnusableInputError(
                        f"unknown class {cleaned!r}; known classes: {', '.join(self._meta['classes']) or '-'}"
                    )
                conn.execute(
                    "INSERT INTO labels (sample_id, value, source, time) VALUES (?, ?, ?, ?)",
                    (sample_id, cleaned, source, time.time()),
                )
                if new_class:
                    self._save_meta(classes=[*self._meta["classes"], cleaned])
            if source == "human" and cleaned != current:
                self._undo.append(_UndoEntry(sample_id, current, cleaned))
                del self._undo[:-UNDO_LIMIT]
                self._redo.clear()

    def label_history(self, sample: SampleRef) -> list[LabelEvent]:
        """Every label change of a sample, oldest first."""
        with self._lock:
            conn = self._db()
            sample_id = self._lookup(conn, sample)[0]
            rows = conn.execute(
                "SELECT value, source, time, note FROM labels WHERE sample_id = ? ORDER BY id", (sample_id,)
            ).fetchall()
        return [LabelEvent(value, source, when, note) for value, source, when, note in rows]

    def can_undo(self) -> bool:
        """Whether :meth:`undo` has something to undo."""
        return bool(self._undo)

    def can_redo(self) -> bool:
        """Whether :meth:`redo` has something to redo."""
        return bool(self._redo)

    def undo(self) -> LabelChange | None:
        """Undo the last human label change (by appending the previous value); ``None`` if none left."""
        with self._lock:
            if not self._undo:
                return None
            entry = self._undo[-1]
            change = self._apply_history(entry.sample_id, entry.before, "undo")
            self._undo.pop()
            self._redo.append(entry)
            return change

    def redo(self) -> LabelChange | None:
        """Redo the last undone change; ``None`` if there is none."""
        with self._lock:
            if not self._redo:
                return None
            entry = self._redo[-1]
            change = self._apply_history(entry.sample_id, entry.after, "redo")
            self._redo.pop()
            self._undo.append(entry)
            return change

    def _apply_history(self, sample_id: int, value: str | None, note: str) -> LabelChange:
        with self._write() as conn:
            _id, key, current, _source = self._lookup(conn, sample_id)
            conn.execute(
                "INSERT INTO labels (sample_id, value, source, time, note) VALUES (?, ?, 'human', ?, ?)",
                (sample_id, value, time.time(), note),
            )
        return LabelChange(sample_id, self._abs(key), current, value)

    def _clear_undo(self) -> None:
        self._undo.clear()
        self._redo.clear()

    # ------------------------------------------------------------------ classes

    def _require_class(self, name: str) -> str:
        cleaned = _clean_class_name(name)
        if cleaned not in self._meta["classes"]:
            raise UnusableInputError(
                f"unknown class {cleaned!r}; known classes: {', '.join(self._meta['classes']) or '-'}"
            )
        return cleaned

    def _relabel(self, conn: sqlite3.Connection, old: Sequence[str], new: str | None, note: str) -> int:
        """Append a human row setting every sample currently labeled one of ``old`` to ``new``."""
        ids: list[int] = []
        for name in old:
            ids.extend(row[0] for row in conn.execute("SELECT id FROM samples WHERE label = ?", (name,)))
        now = time.time()
        conn.executemany(
            "INSERT INTO labels (sample_id, value, source, time, note) VALUES (?, ?, 'human', ?, ?)",
            [(sample_id, new, now, note) for sample_id in ids],
        )
        return len(ids)

    def add_class(self, name: str) -> None:
        """Append a class (raises :class:`UnusableInputError` if it exists or is empty)."""
        cleaned = _clean_class_name(name)
        with self._lock:
            if cleaned in self._meta["classes"]:
                raise UnusableInputError(f"class {cleaned!r} already exists")
            self._save_meta(classes=[*self._meta["classes"], cleaned])

    def rename_class(self, old: str, new: str) -> int:
        """Rename a class in place (same hotkey); return how many samples were relabeled.

        Each relabeled sample gets a history row (source ``human``, note ``rename``), so re-importing
        the old folder name does not bring the old class back.  Clears undo/redo.
        """
        with self._lock:
            old = self._require_class(old)
            new = _clean_class_name(new)
            if new == old:
                return 0
            if new in self._meta["classes"]:
                raise UnusableInputError(f"class {new!r} already exists; merge the classes instead")
            with self._write() as conn:
                count = self._relabel(conn, [old], new, "rename")
                self._save_meta(classes=[new if c == old else c for c in self._meta["classes"]])
            self._clear_undo()
            log.info("renamed class %r to %r (%d samples)", old, new, count)
            return count

    def merge_classes(self, sources: Iterable[str], target: str) -> int:
        """Relabel the samples of ``sources`` as ``target`` and drop those classes; return the count.

        ``target`` may be new (it takes the place of the first merged class) or one of the sources.
        Clears undo/redo.
        """
        with self._lock:
            names: list[str] = []
            for name in sources:
                cleaned = self._require_class(name)
                if cleaned not in names:
                    names.append(cleaned)
            if not names:
                raise UnusableInputError("choose at least one class to merge")
            target = _clean_class_name(target)
            merged = [n for n in names if n != target]
            classes = list(self._meta["classes"])
            if target not in classes:
                first = min(classes.index(n) for n in names)
                classes.insert(first, target)
            classes = [c for c in classes if c not in merged]
            with self._write() as conn:
                count = self._relabel(conn, merged, target, "merge")
                self._save_meta(classes=classes)
            self._clear_undo()
            log.info("merged classes %s into %r (%d samples)", merged, target, count)
            return count

    def delete_class(self, name: str) -> int:
        """Remove a class; its samples become unlabeled (history rows with note ``delete``).

        Returns how many samples lost their label.  Clears undo/redo.
        """
        with self._lock:
            name = self._require_class(name)
            with self._write() as conn:
                count = self._relabel(conn, [name], None, "delete")
                self._save_meta(classes=[c for c in self._meta["classes"] if c != name])
            self._clear_undo()
            log.info("deleted class %r (%d samples now unlabeled)", name, count)
            return count

    def reorder_classes(self, order: Sequence[str]) -> None:
        """Set the class order (hotkeys 1–9 follow it); ``order`` must hold exactly the current classes."""
        with self._lock:
            new = [_clean_class_name(c) for c in order]
            if sorted(new) != sorted(self._meta["classes"]):
                raise UnusableInputError(
                    f"a new class order must list each class once: {', '.join(self._meta['classes'])}"
                )
            self._save_meta(classes=new)

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

    # ------------------------------------------------------------------ runs and predictions

    def record_run(
        self,
        run_id: str,
        run_dir: str | os.PathLike[str],
        backbone: str,
        strategy: str,
        metrics: dict[str, Any],
    ) -> None:
        """Record a training run, or update it (path, backbone, strategy, metrics) if already recorded."""
        metrics_json = json.dumps(metrics, default=_json_default)
        key = self._key(os.path.abspath(run_dir))
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (id, path, created, backbone, strategy, metrics) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET path = excluded.path, backbone = excluded.backbone, "
                "strategy = excluded.strategy, metrics = excluded.metrics",
                (run_id, key, time.time(), backbone, strategy, metrics_json),
            )

    def runs(self) -> list[dict[str, Any]]:
        """Return the recorded runs, oldest first.

        Each is a dict with ``id``, ``path`` (absolute), ``created``, ``backbone``, ``strategy`` and
        ``metrics`` (a dict).
        """
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT id, path, created, backbone, strategy, metrics FROM runs ORDER BY created, id"
                )
                .fetchall()
            )
        return [
            {
                "id": run_id,
                "path": self._abs(path),
                "created": created,
                "backbone": backbone,
                "strategy": strategy,
                "metrics": json.loads(metrics),
            }
            for run_id, path, created, backbone, strategy, metrics in rows
        ]

    def delete_run(self, run_id: str) -> bool:
        """Forget a run and its predictions (its folder is left alone); False if it was not recorded."""
        with self._write() as conn:
            return conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    def _require_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise UnusableInputError(f"unknown run {run_id!r} in project {self.name!r}")

    def add_predictions(
        self,
        run_id: str,
        rows: Iterable[tuple[Any, ...]],
    ) -> int:
        """Store ``(path, label, confidence, topk[, ood_score])`` predictions of a recorded run.

        Returns how many were stored. A later prediction for the same run and sample replaces the earlier
        one.  Paths that are not samples of the project are skipped (and logged).
        """
        by_key: dict[str, tuple[str, float, str, float | None]] = {}
        for path, label, confidence, topk, *rest in rows:
            topk_json = json.dumps([[str(name), float(p)] for name, p in topk])
            ood = float(rest[0]) if rest and rest[0] is not None else None
            by_key[self._key(path)] = (str(label), float(confidence), topk_json, ood)
        with self._write() as conn:
            self._require_run(conn, run_id)
            ids = self._rows_for_keys(conn, list(by_key))
            values = [(run_id, ids[key][0], *pred) for key, pred in by_key.items() if key in ids]
            conn.executemany(
                "INSERT OR REPLACE INTO predictions (run_id, sample_id, label, confidence, topk, ood_score) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
        skipped = len(by_key) - len(values)
        if skipped:
            log.warning(
                "run %s: %d predictions skipped (files are not samples of the project)", run_id, skipped
            )
        return len(values)

    def predictions(self, run_id: str) -> list[Prediction]:
        """Predictions stored for a run, in sample import order."""
        with self._lock:
            conn = self._db()
            self._require_run(conn, run_id)
            rows = conn.execute(
                "SELECT s.path, p.label, p.confidence, p.topk, p.ood_score FROM predictions p "
                "JOIN samples s ON s.id = p.sample_id WHERE p.run_id = ? ORDER BY s.id",
                (run_id,),
            ).fetchall()
        return [
            Prediction(
                self._abs(path), label, confidence, [(str(n), float(p)) for n, p in json.loads(topk)], ood
            )
            for path, label, confidence, topk, ood in rows
        ]

    def latest_predicted_run(self) -> str | None:
        """The newest recorded run that has stored predictions, or ``None``."""
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT r.id FROM runs r "
                    "WHERE EXISTS (SELECT 1 FROM predictions p WHERE p.run_id = r.id) "
                    "ORDER BY r.created DESC, r.id DESC LIMIT 1"
                )
                .fetchone()
            )
        return str(row[0]) if row else None

    def prediction_map(self, run_id: str) -> dict[int, tuple[str, float, float | None]]:
        """``sample id → (label, confidence, ood_score)`` of a run's stored predictions (one query)."""
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT sample_id, label, confidence, ood_score FROM predictions WHERE run_id = ?",
                    (run_id,),
                )
                .fetchall()
            )
        return {int(i): (str(label), float(conf), ood) for i, label, conf, ood in rows}


def _split_sql(script: str) -> list[str]:
    """Split a SQL script into statements, so they run inside one explicit transaction.

    (``executescript`` would commit first; :func:`sqlite3.complete_statement` copes with triggers.)
    """
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement: {current.strip()[:60]}")
    return statements


def _label_filter(label: str | None, unlabeled_only: bool) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause (with a leading space, or empty) and parameters for a label filter."""
    if label is not None and unlabeled_only:
        raise ValueError("give either label or unlabeled_only, not both")
    if label is not None:
        return " WHERE label = ?", (label,)
    return (" WHERE label IS NULL", ()) if unlabeled_only else ("", ())
