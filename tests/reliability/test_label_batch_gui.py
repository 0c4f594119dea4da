"""The Label page labels a big selection in a worker, updates the gallery once, and undoes it in one step."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from label_batch_data import fail_aside
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from labeltune.core.project import Project
from labeltune.core.sample import Sample
from labeltune.core.settings import Settings
from labeltune.ui import label_batch
from labeltune.ui.label_page import LabelPage
from labeltune.ui.session import ProjectSession

N = 20_000
CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def big_project(tmp_path: Path) -> Path:
    """A project of 20 000 readable images (hard links to one PNG): odd ones imported as ``cat``."""
    images = tmp_path / "images"
    images.mkdir()
    first = images / "img00000.png"
    Image.new("RGB", (16, 16), (90, 140, 60)).save(first)
    for i in range(1, N):
        os.link(first, images / f"img{i:05d}.png")
    with Project.create(tmp_path / "proj", classes=["cat", "dog"]) as project:
        project.add_samples(Sample(images / f"img{i:05d}.png", "cat" if i % 2 else None) for i in range(N))
    return tmp_path / "proj"


@pytest.fixture
def page(qtbot: QtBot, big_project: Path) -> Iterator[LabelPage]:
    session = ProjectSession(Settings())
    label_page = LabelPage(session)
    qtbot.addWidget(label_page)
    label_page.resize(1100, 700)
    label_page.show()
    session.open(big_project)
    qtbot.waitUntil(lambda: label_page.model.rowCount() == N, timeout=30_000)
    yield label_page
    label_page.shutdown()
    session.close()


def _labels(page: LabelPage) -> list[tuple[str | None, str | None]]:
    """Every sample's label and source, as a second connection sees them (committed)."""
    project = page.session.require()
    with sqlite3.connect(project.folder / "labeltune.sqlite") as conn:
        return conn.execute("SELECT label, label_source FROM samples ORDER BY id").fetchall()


def test_a_big_selection_is_labeled_in_a_worker_and_undone_in_one_step(
    qtbot: QtBot, page: LabelPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = page.session.require()
    before = _labels(page)
    emitted: list[list[int]] = []
    page.session.labels_changed.connect(emitted.append)
    resets: list[int] = []
    page.model.modelReset.connect(lambda: resets.append(page.model.rowCount()))
    threads: list[threading.Thread] = []
    gui_ran = threading.Event()  # set by a timer in the GUI thread while the batch is being written
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: (ticks.append(1), len(ticks) >= 3 and gui_ran.set()))
    real_assign = project.assign_labels

    def assign_while_the_gui_ticks(*args: Any, **kwargs: Any) -> list[int]:
        threads.append(threading.current_thread())
        assert gui_ran.wait(30), "the GUI thread did not run while the batch was written"
        return real_assign(*args, **kwargs)

    monkeypatch.setattr(project, "assign_labels", assign_while_the_gui_ticks)
    page.gallery.setFocus()
    page.gallery.selectAll()
    assert len(page.gallery.selected_sample_ids()) == N
    timer.start(5)
    with qtbot.waitSignal(page.labeling.batches.tasks.finished, timeout=60_000):
        qtbot.keyClick(page.gallery, Qt.Key.Key_2)
        assert page.status_label.text() == f"Labeling {N:,} images…"
        qtbot.keyClick(page.gallery, Qt.Key.Key_1)  # a second batch while one runs: refused, clearly
        assert page.status_label.text() == f"Still labeling {N:,} images… Wait until it is done."
        assert not page.class_panel.isEnabled()  # no class renamed under a running batch
    timer.stop()
    assert page.class_panel.isEnabled()

    assert threads and threads[0] is not threading.main_thread() and gui_ran.is_set()
    assert _labels(page) == [("dog", "human")] * N
    assert emitted == [project.sample_ids()]  # the gallery was told once, with every sample
    assert resets == [N]  # ... and read its rows again once (not 20 000 signals)
    assert page.class_panel.counts() == {"cat": 0, "dog": N}
    assert page.status_label.text().startswith(f"{N:,} images → dog")

    with qtbot.waitSignal(page.labeling.batches.tasks.finished, timeout=60_000):
        qtbot.keyClick(page.gallery, Qt.Key.Key_Z, CTRL)  # Ctrl+Z: one step, in the worker too
        assert page.status_label.text() == f"Undoing the labels of {N:,} images…"
    assert _labels(page) == before  # each image its own label and source back
    assert before[:2] == [(None, None), ("cat", "import")]
    assert len(emitted) == 2 and len(emitted[1]) == N
    assert page.status_label.text() == f"Undid the labels of {N:,} images"
    assert page.class_panel.counts() == {"cat": N // 2, "dog": 0}

    with qtbot.waitSignal(page.labeling.batches.tasks.finished, timeout=60_000):
        qtbot.keyClick(page.gallery, Qt.Key.Key_Z, CTRL | SHIFT)
    assert page.class_panel.counts() == {"cat": 0, "dog": N}
    assert project.next_undo_size() == N and not project.can_redo()


def test_a_failed_batch_is_shown_and_changes_nothing(
    qtbot: QtBot, page: LabelPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = page.session.require()
    before = _labels(page)
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(
        label_batch, "show_error", lambda _parent, title, message, _details="": shown.append((title, message))
    )
    fail_aside(project, monkeypatch, sqlite3.OperationalError("database or disk is full"), fail_at=2)
    emitted: list[list[int]] = []
    page.session.labels_changed.connect(emitted.append)
    page.gallery.setFocus()
    page.gallery.selectAll()
    with qtbot.waitSignal(page.labeling.batches.tasks.failed, timeout=60_000):
        qtbot.keyClick(page.gallery, Qt.Key.Key_2)
    message = f"cannot save the labels in {project.folder}: database or disk is full; nothing was changed"
    assert shown == [("Cannot change the labels", message)]
    assert page.status_label.text() == f"Not saved: {message}"
    assert _labels(page) == before and emitted == [] and not project.can_undo()
    monkeypatch.undo()
    with qtbot.waitSignal(page.labeling.batches.tasks.finished, timeout=60_000):
        qtbot.keyClick(page.gallery, Qt.Key.Key_2)  # the page works on: the same key now labels
    assert page.class_panel.counts() == {"cat": 0, "dog": N}


def test_closing_the_project_waits_for_a_running_batch(
    qtbot: QtBot, page: LabelPage, big_project: Path
) -> None:
    page.gallery.setFocus()
    page.gallery.selectAll()
    qtbot.keyClick(page.gallery, Qt.Key.Key_2)
    assert page.labeling.batches.busy()
    page.session.close()  # the key press was handled: its batch is committed whole, not stopped
    with Project.open(big_project) as project:
        assert project.counts() == {"cat": 0, "dog": N}
    qtbot.waitUntil(lambda: not page.labeling.batches.busy(), timeout=30_000)
    assert page.session.project is None and page.model.rowCount() == 0
