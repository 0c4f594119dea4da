"""The SQLite schema of an image project and the steps that migrate older projects to it.

``SCHEMA_VERSION`` itself is defined in core/project.py (it is also the ``project.json`` version, and
opening a project compares the two); this module holds the table definitions and the migration steps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

__all__ = ["MIGRATIONS", "SCHEMA", "Migration", "split_sql"]

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

_LABELS_TABLE = """
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    value TEXT,                  -- NULL: label removed
    source TEXT NOT NULL CHECK (source IN ('human', 'import', 'model', 'accepted')),
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
"""


def _accepted_and_excluded(conn: sqlite3.Connection, _meta: dict[str, Any]) -> None:
    """Schema 2 → 3: the label source ``accepted`` and the ``samples.excluded`` flag (docs/adr/0030).

    SQLite cannot change a CHECK constraint: the ``labels`` table is rebuilt with every row (ids, values,
    sources, times and notes kept), then its index and triggers are made again.
    """
    columns = [row[1] for row in conn.execute("PRAGMA table_info(samples)")]
    if "excluded" not in columns:
        conn.execute("ALTER TABLE samples ADD COLUMN excluded INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE labels RENAME TO labels_v2")
    for name in ("labels_current", "labels_append_only"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    conn.execute("DROP INDEX IF EXISTS labels_sample")
    for statement in split_sql(_LABELS_TABLE):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO labels (id, sample_id, value, source, time, note) "
        "SELECT id, sample_id, value, source, time, note FROM labels_v2"
    )
    conn.execute("DROP TABLE labels_v2")


MIGRATIONS[2] = _accepted_and_excluded

SCHEMA = (
    """
CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,   -- relative to the project folder when inside it, else absolute; POSIX
    sha256 TEXT,                 -- content hash, valid for the size and mtime next to it
    size INTEGER,
    mtime REAL,
    group_key TEXT,              -- grouping key for grouped splits (e.g. a fish track id)
    added REAL NOT NULL,
    label TEXT,                  -- cache of the latest labels.value, kept by trigger labels_current
    label_source TEXT,           -- cache of the latest labels.source (add_samples fills both at once)
    excluded INTEGER NOT NULL DEFAULT 0  -- 1: left out of training (key X on the Label page; schema 3)
);
CREATE INDEX samples_label ON samples(label);

"""
    + _LABELS_TABLE
    + """
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
)


def split_sql(script: str) -> list[str]:
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
