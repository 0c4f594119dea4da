"""The Label tab's "Why": a heatmap over the large image once the worker finishes, off the GUI thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from labeltune.core import explain
from labeltune.core.datasets import scan
from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.core.train_config import TrainConfig
from labeltune.core.training import train
from labeltune.ui.heatmap_panel import PREDICTED
from labeltune.ui.label_page import LabelPage
from labeltune.ui.session import ProjectSession

TIMEOUT = 60_000


@pytest.fixture
def project(tmp_path: Path, image_folder: Callable[..., Path]) -> Iterator[Project]:
    """Two classes, a tiny recorded run and its stored predictions (what the gallery shows)."""
    folder = image_folder(classes=2, per_class=6, size=40)
    config = TrainConfig(
        backbone="resnet18", weights="none", epochs=2, batch_size=8, input_size=32, patience=0
    )
    result = train(scan(folder), config, tmp_path / "run")
    project = Project.create(tmp_path / "proj", classes=["class0", "class1"])
    project.add_samples(scan(folder).samples)
    project.record_run("run-1", tmp_path / "run", "resnet18", "features", result.to_json())
    project.add_predictions(
        "run-1",
        [(s.path, "class1", 0.9, [("class1", 0.9), ("class0", 0.1)], None) for s in project.samples()],
    )
    yield project
    project.close()


def open_page(qtbot: QtBot, project: Project) -> LabelPage:
    """A shown Label page following ``project``."""
    label_page = LabelPage(ProjectSession(Settings()))
    qtbot.addWidget(label_page)
    label_page.show()
    label_page.session.adopt(project)
    return label_page


@pytest.fixture
def page(qtbot: QtBot, project: Project) -> Iterator[LabelPage]:
    label_page = open_page(qtbot, project)
    yield label_page
    label_page.shutdown()


def test_why_shows_a_heatmap_computed_off_the_gui_thread(
    qtbot: QtBot, page: LabelPage, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    classes: list[int] = []
    real = explain.grad_cam

    def recording(model: Any, x: Any, target: int, layers: Any, *args: Any) -> Any:
        threads.append(threading.current_thread())
        classes.append(target)
        return real(model, x, target, layers, *args)

    monkeypatch.setattr(explain, "grad_cam", recording)
    why, view = page.why, page.image_view
    page.gallery.select_row(0)
    qtbot.waitUntil(lambda: view.state() == "ready", timeout=TIMEOUT)
    assert why.why_button.isEnabled()  # the gallery shows run-1's predictions
    assert [why.class_combo.itemText(i) for i in range(why.class_combo.count())] == [
        PREDICTED,
        "class0",
        "class1",
    ]
    assert not view.view.has_overlay()

    with qtbot.waitSignal(why.controller.finished, timeout=TIMEOUT):
        why.why_button.setChecked(True)
    assert view.view.has_overlay()
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert why.note_label.text().startswith(("class0", "class1"))

    # the slider sets the overlay's opacity
    why.opacity_slider.setValue(20)
    assert view.view.overlay_opacity() == pytest.approx(0.2)
    why.opacity_slider.setValue(90)
    assert view.view.overlay_opacity() == pytest.approx(0.9)

    # a class picked in the combo is explained instead of the predicted one
    with qtbot.waitSignal(why.controller.finished, timeout=TIMEOUT):
        why.class_combo.setCurrentText("class0")
        why.class_combo.activated.emit(why.class_combo.currentIndex())
    assert classes[-1] == 0 and why.note_label.text().startswith("class0")
    assert view.view.has_overlay()
    assert all(t is not threading.main_thread() for t in threads)

    # off: the heatmap goes, and no job runs
    why.why_button.setChecked(False)
    assert not view.view.has_overlay() and not why.controller.is_running()


def test_why_is_off_without_a_checked_run(
    qtbot: QtBot, tmp_path: Path, image_folder: Callable[..., Path]
) -> None:
    project = Project.create(tmp_path / "bare", classes=["class0", "class1"])
    project.add_samples(scan(image_folder(classes=2, per_class=2, size=40)).samples)
    label_page = open_page(qtbot, project)
    label_page.gallery.select_row(0)
    assert label_page.session.current_id is not None
    assert not label_page.why.why_button.isEnabled()
    assert "Check a run's predictions" in label_page.why.why_button.toolTip()
    label_page.shutdown()
    project.close()


def test_the_class_combo_is_wide_enough_to_read(qtbot: QtBot, page: LabelPage) -> None:
    """On the corn demo the combo read "predicte": it was sized while still empty (no run checked yet)."""
    page.resize(1280, 800)
    page.gallery.select_row(0)
    combo = page.why.class_combo
    qtbot.waitUntil(lambda: combo.count() > 0, timeout=TIMEOUT)
    needed = combo.fontMetrics().horizontalAdvance(PREDICTED)
    assert combo.width() > needed


def test_the_first_image_shown_on_opening_has_its_bars(qtbot: QtBot, page: LabelPage) -> None:
    """Reopening a checked project showed its first image without bars or "model:" (Why worked)."""
    current = page.session.current_id
    assert current is not None  # opening shows the first image
    qtbot.waitUntil(lambda: page.topk_bars.bars() != [], timeout=5_000)
    assert page.topk_bars.bars()[0][0] == "class1"
