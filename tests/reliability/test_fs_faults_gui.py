"""Labeling in the app on a failing disk: the user sees why, and the gallery shows what the store holds.

The fault is armed on the open project's connection (sqlite_faults.arm: SQLite's own errors, or the project
folder really deleted), then a key press labels (docs/adr/0042).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_faults
from fault_projects import image_project
from fs_faults import FAULTS, REASONS
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from labeltune.core.project import DB_FILE, Project
from labeltune.core.settings import Settings
from labeltune.ui.label_page import LabelPage
from labeltune.ui.session import ProjectSession

CODES = list(FAULTS.values())
IDS = list(FAULTS)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    project = image_project(tmp_path / "proj")
    yield project
    project.close()


@pytest.fixture
def page(qtbot: QtBot, project: Project) -> Iterator[LabelPage]:
    session = ProjectSession(Settings())
    label_page = LabelPage(session)
    qtbot.addWidget(label_page)
    label_page.resize(900, 600)
    label_page.show()
    session.adopt(project)
    yield label_page
    label_page.shutdown()


def _error_texts(parent: QWidget) -> list[str]:
    return [box.text() for box in parent.findChildren(QMessageBox) if box.objectName() == "errorBox"]


def _shown_labels(page: LabelPage, ids: list[int]) -> list[str | None]:
    return [page.model.label(page.model.row_of(i)) for i in ids]


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_a_label_key_on_a_failing_disk_shows_why_and_the_gallery_does_not_lie(
    qtbot: QtBot, page: LabelPage, project: Project, code: int
) -> None:
    ids = project.sample_ids()
    page.gallery.select_row(page.model.row_of(ids[2]))
    assert page.session.current_id == ids[2]
    project._conn = sqlite_faults.arm(project._conn, code, project.folder)  # type: ignore[assignment]
    qtbot.keyClick(page.gallery, Qt.Key.Key_2)
    texts = _error_texts(page)
    assert len(texts) == 1
    assert str(project.folder / DB_FILE) in texts[0] and REASONS[code] in texts[0]
    assert [project.label_of(i) for i in ids] == ["cat", None, None]
    assert _shown_labels(page, ids) == ["cat", None, None]
    assert page.session.current_id == ids[2]  # no advance past an image that was not labeled


def test_a_selection_labeled_on_a_full_disk_is_saved_whole_or_not_at_all(
    qtbot: QtBot, page: LabelPage, project: Project
) -> None:
    """Three images selected, the disk full: one transaction (ADR 0039), none changes, the user is told."""
    ids = project.sample_ids()
    before = [project.label_of(i) for i in ids]
    project._conn = sqlite_faults.arm(project._conn, errno.ENOSPC, project.folder)  # type: ignore[assignment]
    page.gallery.selectAll()
    assert sorted(page.gallery.selected_sample_ids()) == sorted(ids)
    qtbot.keyClick(page.gallery, Qt.Key.Key_2)
    assert len(_error_texts(page)) == 1 and REASONS[errno.ENOSPC] in _error_texts(page)[0]
    stored = [project.label_of(i) for i in ids]
    assert stored == before  # nothing half-saved
    assert _shown_labels(page, ids) == stored


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_an_xrd_tick_on_a_failing_disk_shows_why_and_the_ticks_show_the_disk(
    qtbot: QtBot, tmp_path: Path, code: int
) -> None:
    from fault_projects import xrd_project
    from fs_faults import inject, snapshot

    from labeltune.ui.xrd_page import XrdPage

    folder = xrd_project(tmp_path / "xrd").folder
    page = XrdPage()
    qtbot.addWidget(page)
    page.resize(1100, 700)
    page.show()
    page.open(folder)
    assert page.project is not None
    second = page.project.patterns()[1]
    page.patterns_panel.select(second)
    assert page.current_path() == second
    before = snapshot(folder)
    with inject(code, folder) as hits:
        page.phase_panel.set_ticked("B_2", True)  # a tick saves at once
        page.set_label(["A_1"])  # a suggestion taken: the same, not an exception in a slot
    boxes = [box.text() for box in page.findChildren(QMessageBox) if box.objectName() == "errorBox"]
    assert hits and len(boxes) == 2
    assert all(str(folder / "labels.csv") in text and REASONS[code] in text for text in boxes)
    assert page.phase_panel.ticked() == []  # what labels.csv holds
    assert page.project.labels(second).phases == ()
    assert snapshot(folder) == before
    page.shutdown()


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_adding_a_class_on_a_failing_disk_shows_why_and_keeps_the_classes(
    page: LabelPage, project: Project, code: int
) -> None:
    from fs_faults import inject, snapshot

    before = snapshot(project.folder)["project.json"]
    with inject(code, project.folder) as hits:
        added = page.class_panel.add_class("bird")
    texts = _error_texts(page.class_panel)
    assert hits and not added and len(texts) == 1
    assert str(project.folder / "project.json") in texts[0] and REASONS[code] in texts[0]
    assert project.classes == ["cat", "dog"]
    assert snapshot(project.folder)["project.json"] == before


def test_a_worker_that_meets_a_raw_os_error_says_it_in_words(qtbot: QtBot, tmp_path: Path) -> None:
    """The backstop for a disk failure no core function worded: the worker's failed message."""
    from labeltune.workers.tasks import FunctionWorker, TaskController

    target = tmp_path / "out.csv"

    def job(progress: Any, stop: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    controller = TaskController()
    with qtbot.waitSignal(controller.failed, timeout=10000) as blocker:
        controller.start(FunctionWorker(job))
    assert blocker.args[0] == f"{target}: disk full"


@pytest.mark.parametrize("code", [FAULTS["read-only"], FAULTS["disk full"]], ids=["read-only", "disk full"])
def test_training_in_a_failing_project_folder_says_why_and_leaves_no_run(
    qtbot: QtBot, tmp_path: Path, code: int
) -> None:
    from fs_faults import inject

    from conftest import write_class_folder
    from labeltune.core.datasets import scan
    from labeltune.ui.train_panel import TrainPanel

    data = write_class_folder(tmp_path / "data", classes=2, per_class=6, size=32)
    with Project.create(tmp_path / "proj") as created:
        created.add_source(data)
        created.add_samples(scan(data).samples)
        created.save_settings(train={"choices": {"backbone": "resnet18", "weights": "none", "epochs": 1}})
    session = ProjectSession(Settings(backbone="resnet18", weights="none", epochs=1, batch_size=8))
    session.open(tmp_path / "proj")
    panel = TrainPanel(session)
    qtbot.addWidget(panel)
    panel.form.input_size_spin.setValue(32)
    panel.show()
    before = (tmp_path / "proj" / "project.json").read_bytes()
    try:
        with (
            inject(code, tmp_path / "proj") as hits,
            qtbot.waitSignal(panel.controller.failed, timeout=120_000),
        ):
            panel.start()  # the form's choices cannot be saved in project.json: training starts all the same
        qtbot.waitUntil(lambda: not panel.is_running(), timeout=30_000)
    finally:
        panel.shutdown()
    texts = _error_texts(panel)
    assert hits and len(texts) == 1
    assert str(tmp_path / "proj" / "runs") in texts[0] and REASONS[code] in texts[0]
    assert (tmp_path / "proj" / "project.json").read_bytes() == before
    assert not (tmp_path / "proj" / "runs").exists() or list((tmp_path / "proj" / "runs").iterdir()) == []
    session.close()
