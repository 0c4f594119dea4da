"""Labeling a big selection is one transaction and one undo step (issue 13, docs/adr/0039)."""

from __future__ import annotations

import errno
import sqlite3
import threading
from pathlib import Path

import pytest
from label_batch_data import FailingConnection, fail_aside, many_samples_project, store_dump, trace_statements

from labeltune.core import project_store
from labeltune.core.errors import LabelTuneError, UnusableInputError
from labeltune.core.progress import Progress, StoppedError
from labeltune.core.project_store.labels import BATCH_ROWS

N = 100_000


def _labels_and_sources(project: object) -> list[tuple[str | None, str | None]]:
    conn = project._db()  # type: ignore[attr-defined]
    return conn.execute("SELECT label, label_source FROM samples ORDER BY id").fetchall()


def test_100000_items_are_one_transaction_and_one_undo_step(tmp_path: Path) -> None:
    project = many_samples_project(tmp_path / "p", N)
    ids = project.sample_ids()
    assert project.set_labels(ids[1::3], "b") == ids[1::3]  # a first batch: human "b" on a third
    before = _labels_and_sources(project)
    history_rows = len(store_dump(project)["labels"])
    statements: list[str] = []
    trace_statements(project, statements.append)
    reports: list[Progress] = []

    changed = project.set_labels(ids, "c", progress=reports.append)

    assert changed == ids
    assert [s for s in statements if s.split()[0] in ("BEGIN", "COMMIT", "ROLLBACK")] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]
    assert project.counts() == {"a": 0, "b": 0, "c": N}
    assert len(store_dump(project)["labels"]) == history_rows + N  # one history row per sample
    assert reports[-1] == Progress("labeling", N, N, f"Labeling {N:,} items…")
    assert len(reports) == N // BATCH_ROWS

    statements.clear()
    change = project.undo()  # ONE step gives every sample its own label and source back
    assert change is not None and change.items == tuple(ids) and change.before == "c"
    assert change.after == "a" and change.path == project.folder / "img000000.png"
    assert [s for s in statements if s.split()[0] in ("BEGIN", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]
    assert _labels_and_sources(project) == before
    assert before[:3] == [("a", "import"), ("b", "human"), (None, None)]
    assert project.can_undo()  # the first batch is the next step
    history = project.label_history(ids[0])
    assert [(e.value, e.source, e.note) for e in history] == [
        ("a", "import", None),
        ("c", "human", None),
        ("a", "import", "undo"),  # an imported label stays one an import may update
    ]

    change = project.redo()
    assert change is not None and change.items == tuple(ids) and change.after == "c"
    assert project.counts() == {"a": 0, "b": 0, "c": N}
    assert project.label_history(ids[2])[-1].note == "redo"
    assert project.next_undo_size() == N and project.next_undo_size(redo=True) == 0
    project.close()


def test_a_batch_of_one_sample_is_the_same_step_as_set_label(tmp_path: Path) -> None:
    with many_samples_project(tmp_path / "p", 5) as project:
        ids = project.sample_ids()
        project.set_label(ids[2], "b")
        assert project.set_labels([ids[2], ids[1]], "b") == [ids[1]]  # ids[2] is "b" already: no-op
        assert project.next_undo_size() == 1
        change = project.undo()
        assert change is not None and change.items == (ids[1],) and change.batch == ()
        history = [(e.value, e.source, e.note) for e in project.label_history(ids[1])]
        assert history[-1] == (None, "human", "undo")  # as set_label's undo writes it
        assert project.next_undo_size() == 1 and project.label_of(ids[2]) == "b"


def test_undo_gives_back_a_source_the_batch_changed_alone(tmp_path: Path) -> None:
    with many_samples_project(tmp_path / "p", 6) as project:
        ids = project.sample_ids()  # ids[0] and ids[3] were imported as "a"
        assert project.set_labels([ids[0], ids[3]], "a") == [ids[0], ids[3]]  # same label, now a person's
        assert not project.can_undo()  # no label changed: no undo step, as set_label
        project.set_label(ids[3], "a", source="import")
        conn = project._db()
        before = conn.execute("SELECT label, label_source FROM samples ORDER BY id").fetchall()
        assert before[3:5] == [("a", "import"), (None, None)]
        assert project.set_labels(ids[3:5], "a") == ids[3:5]  # ids[3]: its source only; ids[4]: its label
        assert conn.execute("SELECT label_source FROM samples WHERE id = ?", (ids[3],)).fetchone() == (
            "human",
        )
        project.undo()  # one step: ids[3] is the import's "a" again, ids[4] unlabeled as before
        assert conn.execute("SELECT label, label_source FROM samples ORDER BY id").fetchall() == before


def test_unknown_samples_and_classes_change_nothing(tmp_path: Path) -> None:
    with many_samples_project(tmp_path / "p", 20) as project:
        ids = project.sample_ids()
        snapshot = store_dump(project)
        with pytest.raises(UnusableInputError, match="999999 is not a sample"):
            project.set_labels([*ids, 999_999], "b")
        with pytest.raises(UnusableInputError, match="unknown class 'zebra'"):
            project.set_labels(ids, "zebra")
        assert store_dump(project) == snapshot and not project.can_undo()
        project.assign_labels({ids[0]: "zebra", "img000001.png": "b"}, create_class=True)
        assert project.classes == ["a", "b", "c", "zebra"]
        assert (project.label_of(ids[0]), project.label_of(ids[1])) == ("zebra", "b")
        assert project.next_undo_size() == 2


@pytest.mark.parametrize(
    "error",
    [sqlite3.OperationalError("database or disk is full"), OSError(errno.ENOSPC, "No space left on device")],
)
def test_a_failure_in_the_middle_leaves_the_store_as_before(
    tmp_path: Path, error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 3 * BATCH_ROWS
    with many_samples_project(tmp_path / "p", count) as project:
        ids = project.sample_ids()
        project.set_labels(ids[:10], "b")
        snapshot = store_dump(project)
        connections = fail_aside(project, monkeypatch, error, fail_at=2)  # one slice written, then it fails
        with pytest.raises(LabelTuneError) as raised:
            project.set_labels(ids, "c")
        assert connections[0].calls == 2
        reason = "disk full" if isinstance(error, OSError) else str(error)  # said in words (ADR 0042)
        assert (
            str(raised.value) == f"cannot save the labels in {project.folder}: {reason}; nothing was changed"
        )
        assert store_dump(project) == snapshot
        assert project.next_undo_size() == 10  # the undo stack holds the earlier batch, nothing new
        monkeypatch.undo()
        project.undo()
        assert project.counts()["b"] == 0


def test_a_small_batch_fails_as_cleanly_on_the_shared_connection(tmp_path: Path) -> None:
    with many_samples_project(tmp_path / "p", 30) as project:
        snapshot = store_dump(project)
        real = project._conn
        assert real is not None
        project._conn = FailingConnection(real, sqlite3.OperationalError("disk I/O error"), 1)  # type: ignore[assignment]
        with pytest.raises(LabelTuneError, match="disk I/O error; nothing was changed"):
            project.set_labels(project.sample_ids(), "b")
        project._conn = real
        assert store_dump(project) == snapshot and not project.can_undo()


def test_a_big_batch_on_a_pulled_drive_is_refused_not_written_into_the_void(tmp_path: Path) -> None:
    """The big batch's own connection checks its database as the shared one does (ADR 0042)."""
    import shutil

    project = many_samples_project(tmp_path / "p", 2 * BATCH_ROWS)
    ids = project.sample_ids()
    shutil.rmtree(project.folder)  # the USB stick pulled: SQLite would write into the unlinked file
    with pytest.raises(LabelTuneError, match="was a drive removed"):
        project.set_labels(ids, "b")
    assert not project.can_undo()
    project.close()


def test_readers_go_on_while_a_big_batch_writes(tmp_path: Path) -> None:
    """The GUI thread reads through the shared connection while a worker writes a big batch."""
    with many_samples_project(tmp_path / "p", 2 * BATCH_ROWS) as project:
        ids = project.sample_ids()
        seen: list[object] = []

        def read_from_another_thread(_progress: Progress) -> None:
            if not seen:  # mid-transaction: the first slice is written, not committed
                reader = threading.Thread(
                    target=lambda: seen.append((project.label_of(ids[1]), project.counts()))
                )
                reader.start()
                reader.join(30)
                seen.append(reader.is_alive())

        project.set_labels(ids, "b", progress=read_from_another_thread)
        assert seen == [(None, {"a": len(ids) // 3 + 1, "b": 0, "c": 0}), False]  # the labels before it
        assert project.counts()["b"] == len(ids)


def test_a_class_that_cannot_be_saved_leaves_the_store_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with many_samples_project(tmp_path / "p", 50) as project:
        snapshot = store_dump(project)

        def disk_full(path: Path, text: str) -> None:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(project_store.base, "write_text_atomic", disk_full)
        with pytest.raises(LabelTuneError, match="disk full"):
            project.set_labels(project.sample_ids(), "new", create_class=True)
        assert store_dump(project) == snapshot and not project.can_undo()


def test_a_failed_undo_stays_undoable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with many_samples_project(tmp_path / "p", 2 * BATCH_ROWS) as project:
        ids = project.sample_ids()
        project.set_labels(ids, "b")
        snapshot = store_dump(project)
        fail_aside(project, monkeypatch, sqlite3.OperationalError("disk I/O error"), fail_at=2)
        with pytest.raises(LabelTuneError, match=r"cannot undo the labels in .*disk I/O error"):
            project.undo()
        monkeypatch.undo()
        assert store_dump(project) == snapshot
        assert project.next_undo_size() == len(ids)
        assert project.undo() is not None and project.counts()["b"] == 0


def test_stopping_a_batch_part_way_changes_nothing(tmp_path: Path) -> None:
    with many_samples_project(tmp_path / "p", 3 * BATCH_ROWS) as project:
        snapshot = store_dump(project)
        stop = threading.Event()
        with pytest.raises(StoppedError):
            project.set_labels(project.sample_ids(), "b", progress=lambda _p: stop.set(), stop_event=stop)
        assert store_dump(project) == snapshot and not project.can_undo()


def test_excluding_a_selection_is_one_transaction(tmp_path: Path) -> None:
    with many_samples_project(tmp_path / "p", 3 * BATCH_ROWS) as project:
        ids = project.sample_ids()
        assert project.set_excluded(ids[:10]) == ids[:10]
        statements: list[str] = []
        project._db().set_trace_callback(statements.append)
        changed = project.set_excluded([*ids, "img000003.png"])  # ids and a path; the first ten already are
        project._db().set_trace_callback(None)
        assert changed == ids[10:]
        assert [s for s in statements if s.split()[0] in ("BEGIN", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]
        assert project.excluded_ids() == set(ids)
        snapshot = store_dump(project)
        with pytest.raises(UnusableInputError, match="999999 is not a sample"):
            project.set_excluded([ids[0], 999_999], excluded=False)
        assert store_dump(project) == snapshot
        assert project.set_excluded(["img000001.png", ids[2]], excluded=False) == [ids[1], ids[2]]
        assert project.excluded_ids() == set(ids) - {ids[1], ids[2]}
