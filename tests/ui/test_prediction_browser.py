"""Issue 12, the prediction browser: matrix drill-down, Space accepts, X excludes, filters, sorts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from conftest import (
    open_image_page,
    train_small_project,
)  # tests/conftest.py (pytest puts tests/ on sys.path)
from labeltune.ui.gallery_model import EXCLUDED_ROLE, GalleryFilter
from labeltune.ui.image_page import ImagePage


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three colour classes, six class0 images labeled class1 (planted mistakes), one short run."""
    root = tmp_path_factory.mktemp("browser")
    planted = {f"class0/img{i:03d}.png": "class1" for i in range(6)}
    folder, run_dir = train_small_project(root, planted)
    data = root / "data"
    return {"folder": folder, "run_dir": run_dir, "data": data}


@pytest.fixture
def page(qtbot, trained, tmp_path: Path) -> Iterator[ImagePage]:
    copy = tmp_path / "project"  # each test changes labels: a copy of the trained project
    shutil.copytree(trained["folder"], copy)
    widget: ImagePage = open_image_page(qtbot, copy)  # type: ignore[assignment]
    session = widget.label_page.session
    results = widget.results_panel
    with qtbot.waitSignal(session.predictions_changed, timeout=60_000):
        results.details_view.check_button.click()  # Results ▸ Check all images stores the predictions
    yield widget
    widget.shutdown()
    session.close()


def test_drill_down_shows_exactly_the_validation_images_of_each_cell(page, trained, qtbot) -> None:
    metrics = json.loads((trained["run_dir"] / "metrics.json").read_text())
    matrix = metrics["confusion_matrix"]
    confusion = page.results_panel.details_view.confusion
    assert confusion.matrix() == matrix
    classes = confusion.classes()
    off_diagonal = [(r, c) for r in range(3) for c in range(3) if r != c and matrix[r][c]]
    assert off_diagonal  # the planted mistakes land in validation
    labels = page.label_page
    val_paths = {
        line.split(",")[0]
        for line in (trained["run_dir"] / "manifest.csv").read_text().splitlines()[1:]
        if line.endswith(",val")
    }
    page.setCurrentWidget(page.results_panel)  # one click on a cell, as a new user does it
    row, column = off_diagonal[0]
    qtbot.mouseClick(confusion, Qt.MouseButton.LeftButton, pos=confusion.cell_rect(row, column).center())
    assert page.currentWidget() is labels and labels.model.rowCount() == matrix[row][column]
    page.setCurrentWidget(page.results_panel)  # a double-click does the same, once
    qtbot.mouseDClick(confusion, Qt.MouseButton.LeftButton, pos=confusion.cell_rect(row, column).center())
    assert page.currentWidget() is labels and labels.model.rowCount() == matrix[row][column]
    empty = next(((r, c) for r in range(3) for c in range(3) if matrix[r][c] == 0), None)
    if empty is not None:  # a click on an empty cell only selects it
        page.setCurrentWidget(page.results_panel)
        qtbot.mouseClick(confusion, Qt.MouseButton.LeftButton, pos=confusion.cell_rect(*empty).center())
        assert page.currentWidget() is page.results_panel and confusion.current_cell() == empty
    for row in range(3):
        for column in range(3):
            confusion.cell_activated.emit(row, column)
            assert page.currentWidget() is labels
            model = labels.model
            assert model.filter == GalleryFilter("cell", f"{classes[row]} → {classes[column]}")
            assert model.rowCount() == matrix[row][column]
            shown = [model.path(r) for r in range(model.rowCount())]
            assert all(model.label(r) == classes[row] for r in range(model.rowCount()))
            assert {Path(p).name for p in shown} <= {Path(p).name for p in val_paths}
            text = labels.filter_combo.currentText()
            assert text == f"Validation: {classes[row]} → {classes[column]}"


def test_space_accepts_the_prediction_with_history_and_undo(page, qtbot) -> None:
    labels = page.label_page
    project = labels.session.require()
    unlabel = project.sample_ids()[::5]
    labels.session.set_label(unlabel, None)
    labels.model.set_order("review")
    labels.set_filter(GalleryFilter("unlabeled"))
    model = labels.model
    assert model.rowCount() == len(unlabel)
    confidences = [model.prediction(model.sample_id(r))[1] for r in range(model.rowCount())]
    assert confidences == sorted(confidences, reverse=True)  # most confident first
    labels.labeling.go_to_row(0)
    first, second = model.sample_id(0), model.sample_id(1)
    predicted = model.prediction(first)[0]
    qtbot.keyClick(labels.gallery, Qt.Key.Key_Space)
    assert project.label_of(first) == predicted
    assert [(e.value, e.source) for e in project.label_history(first)][-1] == (predicted, "accepted")
    assert labels.session.current_id == second  # and on to the next
    assert labels.topk_bars.bars() == model.topk(second) and labels.topk_bars.bars()
    qtbot.keyClick(labels.gallery, Qt.Key.Key_Backspace)  # undo takes the accepted label back
    assert project.label_of(first) is None


def test_x_excludes_from_training_and_back(page, qtbot) -> None:
    labels = page.label_page
    project = labels.session.require()
    model = labels.model
    labels.labeling.go_to_row(3)
    sample_id = model.sample_id(3)
    qtbot.keyClick(labels.gallery, Qt.Key.Key_X)
    assert project.excluded_ids() == {sample_id}
    assert model.index(model.row_of(sample_id)).data(EXCLUDED_ROLE) is True
    assert "excluded from training" in labels.image_view.info_label.text()
    labels.set_filter(GalleryFilter("excluded"))
    assert [model.sample_id(r) for r in range(model.rowCount())] == [sample_id]
    assert labels.filter_combo.currentText() == "Excluded from training (1)"
    labels.set_filter(GalleryFilter("all"))
    labels.session.set_current(sample_id)
    qtbot.keyClick(labels.gallery, Qt.Key.Key_X)
    assert project.excluded_ids() == set()


def test_filters_and_sorts_follow_the_predictions(page) -> None:
    labels = page.label_page
    model = labels.model
    rows = lambda: [model.sample_id(r) for r in range(model.rowCount())]  # noqa: E731
    labels.set_filter(GalleryFilter("incorrect"))
    wrong = rows()
    assert wrong and all(model.prediction(i)[0] != model.label(model.row_of(i)) for i in wrong)
    labels.set_filter(GalleryFilter("correct"))
    right = rows()
    assert all(model.prediction(i)[0] == model.label(model.row_of(i)) for i in right)
    assert len(wrong) + len(right) == labels.session.require().sample_count()
    labels.set_filter(GalleryFilter("predicted", "class2"))
    assert rows() and all(model.prediction(i)[0] == "class2" for i in rows())
    labels.set_filter(GalleryFilter("all"))
    model.set_order("confidence")
    confidences = [model.prediction(i)[1] for i in rows()]
    assert confidences == sorted(confidences)
    model.set_order("margin")
    margins = [(lambda t: t[0][1] - (t[1][1] if len(t) > 1 else 0.0))(model.topk(i)) for i in rows()]
    assert margins == sorted(margins)
    model.set_order("loss")
    p_label = [dict(model.topk(i)).get(model.label(model.row_of(i)), 0.0) for i in rows()]
    assert p_label == sorted(p_label)  # highest loss (least probable label) first
