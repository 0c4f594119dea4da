"""A damaged label store is refused at open with one clear line, kept aside, and a good backup is named.

Damage is made the ways it happens: bytes overwritten mid-file, a truncated copy, another file under
the database's name.  See docs/adr/0040.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labeltune.core.project import DB_FILE, Project
from labeltune.core.project_store.integrity import DamagedStoreError, backup_path
from labeltune.core.sample import Sample

ITEMS = 600


def _project(tmp_path: Path) -> Path:
    """A project of ``ITEMS`` samples, every third labeled, closed and reopened once (so backed up)."""
    folder = tmp_path / "project"
    with Project.create(folder, classes=["cat", "dog"]) as project:
        project.add_samples([Sample(folder / f"img{i:04d}.png", None) for i in range(ITEMS)])
        for i in range(0, ITEMS, 3):
            project.set_label(folder / f"img{i:04d}.png", "cat" if i % 2 else "dog")
    Project.open(folder).close()
    return folder


def _damage(db: Path, how: str) -> None:
    data = db.read_bytes()
    if how == "overwritten":
        rng = random.Random(7)
        middle = len(data) // 2
        data = data[:middle] + rng.randbytes(8192) + data[middle + 8192 :]
    elif how == "truncated":
        data = data[: len(data) // 3]
    else:
        data = b"<html><body>not a database</body></html>\n" * 200
    db.write_bytes(data)


@pytest.mark.parametrize("how", ["overwritten", "truncated", "foreign"])
def test_a_damaged_store_is_refused_kept_aside_and_the_backup_named(tmp_path: Path, how: str) -> None:
    folder = _project(tmp_path)
    db = folder / DB_FILE
    assert not (folder / (DB_FILE + "-wal")).exists()  # closed cleanly: everything is in the file
    _damage(db, how)
    damaged = db.read_bytes()

    with pytest.raises(DamagedStoreError) as caught:
        Project.open(folder)
    message = str(caught.value)
    copies = sorted(folder.glob(DB_FILE + ".corrupt-*"))
    assert len(copies) == 1 and copies[0].read_bytes() == damaged
    assert "\n" not in message and message.startswith(f"{db} is damaged (")
    assert "LabelTune does not open it" in message
    assert str(copies[0]) in message and str(backup_path(db)) in message
    assert db.read_bytes() == damaged  # refused: not "repaired" into an empty store

    with pytest.raises(DamagedStoreError):  # opened again: the same copy, not another one
        Project.open(folder)
    assert sorted(folder.glob(DB_FILE + ".corrupt-*")) == copies

    with sqlite3.connect(backup_path(db)) as backup:  # the backup holds every label, and is sound
        assert backup.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        labeled = backup.execute("SELECT COUNT(*) FROM samples WHERE label IS NOT NULL").fetchone()[0]
    assert labeled == len(range(0, ITEMS, 3))


def test_the_backup_restores_the_project(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    db = folder / DB_FILE
    _damage(db, "overwritten")
    with pytest.raises(DamagedStoreError):
        Project.open(folder)
    db.write_bytes(backup_path(db).read_bytes())  # what the message tells the user to do
    with Project.open(folder) as project:
        assert project.label_of(folder / "img0003.png") == "cat"
        assert project.counts() == {"cat": ITEMS // 6, "dog": ITEMS // 6}


def test_the_backup_follows_the_labels_and_a_killed_copy_leaves_no_debris(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    db = folder / DB_FILE
    stale = folder / f".{backup_path(db).name}.dead1234.tmp"  # a kill during the copy leaves this
    stale.write_bytes(b"half a copy")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    young = folder / f".{backup_path(db).name}.busy5678.tmp"  # another process copying right now
    young.write_bytes(b"a copy under way")
    with Project.open(folder) as project:
        project.set_label(folder / "img0001.png", "dog")
    assert not stale.exists() and young.exists()
    Project.open(folder).close()  # a label changed since the last backup: a new one is made
    with sqlite3.connect(backup_path(db)) as backup:
        row = backup.execute("SELECT label FROM samples WHERE path = 'img0001.png'").fetchone()
    assert row == ("dog",)


def test_label_commits_are_fsynced(tmp_path: Path) -> None:
    """WAL + synchronous=NORMAL survives a killed process but not a power cut; labels commit with FULL."""
    folder = _project(tmp_path)
    with Project.open(folder) as project:
        statements: list[str] = []
        project._db().set_trace_callback(statements.append)
        project.set_label(folder / "img0002.png", "cat")
        project._db().set_trace_callback(None)
        assert project._db().execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL again after
    commit = statements.index("COMMIT")
    full = [i for i, s in enumerate(statements) if s.replace(" ", "").upper() == "PRAGMASYNCHRONOUS=FULL"]
    assert full and full[-1] < commit
    assert not any("synchronous" in s.lower() for s in statements[full[-1] + 1 : commit])

    with Project.open(folder) as project:  # an import's labels can be imported again: no fsync each
        statements.clear()
        project._db().set_trace_callback(statements.append)
        project.set_label(folder / "img0004.png", "dog", source="import")
    assert "COMMIT" in statements and not any("synchronous" in s.lower() for s in statements)


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    _damage(folder / DB_FILE, "truncated")
    done = subprocess.run(
        [sys.executable, "-m", "labeltune", "label", str(folder), "img0001.png", "--as", "cat"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"labeltune: error: {folder / DB_FILE} is damaged")
    assert ".corrupt-" in lines[0] and str(backup_path(folder / DB_FILE)) in lines[0]


def test_the_app_shows_the_message_and_opens_nothing(qtbot, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QMessageBox

    from labeltune.core.settings import Settings
    from labeltune.ui.main_window import MainWindow

    folder = _project(tmp_path)
    _damage(folder / DB_FILE, "foreign")
    window = MainWindow(Settings())
    qtbot.addWidget(window)
    window.open_project(folder)
    boxes = [box for box in window.findChildren(QMessageBox) if box.objectName() == "errorBox"]
    assert len(boxes) == 1 and boxes[0].isVisible()
    assert boxes[0].windowTitle() == "Cannot open project"
    assert f"{folder / DB_FILE} is damaged" in boxes[0].text()
    assert str(backup_path(folder / DB_FILE)) in boxes[0].text()
    assert window.session.current_project is None
    window.close()


def test_a_missing_store_with_a_backup_is_not_replaced_by_an_empty_one(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    db = folder / DB_FILE
    kept = backup_path(db).read_bytes()
    db.unlink()  # a sync tool or a careless copy lost it
    with pytest.raises(DamagedStoreError) as caught:
        Project.open(folder)
    assert f"{db} is missing" in str(caught.value) and str(backup_path(db)) in str(caught.value)
    assert not db.exists() and backup_path(db).read_bytes() == kept
    db.write_bytes(kept)  # what the message says to do
    with Project.open(folder) as project:
        assert project.counts() == {"cat": ITEMS // 6, "dog": ITEMS // 6}


class _DamagedUnderneath:
    """The project's connection, as it behaves once its file was damaged while open."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql.startswith("INSERT INTO labels"):
            error = sqlite3.DatabaseError("database disk image is malformed")
            error.sqlite_errorcode = 11  # type: ignore[attr-defined]  # SQLITE_CORRUPT
            raise error
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


