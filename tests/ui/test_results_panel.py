"""The Results tab: run list, headline scores, per-class table and confusion matrix equal metrics.json."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from conftest import write_class_folder  # tests/conftest.py (pytest puts tests/ on sys.path)
from labeltune.core.datasets import scan
from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.core.training import TrainConfig, train
from labeltune.ui.confusion_view import ConfusionMatrixView, mix, readable_text_colour
from labeltune.ui.metrics_table import percent
from labeltune.ui.results_panel import ResultsPanel
from labeltune.ui.runs_list import read_history, run_status
from labeltune.ui.session import ProjectSession


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A project with two real runs (3 epochs and 1 epoch, features) and a run without metrics."""
    root = tmp_path_factory.mktemp("results")
    data = write_class_folder(root / "data", classes=3, per_class=16, size=40)
    folder = root / "project"
    with Project.create(folder) as project:
        dataset = scan(data)
        project.add_source(dataset.root)
        project.add_samples(dataset.samples)
        ids = []
        for epochs, lr in ((3, 3e-3), (1, 1e-4)):
            config = TrainConfig(
                backbone="resnet18", weights="none", input_size=32, epochs=epochs, batch_size=8, lr=lr
            )
            run_dir = project.runs_dir / f"run-{epochs}"
            result = train(scan(folder), config, run_dir, cache_root=root / "cache")
            project.record_run(run_dir.name, run_dir, result.backbone, result.strategy, result.to_json())
            ids.append(run_dir.name)
        # A run that stopped before its first epoch ended: a folder with a config but no metrics.
        broken = project.runs_dir / "run-broken"
        broken.mkdir()
        shutil.copy(project.runs_dir / "run-1" / "config.json", broken / "config.json")
        project.record_run("run-broken", broken, "resnet18", "full", {"stopped": True})
    return {"folder": folder, "ids": ids}


@pytest.fixture
def panel(qtbot, trained) -> Iterator[ResultsPanel]:
    session = ProjectSession(Settings())
    session.open(trained["folder"])
    widget = ResultsPanel(session)
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.show()
    yield widget
    session.close()


def metrics_of(trained: dict[str, Any], run_id: str) -> dict[str, Any]:
    return json.loads((trained["folder"] / "runs" / run_id / "metrics.json").read_text())


def test_runs_are_listed_newest_first_with_their_status(panel, trained):
    runs = panel.runs_list.runs()
    assert [r["id"] for r in runs] == ["run-broken", *reversed(trained["ids"])]
    assert [run_status(r) for r in runs] == ["no metrics", "finished", "finished"]
    # The newest run is shown at once.
    assert panel.stack.currentWidget() is panel.details_view


def test_one_run_shows_the_values_of_metrics_json(panel, trained):
    run_id = trained["ids"][0]
    metrics = metrics_of(trained, run_id)
    panel.runs_list.select_ids([run_id])
    view = panel.details_view
    assert panel.stack.currentWidget() is view
    assert view.figure_text("accuracy") == percent(metrics["accuracy"])
    assert view.figure_text("balanced_accuracy") == percent(metrics["balanced_accuracy"])
    assert view.figure_text("macro_f1") == percent(metrics["macro_f1"])
    assert metrics["accuracy"] > 0.6

    expected = [
        [c["class"], c["precision"], c["recall"], c["f1"], c["support"]] for c in metrics["per_class"]
    ]
    assert view.per_class.rows() == expected
    assert view.per_class.displayed(0, 3) == f"{metrics['per_class'][0]['f1']:.3f}"

    matrix = view.confusion.matrix()
    assert matrix == metrics["confusion_matrix"]
    assert sum(map(sum, matrix)) == metrics["summary"]["val_size"]
    assert view.confusion.classes() == ["class0", "class1", "class2"]
    n = matrix[0][1]
    assert view.confusion.cell_text(0, 1).startswith(f"true class0 predicted as class1: {n}")

    history = read_history(trained["folder"] / "runs" / run_id / "history.csv")
    assert [r.epoch for r in view.curves.records()] == [1, 2, 3] == [r.epoch for r in history]
    assert "3 of 3 epochs" in view.status_label.text()
    assert not view.problem_label.isVisible()


