"""One messy image corpus (corpus_images.py) through every stage once: scan, project, the import dialog,
the gallery, training, prediction and the CSV readers.

Each stage must use every usable file, name every bad one with its reason, exit as documented (0 with
the skipped files listed; 2 and one line when the input as a whole is unusable) and never show a
traceback. The command line runs in-process with a UTF-8 stdout that, like a terminal's, refuses what is
not text (Python's default under a UTF-8 locale), so a name that cannot be printed fails here too.
"""

from __future__ import annotations

import builtins
import contextlib
import csv
import errno
import faulthandler
import io
import json
import os
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from corpus_images import CLASSES, Kind, by_name, corpus_root, folder_kinds, shown, write_corpus
from PIL import Image

from labeltune import cli
from labeltune.core import datasets
from labeltune.core.datasets import scan
from labeltune.core.project import DB_FILE, Project

pytestmark = pytest.mark.filterwarnings(r"ignore::UserWarning:PIL\.")

FAST = ["--backbone", "resnet18", "--weights", "none", "--input-size", "32", "--seed", "0", "--threads", "1"]
WAIT = 30000


# ------------------------------------------------------------------------------------------ helpers


def run_cli(*args: object) -> tuple[int, str, str]:
    """Run ``labeltune ARGS`` in-process: exit code, stdout, stderr (stdout strict, as a UTF-8 terminal's)."""
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace", write_through=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    # a name that is not UTF-8 goes out as its own bytes (as ls prints it); shown here as U+FFFD
    stdout = out_bytes.getvalue().decode("utf-8", "replace")
    stderr = err_bytes.getvalue().decode("utf-8")
    assert "Traceback" not in stdout + stderr
    return code, stdout, stderr


def _opened_path(file: object) -> str | None:
    if isinstance(file, str | bytes | os.PathLike):
        return os.path.abspath(os.fsdecode(file))
    return None


@contextlib.contextmanager
def file_access(refuse: Path) -> Iterator[list[str]]:
    """Opening ``refuse`` fails with EACCES (tests run as root: ``chmod`` proves nothing); yields every
    path opened meanwhile."""
    real_open = builtins.open
    refused = os.path.abspath(refuse)
    opened: list[str] = []

    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        path = _opened_path(file)
        if path is not None:
            opened.append(path)
            if path == refused:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", fake_open)
        yield opened


@contextlib.contextmanager
def truncated(path: Path) -> Iterator[None]:
    """``path`` cut to half its bytes (the camera card was still being written), restored afterwards."""
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    try:
        yield
    finally:
        path.write_bytes(whole)


def _used(kinds: list[Kind], leave_out: tuple[str, ...] = ()) -> list[Kind]:
    return [k for k in folder_kinds(kinds) if k.expected == "used" and k.name not in leave_out]


def _skipped(kinds: list[Kind]) -> list[Kind]:
    return [k for k in folder_kinds(kinds) if k.expected == "skipped"]


def _counts(kinds: list[Kind]) -> dict[str, int]:
    return dict(Counter(k.label for k in kinds if k.label is not None))


def _assert_skipped_listed(skipped: list[dict[str, str]], kinds: list[Kind], *extra: Kind) -> None:
    """``skipped`` (``path`` with ``reason`` or ``error``) names exactly the skipped kinds, with reasons."""
    reasons = {item["path"]: item.get("reason") or item["error"] for item in skipped}
    expected = _skipped(kinds) + list(extra)
    assert set(reasons) == {shown(k.path) for k in expected}
    for kind in expected:
        assert kind.reason in reasons[shown(kind.path)], kind.name


def _assert_stderr_names_each(err: str, kinds: list[Kind], limit: int = 10) -> None:
    """A ``  PATH: reason`` line per skipped kind (the first ``limit``; then how many more)."""
    lines = err.splitlines()
    named = 0
    for kind in kinds:
        hits = [line for line in lines if line.startswith(f"  {shown(kind.path)}: ")]
        assert len(hits) <= 1 and all(kind.reason in hit for hit in hits), (kind.name, err)
        named += len(hits)
    assert named == min(limit, len(kinds)), err
    if len(kinds) > limit:
        assert f"  ... and {len(kinds) - limit} more (use --json for the full list)" in lines


