"""Issue 12, the Map tab: one point per image at its PCA coordinates, colours, click and lasso, a worker."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from conftest import write_class_folder  # tests/conftest.py (pytest puts tests/ on sys.path)
from labeltune.core import data_map
from labeltune.core.audit_run import pooled_run_features
from labeltune.core.datasets import scan
from labeltune.core.project import Project
from labeltune.core.projection import project as pca_project
from labeltune.core.settings import Settings
from labeltune.core.training import TrainConfig, train
from labeltune.ui.data_map import UNLABELED_COLOUR
from labeltune.ui.gallery import class_colour
from labeltune.ui.image_page import ImagePage
from labeltune.ui.session import ProjectSession


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three colour classes (one left unlabeled), one short run recorded in the project."""
    root = tmp_path_factory.mktemp("map")
    data = write_class_folder(root / "data", classes=3, per_class=10, size=32)
    folder = root / "project"
    config = TrainConfig(backbone="resnet18", weights="none", input_size=32, epochs=2, batch_size=8)
    run_dir = folder / "runs" / "run-1"
    with Project.create(folder) as project:
        found = scan(data)
        project.add_source(found.root)
        project.add_samples(found.samples)
        done = train(scan(folder), config, run_dir, cache_root=root / "cache")
        project.record_run(run_dir.name, run_dir, done.backbone, done.strategy, done.to_json())
        project.set_label(data / "class2" / "img000.png", None)  # one unlabeled image
    return {"folder": folder, "run_dir": run_dir, "data": data}


@pytest.fixture
def page(qtbot, trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImagePage]:
    copy = tmp_path / "project"
    shutil.copytree(trained["folder"], copy)
    threads: list[threading.Thread] = []
    real = data_map.image_map

    def recording(*args: Any, **kwargs: Any) -> data_map.DataMap:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(data_map, "image_map", recording)
    session = ProjectSession(Settings())
    session.open(copy)
    widget = ImagePage(session)
    widget.map_threads = threads  # type: ignore[attr-defined]
    qtbot.addWidget(widget)
    widget.resize(1100, 760)
    widget.show()
    with qtbot.waitSignal(widget.map_panel.task.finished, timeout=120_000):
        widget.setCurrentWidget(widget.map_panel)  # showing the tab computes the map
    qtbot.wait(50)
    yield widget
    widget.shutdown()
    session.close()


def _rows(page: ImagePage) -> dict[str, tuple[int, str | None]]:
    project = page.session.require()
    return {os.path.normpath(path): (sid, label) for sid, path, label in project.rows()}


def test_one_point_per_image_at_the_pca_of_the_features_computed_off_the_gui_thread(page, trained) -> None:
    panel = page.map_panel
    rows = _rows(page)
    assert len(panel.scatter.data) == len(rows) == 30
    assert sorted(os.path.normpath(str(p)) for p in panel.result.paths) == sorted(rows)
    features = pooled_run_features(trained["run_dir"], panel.result.paths, "cpu").extracted.features
    expected = pca_project(features.astype(np.float32))
    drawn = np.column_stack([panel.scatter.data["x"], panel.scatter.data["y"]])
    np.testing.assert_allclose(drawn, expected, rtol=1e-4, atol=1e-4)
    assert page.map_threads and all(t is not threading.main_thread() for t in page.map_threads)