def test_a_run_without_metrics_is_explained(panel, trained):
    panel.runs_list.select_ids(["run-broken"])
    view = panel.details_view
    assert panel.stack.currentWidget() is view
    assert view.problem_label.isVisible() and "no evaluation" in view.problem_label.text()
    assert view.confusion.matrix() == [] and view.per_class.rows() == []
    assert view.figure_text("accuracy") == "–"
    assert "Stopped" in view.status_label.text()


def test_a_run_whose_folder_is_gone(panel, trained, tmp_path):
    session = panel.session
    session.require().record_run("run-gone", tmp_path / "gone", "resnet18", "features", {})
    session.notify_runs_changed()
    try:
        assert panel.runs_list.selected_runs()[0]["id"] == "run-gone"  # a new run is selected
        assert "missing" in panel.details_view.problem_label.text()
    finally:
        session.require().delete_run("run-gone")


def test_two_runs_are_compared(panel, trained):
    older, newer = trained["ids"]
    a, b = metrics_of(trained, older), metrics_of(trained, newer)
    panel.runs_list.select_ids([older, newer])
    view = panel.comparison_view
    assert panel.stack.currentWidget() is view
    summary = {row[0]: row for row in view.summary_table.rows()}
    assert summary["Accuracy"][1:3] == [a["accuracy"], b["accuracy"]]
    assert summary["Accuracy"][3] == pytest.approx(b["accuracy"] - a["accuracy"])
    assert summary["Epochs run"][1:] == [3, 1, -2]
    assert summary["Strategy"][1:] == ["features", "features", None]
    f1 = view.f1_table.rows()
    assert [row[0] for row in f1] == ["class0", "class1", "class2"]
    for row, ca, cb in zip(f1, a["per_class"], b["per_class"], strict=True):
        assert row[1:3] == [ca["f1"], cb["f1"]]
        assert row[3] == pytest.approx(cb["f1"] - ca["f1"])
    assert view.f1_table.values.headerData(1, Qt.Orientation.Horizontal) == "F1 (A)"
    assert older in view.title_label.text() or "A" in view.title_label.text()


def test_compare_with_a_run_without_metrics(panel, trained):
    panel.runs_list.select_ids([trained["ids"][0], "run-broken"])
    view = panel.comparison_view
    assert panel.stack.currentWidget() is view
    assert view.note_label.isVisible() and "no evaluation" in view.note_label.text()
    assert all(row[2] is None and row[3] is None for row in view.f1_table.rows())


def test_closing_the_project_clears_the_panel(panel):
    panel.session.close()
    assert panel.runs_list.runs() == []
    assert panel.stack.currentWidget() is panel.placeholder


def test_confusion_view_geometry_tooltips_and_keys(qtbot):
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    view.set_matrix([[5, 1], [0, 4]], ["cod", "a very long species name"])
    view.resize(500, 400)
    view.show()
    qtbot.waitExposed(view)
    rect = view.cell_rect(1, 0)
    assert view.cell_at(rect.center()) == (1, 0)
    assert view.cell_at(QPoint(1, 1)) is None
    assert view.share(0, 0) == pytest.approx(5 / 6)
    assert view.cell_text(0, 1) == "true cod predicted as a very long species name: 1 (17% of cod)"
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Down)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.current_cell() == (1, 1)
    with qtbot.waitSignal(view.cell_activated) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert blocker.args == [1, 1]
    with pytest.raises(ValueError):
        view.set_matrix([[1, 2]], ["x"])


def test_cell_colours_keep_the_text_readable():
    assert readable_text_colour(QColor("white")) == QColor("black")
    assert readable_text_colour(QColor("#1d4ed8")) == QColor("white")
    assert mix(QColor("white"), QColor("black"), 0.5) == QColor(128, 128, 128)


def test_headline_figures_say_how_many_images_and_warn(panel, trained):
    """Issue 9.5: a big "100 %" from a handful of validation images, from random weights, said nothing."""
    run_id = trained["ids"][0]
    metrics = metrics_of(trained, run_id)
    panel.runs_list.select_ids([run_id])
    view = panel.details_view
    n = metrics["n"]
    detail = view.figures["accuracy"].detail.text()
    assert f"of {n}" in detail and "95 % interval" in detail
    assert f"on {n} validation images" in view.figures["macro_f1"].detail.text()
    warning = view.warning_label.text()
    assert view.warning_label.isVisibleTo(view)
    assert f"Only {n} validation images" in warning and "random weights" in warning