@pytest.fixture(scope="module", autouse=True)
def _no_hang() -> Iterator[None]:
    """A stage that hangs (a named pipe opened, a link loop followed) ends the run after 10 minutes with
    every thread's traceback, instead of stalling CI: pytest has no timeout of its own here."""
    faulthandler.dump_traceback_later(600, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Kind]:
    """The mixed corpus, written once for the module (stages put back what they change)."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def kinds(corpus: list[Kind]) -> dict[str, Kind]:
    return by_name(corpus)


def test_the_corpus_has_every_kind(corpus: list[Kind]) -> None:
    names = {k.name for k in corpus}
    assert len(names) == len(corpus) and len(names - {n for n in names if n.startswith("good_")}) >= 40
    assert Counter(k.expected for k in corpus) == {"used": 47, "skipped": 20, "ignored": 5}
    assert (corpus_root(corpus) / "healthy" / "loop").resolve() == corpus_root(corpus)


# ------------------------------------------------------------------------------------------ scan


def test_scan_names_every_bad_file_and_counts_the_rest(corpus: list[Kind], kinds: dict[str, Kind]) -> None:
    root = corpus_root(corpus)
    with file_access(kinds["unreadable"].path):
        code, out, err = run_cli("scan", root)
        json_code, json_out, _ = run_cli("scan", root, "--json")
    assert code == json_code == 0
    assert f"{len(_used(corpus))} labeled, 0 unlabeled, {len(_skipped(corpus))} skipped" in out
    _assert_stderr_names_each(err, _skipped(corpus))
    summary = json.loads(json_out)
    # the symlink loop adds nothing, the empty class folder is no class, the single image is one
    assert summary["classes"] == _counts(_used(corpus)) and summary["classes"]["single"] == 1
    assert "empty class" not in summary["classes"]
    _assert_skipped_listed(summary["skipped"], corpus)


def test_large_images_are_checked_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A 570 kB PNG of zeros unpacks to 14 000 x 14 000 pixels (780 MB; under the bomb limit, so a real
    # image): eight checked at once would take 6 GB. Here the threshold is lowered to small images.
    for i in range(6):
        Image.new("RGB", (120, 100), (i * 40, 90, 30)).save(tmp_path / f"scan {i}.png")
    Image.new("RGB", (20, 20)).save(tmp_path / "small.png")
    monkeypatch.setattr(datasets, "LARGE_CHECK_PIXELS", 10_000, raising=False)
    active, most, lock = [0], [0], threading.Lock()
    real_problem = datasets.file_problem

    def counted(path: Path, max_pixels: int) -> str | None:
        large = Path(path).name != "small.png"
        with lock:
            active[0] += large
            most[0] = max(most[0], active[0])
        time.sleep(0.02)  # gives another check the chance to overlap (no timing is asserted)
        with lock:
            active[0] -= large
        return real_problem(path, max_pixels)

    monkeypatch.setattr(datasets, "file_problem", counted)
    data = scan(tmp_path)
    assert len(data.samples) == 7 and data.skipped == []
    assert most[0] == 1


# ------------------------------------------------------------------------------------------ project


def test_project_new_imports_every_usable_file_under_its_class(
    corpus: list[Kind], kinds: dict[str, Kind], tmp_path: Path
) -> None:
    with file_access(kinds["unreadable"].path):
        code, out, err = run_cli("project", "new", tmp_path / "proj", "--from", corpus_root(corpus), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["classes"] == _counts(_used(corpus))
    _assert_skipped_listed(summary["skipped"], corpus)
    with Project.open(tmp_path / "proj") as project:
        stored = {(str(s.path), s.label) for s in project.samples()}
    assert stored == {(os.path.abspath(k.path), k.label) for k in _used(corpus)}
    # both copies of the duplicate are kept, each under its own class (the audit finds such pairs)
    assert {label for path, label in stored if path.endswith("twin.jpg")} == {"healthy", "rust"}


# ------------------------------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def trained(corpus: list[Kind], kinds: dict[str, Kind], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``features`` run on the corpus folder; ``changing.jpg`` is cut between the scan and training."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    changing = kinds["changes_while_read"].path
    real_scan = datasets.scan

    def scan_then_cut(*args: Any, **kwargs: Any) -> datasets.Dataset:
        data = real_scan(*args, **kwargs)
        stack.enter_context(truncated(changing))  # the card is rewritten while training starts
        return data

    with contextlib.ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets, "scan", scan_then_cut)
        # module-scoped: set up before conftest's per-test isolation, so isolate the user folders here
        for name in ("DATA", "CACHE", "CONFIG"):
            patch.setenv(f"LABELTUNE_{name}_DIR", str(run_dir.parent / name.lower()))
        with file_access(kinds["unreadable"].path):
            code, out, err = run_cli(
                "train", corpus_root(corpus), *FAST, "--epochs", "2", "--out", run_dir, "--json"
            )
    assert code == 0, err
    (run_dir.parent / "train-summary.json").write_text(out, encoding="utf-8")
    return run_dir


def test_training_uses_the_usable_files_and_reports_the_others(
    trained: Path, corpus: list[Kind], kinds: dict[str, Kind]
) -> None:
    summary = json.loads((trained.parent / "train-summary.json").read_text(encoding="utf-8"))
    used = _used(corpus, leave_out=("changes_while_read",))
    assert summary["classes"] == sorted(CLASSES.keys() | {"single"})
    assert summary["train_size"] + summary["val_size"] == len(used)
    with open(trained / "manifest.csv", newline="", encoding="utf-8") as handle:
        manifest = list(csv.DictReader(handle))
    assert {row["file"] for row in manifest} == {os.path.abspath(k.path) for k in used}
    assert {row["file"]: row["label"] for row in manifest} == {os.path.abspath(k.path): k.label for k in used}
    # the file cut after the scan is reported like the others, with what is wrong with it now
    changing = kinds["changes_while_read"]
    _assert_skipped_listed(
        summary["skipped"], corpus, Kind(changing.name, changing.path, "skipped", "truncated JPEG")
    )


# ------------------------------------------------------------------------------------------ prediction


def test_predict_over_the_corpus_folder(
    trained: Path, corpus: list[Kind], kinds: dict[str, Kind], tmp_path: Path
) -> None:
    out_csv = tmp_path / "predictions.csv"
    with file_access(kinds["unreadable"].path):
        code, out, err = run_cli("predict", trained, corpus_root(corpus), "--out", out_csv)
    assert code == 0, err  # documented: 0, the unreadable files listed on stderr
    used = {os.path.abspath(k.path) for k in _used(corpus)}
    assert {line.split("\t")[0] for line in out.splitlines()} == used
    assert all(line.split("\t")[1] in CLASSES.keys() | {"single"} for line in out.splitlines())
    _assert_stderr_names_each(err, _skipped(corpus))
    with open(out_csv, newline="", encoding="utf-8") as handle:
        assert {row["path"] for row in csv.DictReader(handle)} == used


def test_explain_names_a_bad_file_and_prints_a_name_that_is_not_text(
    trained: Path, kinds: dict[str, Kind], tmp_path: Path
) -> None:
    cut = kinds["truncated_jpeg"].path
    code, out, err = run_cli("explain", trained, cut, "--out", tmp_path / "cut.png")
    assert (code, out) == (2, "")
    assert err == f"labeltune: error: explain: {cut}: truncated JPEG (image data ends early)\n"
    # a file given by name is the user's choice: explained, its name printed as it is
    code, out, err = run_cli("explain", trained, kinds["non_utf8_name"].path, "--out", tmp_path / "odd.png")
    assert code == 0, err
    assert out.startswith("\ufffd\ufffd leaf.jpg: Grad-CAM for ") and (tmp_path / "odd.png").is_file()


# ------------------------------------------------------------------------------------------ CSV files


def test_a_csv_is_read_with_its_quirks_and_paths_outside_its_folder_are_refused_unread(
    corpus: list[Kind], kinds: dict[str, Kind]
) -> None:
    labels = kinds["csv_bom_extra_quoted"].path
    outside = [kinds["csv_parent_path"], kinds["csv_absolute_path"]]
    with file_access(Path("/nonexistent")) as opened:
        code, out, err = run_cli("scan", labels, "--json")
    assert code == 0, err
    summary = json.loads(out)
    # BOM, "Path,Label" capitalised, extra columns and a quoted name with a comma: all read
    assert summary["classes"] == {"Blatt fäule 葉": 1, "healthy": 2, "rust": 1}
    assert {item["path"]: item["reason"] for item in summary["skipped"]} == {
        "../outside.jpg": "outside the CSV's folder (not read)",
        "/etc/passwd": "outside the CSV's folder (not read)",
        "healthy/loop/../outside.jpg": "outside the CSV's folder (not read)",
    }
    assert not {str(k.path) for k in outside} & set(opened)


def test_a_csv_without_a_path_column_is_refused_with_one_line(kinds: dict[str, Kind]) -> None:
    code, out, err = run_cli("scan", kinds["csv_missing_column"].path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(kinds["csv_missing_column"].path) in err
    assert "'path' column" in err


def test_label_import_from_the_csv_reads_no_file_outside_its_folder(
    corpus: list[Kind], kinds: dict[str, Kind], tmp_path: Path
) -> None:
    root = corpus_root(corpus)
    with Project.create(tmp_path / "proj", classes=list(CLASSES)) as project:
        project.add_samples([s for s in scan(root).samples if s.path.parent.name in CLASSES])
    with sqlite3.connect(tmp_path / "proj" / DB_FILE) as conn:
        conn.execute("UPDATE samples SET label = NULL")
    with file_access(Path("/nonexistent")) as opened:
        code, out, err = run_cli(
            "labels", "import", tmp_path / "proj", kinds["csv_bom_extra_quoted"].path, "--json"
        )
    assert code == 0, err
    report = json.loads(out)
    assert report["changed"] == 4 and report["unmatched"] == []
    assert report["problems"] == [
        "../outside.jpg, line 6: outside the CSV's folder (not read)",
        "/etc/passwd, line 7: outside the CSV's folder (not read)",
        "healthy/loop/../outside.jpg, line 8: outside the CSV's folder (not read)",
    ]
    assert not {str(kinds["csv_parent_path"].path), "/etc/passwd"} & set(opened)
    with Project.open(tmp_path / "proj") as project:
        assert project.label_of(project.sample_id(root / "healthy" / "leaf, left.jpg")) == "healthy"


def test_label_import_from_the_class_folders_keeps_every_label(
    corpus: list[Kind], kinds: dict[str, Kind], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = corpus_root(corpus)
    project = tmp_path / "proj"
    with file_access(kinds["unreadable"].path):
        assert run_cli("project", "new", project, "--from", root)[0] == 0
    monkeypatch.chdir(root.parent)
    with file_access(kinds["unreadable"].path):
        code, out, err = run_cli("labels", "import", project, root.name, "--json")  # a relative folder
    assert code == 0, err
    report = json.loads(out)
    # every row names its item by path: nothing matched by content, nothing changed (the twins neither)
    assert (report["changed"], report["unchanged"], report["matched_by_content"]) == (
        0,
        len(_used(corpus)),
        0,
    )
    not_text = [kinds["non_utf8_name"], kinds["non_utf8_class_folder"]]
    reason = "file name is not valid UTF-8 text (rename the file)"
    assert sorted(report["problems"]) == sorted(f"{shown(k.path)}: {reason}" for k in not_text)
    # every other file of the folders is listed as naming no item (Thumbs.db too: labels may be of any kind)
    unmatched = {os.path.abspath(k.path) for k in _skipped(corpus) if k not in not_text}
    assert set(report["unmatched"]) == unmatched | {str(kinds["windows_thumbs_db"].path)}

    # a copy of the folder matches by content, but a photo filed under two classes names neither twin
    shutil.copytree(root, tmp_path / "copy", symlinks=True, ignore=shutil.ignore_patterns("pipe.jpg"))
    code, out, err = run_cli("labels", "import", project, tmp_path / "copy", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["changed"] == 0 and report["matched_by_content"] == report["unchanged"]
    assert {str(tmp_path / "copy" / c / "twin.jpg") for c in ("healthy", "rust")} <= set(report["unmatched"])
    with Project.open(project) as opened:
        assert {s.label for s in opened.samples() if s.path.name == "twin.jpg"} == {"healthy", "rust"}


def test_labeling_a_file_whose_name_is_not_text_says_so_in_one_line(
    corpus: list[Kind], kinds: dict[str, Kind], tmp_path: Path
) -> None:
    Project.create(tmp_path / "proj", classes=list(CLASSES)).close()
    path = kinds["non_utf8_name"].path
    code, out, err = run_cli("label", tmp_path / "proj", path, "--as", "rust")
    assert (code, out) == (2, "")
    assert err == f"labeltune: error: {shown(path)}: file name is not valid UTF-8 text (rename the file)\n"


# ------------------------------------------------------------------------------------------ the app


def test_import_dialog_shows_every_skipped_file_and_imports_the_rest(
    qtbot: Any, corpus: list[Kind], kinds: dict[str, Kind], tmp_path: Path
) -> None:
    from labeltune.core.settings import Settings
    from labeltune.ui.import_dialog import ImportDialog

    with file_access(kinds["unreadable"].path):
        dialog = ImportDialog(corpus_root(corpus), None, settings=Settings())
        qtbot.addWidget(dialog)
        with qtbot.waitSignal(dialog.scanned, timeout=WAIT):
            dialog.show()
    tree = dialog.skipped_tree
    rows = {
        tree.topLevelItem(i).toolTip(0): tree.topLevelItem(i).text(1) for i in range(tree.topLevelItemCount())
    }
    assert set(rows) == {shown(k.path) for k in _skipped(corpus)}
    assert all(k.reason in rows[shown(k.path)] for k in _skipped(corpus))
    assert dialog.skipped_button.isVisible()
    assert dialog.skipped_button.text().startswith(f"{len(_skipped(corpus))} files skipped")
    dialog.name_edit.setText("corpus")
    dialog.location_edit.setText(str(tmp_path / "app project"))
    with qtbot.waitSignal(dialog.accepted, timeout=WAIT):
        dialog.ok_button.click()
    assert dialog.project is not None
    try:
        assert dialog.project.counts() == _counts(_used(corpus))
    finally:
        dialog.project.close()


def test_import_dialog_lists_csv_rows_outside_its_folder(qtbot: Any, kinds: dict[str, Kind]) -> None:
    from labeltune.core.settings import Settings
    from labeltune.ui.import_dialog import ImportDialog

    with file_access(Path("/nonexistent")) as opened:
        dialog = ImportDialog(kinds["csv_bom_extra_quoted"].path, None, settings=Settings())
        qtbot.addWidget(dialog)
        with qtbot.waitSignal(dialog.scanned, timeout=WAIT):
            dialog.show()
    tree = dialog.skipped_tree
    rows = {
        tree.topLevelItem(i).text(0): tree.topLevelItem(i).text(1) for i in range(tree.topLevelItemCount())
    }
    assert rows == {
        "../outside.jpg": "outside the CSV's folder (not read)",
        "/etc/passwd": "outside the CSV's folder (not read)",
        "healthy/loop/../outside.jpg": "outside the CSV's folder (not read)",
    }
    assert not {str(kinds["csv_parent_path"].path), "/etc/passwd"} & set(opened)
    assert dialog.dataset is not None and dialog.dataset.counts() == {
        "Blatt fäule 葉": 1,
        "healthy": 2,
        "rust": 1,
    }


def test_gallery_shows_every_kept_item_or_a_placeholder_with_the_reason(
    qtbot: Any, corpus: list[Kind], kinds: dict[str, Kind], tmp_path: Path
) -> None:
    from PySide6.QtCore import Qt

    from labeltune.core.settings import Settings
    from labeltune.ui.gallery_model import THUMBNAIL_ERROR_ROLE, THUMBNAIL_STATE_ROLE
    from labeltune.ui.label_page import LabelPage
    from labeltune.ui.session import ProjectSession

    project = Project.create(tmp_path / "proj", classes=list(CLASSES))
    project.add_samples(scan(corpus_root(corpus)).samples)  # unreadable.jpg is readable now: imported
    session = ProjectSession(Settings())
    page = LabelPage(session)
    qtbot.addWidget(page)
    page.resize(900, 600)
    changing, locked = kinds["changes_while_read"].path, kinds["unreadable"].path
    with file_access(locked), truncated(changing):
        page.show()
        session.adopt(project)
        model = page.model
        indexes = [model.index(row) for row in range(model.rowCount())]

        def all_done() -> bool:
            for index in indexes:  # asks for each thumbnail (again, if scrolled-away requests were dropped)
                index.data(Qt.ItemDataRole.DecorationRole)
            return all(index.data(THUMBNAIL_STATE_ROLE) in ("ready", "failed") for index in indexes)

        try:
            qtbot.waitUntil(all_done, timeout=WAIT)
            failed = {
                Path(model.path(i.row())).name: i.data(THUMBNAIL_ERROR_ROLE)
                for i in indexes
                if i.data(THUMBNAIL_STATE_ROLE) == "failed"
            }
            page.grab()  # painting every state must not fail
        finally:
            page.shutdown()
            project.close()
    assert len(indexes) == len(_used(corpus)) + 1  # + the file readable at import, locked now
    assert failed == {
        "changing.jpg": "truncated JPEG (image data ends early)",
        "locked.jpg": "cannot be read (permission denied)",
    }