def test_colours_follow_labels_then_predictions(page, qtbot) -> None:
    panel = page.map_panel
    classes = page.session.require().classes
    rows = _rows(page)

    def colours() -> list[tuple[int, int, int]]:
        return [b.color().getRgb()[:3] for b in panel.scatter.data["brush"]]

    labels = [rows[os.path.normpath(str(p))][1] for p in panel.result.paths]
    want = [
        class_colour(classes.index(lab)).getRgb()[:3] if lab else UNLABELED_COLOUR.getRgb()[:3]
        for lab in labels
    ]
    assert colours() == want and labels.count(None) == 1
    legend = [label.text for _, label in panel.legend.items]
    assert legend == [*classes, "unlabeled"]
    unlabeled = labels.index(None)
    page.session.set_label([int(panel.sample_ids[unlabeled])], "class0")  # a label recolours its point
    assert colours()[unlabeled] == class_colour(classes.index("class0")).getRgb()[:3]
    panel.colour_combo.setCurrentIndex(panel.colour_combo.findData("predicted"))
    assert colours() == [class_colour(classes.index(p)).getRgb()[:3] for p in panel.result.predicted]
    assert "img" in panel.point_tip(0) and "label: " in panel.point_tip(0)


def _viewport_point(panel: Any, x: float, y: float) -> QPoint:
    scene = panel.view_box.mapViewToScene(QPointF(x, y))
    return panel.plot.mapFromScene(scene)


def test_a_click_shows_that_image_on_the_label_tab(page, qtbot) -> None:
    panel = page.map_panel
    page.setCurrentWidget(panel)
    coords = panel.result.coords
    index = int(np.argmax(coords[:, 0]))  # the right-most point: no other point lies on it
    where = _viewport_point(panel, float(coords[index, 0]), float(coords[index, 1]))
    qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert page.currentWidget() is page.label_page
    assert page.session.current_id == int(panel.sample_ids[index])


def _drag(widget: Any, points: list[QPoint]) -> None:
    """A left-button drag through ``points`` (QTest's mouseMove carries no buttons; pyqtgraph drops
    moves closer than 10 ms apart, so each waits a little)."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    mods = Qt.KeyboardModifier.NoModifier

    def send(kind: QEvent.Type, at: QPoint, button: Qt.MouseButton, buttons: Any) -> None:
        local = QPointF(at)
        QApplication.sendEvent(
            widget, QMouseEvent(kind, local, widget.mapToGlobal(local), button, buttons, mods)
        )

    send(QEvent.Type.MouseButtonPress, points[0], left, left)
    for point in points[1:]:
        QTest.qWait(25)
        send(QEvent.Type.MouseMove, point, none, left)
    send(QEvent.Type.MouseButtonRelease, points[-1], left, none)


def test_a_lasso_around_one_cluster_shows_exactly_its_images_all_selected(page, qtbot, trained) -> None:
    panel = page.map_panel
    page.setCurrentWidget(panel)
    coords = np.asarray(panel.result.coords, dtype=np.float64)
    in_class0 = np.array([p.parent.name == "class0" for p in panel.result.paths])
    lo, hi = coords[in_class0].min(axis=0), coords[in_class0].max(axis=0)
    others = coords[~in_class0]
    outside = ~(((others >= lo) & (others <= hi)).all(axis=1))
    assert outside.all(), "the test's classes should be apart on the map"
    pad = 0.02 * (coords.max(axis=0) - coords.min(axis=0))
    (x0, y0), (x1, y1) = lo - pad, hi + pad
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1e-9)]
    lasso = [_viewport_point(panel, x, y) for x, y in corners]
    with qtbot.waitSignal(panel.paths_selected, timeout=5000) as selected:
        _drag(panel.plot.viewport(), lasso)
    expected = {os.path.normpath(str(p)) for p in (trained["data"] / "class0").glob("*.png")}
    assert selected.args[0] == frozenset(expected)
    label_page = page.label_page
    assert page.currentWidget() is label_page
    shown = {os.path.normpath(label_page.model.path(r)) for r in range(label_page.model.rowCount())}
    assert shown == expected
    assert label_page.filter_combo.currentText() == f"Selected on the map ({len(expected)})"
    assert len(label_page.labeling.targets()) == len(expected)
    label_page.assign_class(2)  # one digit labels them all
    project = page.session.require()
    assert {label for _, path, label in project.rows() if os.path.normpath(path) in expected} == {"class1"}
