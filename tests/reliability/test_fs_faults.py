"""Disk full, read-only, permission denied, folder gone: one clear line, previous state intact (ADR 0042).

Tests and CI run as root, so ``chmod`` proves nothing: the faults are injected at the file-system calls
(``fs_faults.inject``) and at SQLite (``sqlite_faults.arm``: real SQLite errors, a really deleted folder).
Each case checks the words the user reads (the path and the reason), the exit status 2 with no traceback
on the command line, and that what was there before is still there, byte for byte.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
import sqlite_faults
from fault_projects import image_project, xrd_project
from fs_faults import FAULTS, REASONS, inject, snapshot, temp_files

from labeltune import cli
from labeltune.core.errors import StorageError
from labeltune.core.file_problems import storage_error, storage_reason
from labeltune.core.project import DB_FILE, Project

CODES = list(FAULTS.values())
IDS = list(FAULTS)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    err = capsys.readouterr().err
    return code, err


def _assert_one_line(err: str, path: Path | str, code: int) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0], err
    assert REASONS[code] in lines[0], err


# ---------------------------------------------------------------------- the one describer
@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_an_os_error_is_worded_once_with_its_path(tmp_path: Path, code: int) -> None:
    target = tmp_path / ("gone" if code == errno.ENOENT else "here") / "labels.csv"
    if code != errno.ENOENT:
        target.parent.mkdir()
    error = storage_error(OSError(code, "raw text", str(target)))
    assert isinstance(error, StorageError) and isinstance(error, OSError)
    assert str(error) == f"cannot write {target}: {REASONS[code]}"
    assert error.errno == code


def test_sqlite_errors_are_worded_by_their_result_code_and_sql_mistakes_are_not(tmp_path: Path) -> None:
    conn = sqlite3_connect(tmp_path / "x.sqlite")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("PRAGMA query_only = 1")
    with pytest.raises(Exception) as read_only:
        conn.execute("INSERT INTO t VALUES (1)")
    assert storage_reason(read_only.value) == "read-only"
    with pytest.raises(Exception) as typo:
        conn.execute("SELEKT 1")
    assert storage_reason(typo.value) is None


def sqlite3_connect(path: Path):  # type: ignore[no-untyped-def]
    import sqlite3

    return sqlite3.connect(path)


# ---------------------------------------------------------------------- (a) labeling an image project
@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_image_label_fails_clearly_and_keeps_the_store(tmp_path: Path, code: int) -> None:
    project = image_project(tmp_path / "proj")
    db = project.folder / DB_FILE
    ids = project.sample_ids()
    project.set_label(ids[1], "dog")
    project._conn = sqlite_faults.arm(project._conn, code, project.folder)  # type: ignore[assignment]
    with pytest.raises(StorageError) as caught:
        project.set_label(ids[2], "dog")
    assert str(db) in str(caught.value) and REASONS[code] in str(caught.value)
    assert [project.label_of(i) for i in ids] == ["cat", "dog", None]  # nothing half-done
    assert not project.can_redo() and project.can_undo()  # the failed change is not on the undo stack
    project.close()
    if code != errno.ENOENT:
        with Project.open(project.folder) as again:
            assert [again.label_of(i) for i in ids] == ["cat", "dog", None]


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_cli_label_exits_2_with_one_line(
    tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    project = image_project(tmp_path / "proj")
    image = project.sample(project.sample_ids()[2]).path
    folder = project.folder
    project.close()
    with sqlite_faults.on_connect(code, folder / DB_FILE) as armed:
        status, err = _cli(["label", str(folder), str(image), "--as", "dog"], capsys)
    assert armed, "the fault was never armed"
    assert status == 2
    _assert_one_line(err, folder / DB_FILE, code)
    if code != errno.ENOENT:
        with Project.open(folder) as again:
            assert again.label_of(image) is None


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_project_json_write_fails_clearly_and_keeps_the_old_file(tmp_path: Path, code: int) -> None:
    """A new class is written to project.json (temp file + rename): the old file stays, no temp is left."""
    project = image_project(tmp_path / "proj")
    before = (project.folder / "project.json").read_bytes()
    with inject(code, project.folder) as hits, pytest.raises(StorageError) as caught:
        project.add_class("bird")
    assert hits
    assert "project.json" in str(caught.value) and REASONS[code] in str(caught.value)
    assert (project.folder / "project.json").read_bytes() == before
    assert project.classes == ["cat", "dog"]
    assert temp_files(project.folder) == []
    project.close()


def test_helpers_prove_their_faults(tmp_path: Path) -> None:
    """The injection reaches the calls it promises, and only under its folder."""
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    (inside / "old.txt").write_text("old")
    with inject(errno.EROFS, inside) as hits:
        (outside / "fine.txt").write_text("ok")
        with pytest.raises(OSError) as raised:
            (inside / "new.txt").write_text("x")
        assert raised.value.errno == errno.EROFS
        with pytest.raises(OSError):
            (outside / "fine.txt").replace(inside / "moved.txt")
    assert len(hits) == 2
    with inject(errno.ENOSPC, inside) as hits, pytest.raises(OSError):
        (inside / "old.txt").write_text("new")
    assert (inside / "old.txt").read_text() == ""  # an in-place writer loses the old content on a full disk
    assert snapshot(outside) == {"fine.txt": b"ok"}
    shutil.rmtree(inside)


# ---------------------------------------------------------------------- (b) labeling an XRD project
@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_xrd_label_fails_clearly_and_keeps_labels_csv_and_history(tmp_path: Path, code: int) -> None:
    project = xrd_project(tmp_path / "proj")
    first, second = project.patterns()
    before = snapshot(project.folder)
    with inject(code, project.folder) as hits, pytest.raises(StorageError) as caught:
        project.set_label(second, ["B_2"])
    assert hits
    assert str(project.labels_file) in str(caught.value) and REASONS[code] in str(caught.value)
    assert snapshot(project.folder) == before  # labels.csv and label_history.jsonl byte-identical
    assert temp_files(project.folder) == []
    assert project.labels(second).phases == () and project.labels(first).phases == ("A_1",)
    assert project.can_undo() and not project.can_redo()
    assert (
        project.undo() is not None
    )  # the undo stack holds the last change that was saved, not the failed one
    assert project.labels(first).phases == ()


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_cli_xrd_label_exits_2_with_one_line(
    tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    project = xrd_project(tmp_path / "proj")
    second = project.patterns()[1]
    before = snapshot(project.folder)
    with inject(code, project.folder) as hits:
        status, err = _cli(["label", str(project.folder), str(second), "--as", "B_2"], capsys)
    assert hits and status == 2
    _assert_one_line(err, project.labels_file, code)
    assert snapshot(project.folder) == before


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_cli_new_project_on_a_failing_disk_exits_2_with_one_line(
    tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = tmp_path / "projects"
    parent.mkdir()
    data = image_project(tmp_path / "seed").folder.parent / "seed-images"
    with inject(code, parent) as hits:
        status, err = _cli(["project", "new", str(parent / "new"), "--from", str(data)], capsys)
    assert hits and status == 2, err
    _assert_one_line(err, parent / "new", code)
    assert list(parent.iterdir()) == []
