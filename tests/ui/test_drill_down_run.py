"""Issue 12, tried as a new user: the drill-down shows the answers of the run whose matrix was clicked.

Found on the corn demo: train, train again, click an off-diagonal cell of the second run: the Label tab
showed the cell's images with the *first* (checked) run's top-k bars, its Why heatmap and its accuracy as
Retrain's "before"; with no run checked, no bars, Why greyed and Space refused. The drill-down now shows the
clicked run's predictions, predicting the images with it first when they were never checked.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from conftest import write_class_folder  # tests/conftest.py (pytest puts tests/ on sys.path)
from labeltune.core.datasets import scan
from labeltune.core.inference import predict_project
from labeltune.core.project import Project
from labeltune.core.review import read_val_predictions
from labeltune.core.settings import Settings
from labeltune.core.training import TrainConfig, train
from labeltune.ui.image_page import ImagePage
from labeltune.ui.session import ProjectSession

TIMEOUT = 60_000


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three colour classes with planted mistakes; run-1 (checked) and a newer run-2 (not checked)."""
    root = tmp_path_factory.mktemp("drill")
    data = write_class_folder(root / "data", classes=3, per_class=16, size=40)
    folder = root / "project"
    with Project.create(folder) as project:
        found = scan(data)
        project.add_source(found.root)
        project.add_samples(found.samples)
        for i in range(6):
            project.set_label(data / "class0" / f"img{i:03d}.png", "class1")
        for name, epochs in (("run-1", 3), ("run-2", 1)):
            config = TrainConfig(
                backbone="resnet18", weights="none", input_size=32, epochs=epochs, batch_size=8
            )
            run_dir = folder / "runs" / name
            done = train(scan(folder), config, run_dir, cache_root=root / "cache")
            project.record_run(name, run_dir, done.backbone, done.strategy, done.to_json())
    predict_project(folder, "run-1", str(folder / "runs" / "run-1"))
    return {"folder": folder}


@pytest.fixture
def page(qtbot, two_runs, tmp_path: Path) -> Iterator[ImagePage]:
    copy = tmp_path / "project"
    shutil.copytree(two_runs["folder"], copy)
    session = ProjectSession(Settings())
    session.open(copy)
    widget = ImagePage(session)
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.show()
    yield widget
    widget.shutdown()
    session.close()


def _select_run(page: ImagePage, run_id: str) -> None:
    page.setCurrentWidget(page.results_panel)
    page.results_panel.runs_list.select_ids([run_id])


def _click_a_cell(page: ImagePage, qtbot) -> tuple[str, str]:
    """Click the first non-empty off-diagonal cell (else the first non-empty one): (true, predicted)."""
    confusion = page.results_panel.details_view.confusion
    matrix, classes = confusion.matrix(), confusion.classes()
    cells = [(r, c) for r in range(len(classes)) for c in range(len(classes)) if matrix[r][c]]
    row, column = sorted(cells, key=lambda cell: cell[0] == cell[1])[0]
    qtbot.mouseClick(confusion, Qt.MouseButton.LeftButton, pos=confusion.cell_rect(row, column).center())
    return classes[row], classes[column]


def _shown_predictions_agree_with_the_cell(page: ImagePage, run_dir: Path, predicted: str) -> None:
    model = page.label_page.model
    assert model.rowCount() > 0
    by_path = {item.path: item for item in read_val_predictions(run_dir)}
    for row in range(model.rowCount()):
        sample_id = model.sample_id(row)
        found = model.prediction(sample_id)
        assert found is not None and found[0] == predicted
        assert model.topk(sample_id)[0][0] == predicted
        assert by_path[str(Path(model.path(row)))].predicted == predicted


def test_a_cell_of_an_unchecked_run_shows_that_run_s_predictions(page, qtbot) -> None:
    session = page.session
    _select_run(page, "run-2")  # the newest run, never checked; run-1 is
    run_dir = Path(page.results_panel.details_view.details.run["path"])
    with qtbot.waitSignal(session.predictions_changed, timeout=TIMEOUT):
        _true, predicted = _click_a_cell(page, qtbot)  # predicts the images with run-2 first
        assert page.currentWidget() is page.label_page
        assert "run-2" in page.label_page.status_label.text()  # says what it is doing meanwhile
    labels = page.label_page
    assert labels.model.predicted_run == "run-2"
    assert labels.status_label.text().startswith("The answers of run-2 are shown")  # not "Predicting…"
    _shown_predictions_agree_with_the_cell(page, run_dir, predicted)
    assert labels.label_next.run_in_use() == run_dir  # Retrain's "before" is the run looked at
    assert labels.why.why_button.isEnabled()


def test_a_cell_of_a_checked_older_run_switches_back_to_its_predictions(page, qtbot) -> None:
    session = page.session
    _select_run(page, "run-2")
    with qtbot.waitSignal(session.predictions_changed, timeout=TIMEOUT):
        _click_a_cell(page, qtbot)
    assert page.label_page.model.predicted_run == "run-2"
    _select_run(page, "run-1")
    run_dir = Path(page.results_panel.details_view.details.run["path"])
    with qtbot.waitSignal(session.predictions_changed, timeout=TIMEOUT):
        _true, predicted = _click_a_cell(page, qtbot)  # checked already: no check, just shown
    assert not page.results_panel.check_controller.is_running()
    assert page.label_page.model.predicted_run == "run-1"
    _shown_predictions_agree_with_the_cell(page, run_dir, predicted)


def test_the_check_line_belongs_to_the_run_it_checked(page, qtbot) -> None:
    results = page.results_panel
    _select_run(page, "run-1")
    with qtbot.waitSignal(page.session.predictions_changed, timeout=TIMEOUT):
        results.details_view.check_button.click()
    assert results.details_view.check_label.text().startswith("Checked")
    _select_run(page, "run-2")  # another run: that line does not describe it
    assert not results.details_view.check_label.text().startswith("Checked")
    _select_run(page, "run-1")
    assert "checked" in results.details_view.check_label.text().lower()


def test_the_cell_is_named_in_full_where_the_combo_cuts_it(page, qtbot) -> None:
    """On the corn demo the Show combo read "Validation: Healthy → E": the model's class was cut off."""
    _select_run(page, "run-1")  # checked: nothing is predicted, the line stays
    true, predicted = _click_a_cell(page, qtbot)
    labels = page.label_page
    count = labels.model.rowCount()
    said = labels.status_label.text()
    if true != predicted:
        assert said.startswith(f"{true} taken for {predicted}: {count} validation image")
    else:
        assert said.startswith(f"{true} recognised: {count} validation image")
    assert "Space accepts" in said
    assert f"{true} → {predicted}" in labels.filter_combo.toolTip()