def test_damage_found_while_labeling_is_said_as_at_open(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    with Project.open(folder) as project:
        real = project._conn
        assert real is not None
        project._conn = _DamagedUnderneath(real)  # type: ignore[assignment]
        with pytest.raises(DamagedStoreError) as caught:
            project.set_label(folder / "img0001.png", "dog")
        project._conn = real
        assert not real.in_transaction and project.label_of(folder / "img0001.png") is None
    assert str(caught.value).startswith(
        f"{folder / DB_FILE} is damaged (database disk image is malformed); the change was not saved"
    )
    assert str(backup_path(folder / DB_FILE)) in str(caught.value)
    assert len(list(folder.glob(DB_FILE + ".corrupt-*"))) == 1


def test_a_page_of_problems_is_said_as_the_first_and_a_count(tmp_path: Path) -> None:
    """A repeated pattern over a page gives dozens of problems (80 lines in one row of quick_check):
    the message names the first and counts the rest, so the app's box fits on the screen and shows
    the copy, the backup and its Close button; an empty WAL is not "kept" as a damaged copy."""
    from labeltune.core.project_store.integrity import check_reason

    folder = _project(tmp_path)
    db = folder / DB_FILE
    data = db.read_bytes()
    middle = len(data) // 2
    db.write_bytes(data[:middle] + b"\xde\xad\xbe\xef" * 512 + data[middle + 2048 :])
    with pytest.raises(DamagedStoreError) as caught:
        Project.open(folder)
    message = str(caught.value)
    reason = message.split(" is damaged (", 1)[1].split("); ", 1)[0]
    assert "more problem" in reason and len(reason) < 160, reason
    assert len(message) < 800 and str(backup_path(db)) in message
    assert not list(folder.glob(DB_FILE + "-wal.corrupt-*"))  # the WAL was empty: nothing to keep
    rows = [("*** in database main ***\nOn tree page 5 cell 59: out of order\nOn tree page 5 cell 58: x",)]
    assert check_reason(rows) == "On tree page 5 cell 59: out of order, and 1 more problem"
    assert check_reason([("row 1 missing from index a",), ("row 2 missing from index a",)]) == (
        "row 1 missing from index a, and 1 more problem"
    )