def test_a_25_class_confusion_matrix_keeps_its_names_in_view_and_names_the_mistakes(qtbot):
    from PySide6.QtWidgets import QScrollArea

    from labeltune.ui.confusion_view import top_confusions

    n = 25
    classes = [f"Species_{k:02d}_{'abcdefghijklmnopqrstuvwxy'[k] * 6}" for k in range(n)]
    matrix = [[10 if r == c else 0 for c in range(n)] for r in range(n)]
    matrix[3][7], matrix[20][21], matrix[20][2] = 6, 2, 2
    view = ConfusionMatrixView()
    view.set_matrix(matrix, classes)
    scroll = QScrollArea()
    scroll.setWidget(view)
    scroll.setWidgetResizable(True)
    scroll.resize(420, 360)  # much smaller than the grid: it scrolls
    qtbot.addWidget(scroll)
    scroll.show()
    qtbot.waitExposed(scroll)
    scroll.horizontalScrollBar().setValue(scroll.horizontalScrollBar().maximum())
    scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
    qtbot.wait(20)
    dx, dy = view.header_offsets()
    assert dx > 0 and dy > 0  # the headers moved with the scrolled view
    image = scroll.viewport().grab().toImage()
    window = view.palette().color(view.backgroundRole()).name()
    left, top, _cell, _rotated = view._layout()
    # The strip along the visible top edge is the column-name header, not a row of cells.
    strip = [image.pixelColor(x, top // 2).name() for x in range(left + 5, image.width() - 5, 7)]
    assert strip.count(window) > 0.6 * len(strip)
    column = [image.pixelColor(left // 3, y).name() for y in range(top + 5, image.height() - 5, 7)]
    assert column.count(window) > 0.6 * len(column)
    corner = {image.pixelColor(x, y).name() for x in range(0, left, 3) for y in range(0, top, 3)}
    assert corner == {window}  # no row name scrolled up into the column header, nor the other way
    assert top_confusions(matrix, classes, limit=2) == [
        (classes[3], classes[7], 6, 0.375),
        (classes[20], classes[2], 2, pytest.approx(2 / 14)),
    ]


def test_each_run_s_matrix_opens_at_its_top_left_corner(qtbot):
    from labeltune.ui.run_details import RunDetailsView
    from labeltune.ui.runs_list import RunDetails

    def details(n: int) -> RunDetails:
        classes = [f"class_{k:02d}_with_a_long_name" for k in range(n)]
        matrix = [[5 if r == c else 0 for c in range(n)] for r in range(n)]
        per_class = [{"class": c, "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 5} for c in classes]
        metrics = {"accuracy": 1.0, "confusion_matrix": matrix, "per_class": per_class, "summary": {}}
        return RunDetails(run={"id": f"run{n}", "path": ""}, metrics=metrics)

    view = RunDetailsView()
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    view.show_run(details(23))
    bars = view.confusion_scroll.verticalScrollBar(), view.confusion_scroll.horizontalScrollBar()
    qtbot.waitUntil(lambda: bars[0].maximum() > 0)  # laid out: a 23×23 matrix scrolls here
    for bar in bars:
        bar.setValue(bar.maximum())
    view.show_run(details(15))
    qtbot.wait(20)
    assert bars[0].maximum() > 0  # this one scrolls too
    assert [bar.value() for bar in bars] == [0, 0]  # not the last run's scroll position


def test_a_stopped_run_without_a_best_epoch_says_so_not_epoch_none():
    from labeltune.ui.run_details import status_text
    from labeltune.ui.runs_list import RunDetails

    run = {"id": "r", "metrics": {"stopped": True, "epochs_run": 0, "best_epoch": None}}
    details = RunDetails(run=run, config={"train": {"epochs": 5}})
    assert status_text(details) == "Stopped by you after 0 of 5 epochs; no model was kept."
    run["metrics"]["best_epoch"] = 2
    assert status_text(details).endswith("the best model (epoch 2) was kept.")
