"""The Map tab: every image of the project as a point, its features projected to 2-D, coloured by class.

The features are the run in use's pooled features (the feature cache under the run's key, computed once
where it lacks them) and the map is their PCA (``core/data_map.py``), both in a worker thread with
progress and Stop. Colour by the label (unlabeled grey) or by the run's prediction; the legend names the
classes. Hovering a point shows its file name and label; clicking one shows that image on the Label tab;
dragging draws a lasso whose images the Label tab's gallery then shows, all selected, so one digit labels
them all (Shift+drag pans, the wheel zooms). Decisions: docs/adr/0035-data-map-tab.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsPathItem,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labeltune.core import data_map
from labeltune.core.data_map import DataMap, points_in_polygon
from labeltune.ui.gallery import class_colour
from labeltune.ui.plot_legend import PlacedLegend, add_placed_legend
from labeltune.ui.plot_style import style_plot
from labeltune.ui.session import ProjectSession
from labeltune.workers.tasks import FunctionWorker, TaskController

UNLABELED_COLOUR = QColor(150, 150, 150, 160)
POINT_SIZE = 7
COLOUR_BY = {"label": "Label", "predicted": "Prediction"}


class LassoViewBox(pg.ViewBox):
    """A view box where a left-button drag draws a lasso (Shift+drag pans as usual; the wheel zooms)."""

    lassoed = Signal(object)  # (m, 2) array: the lasso's vertices in data coordinates

    def __init__(self) -> None:
        super().__init__()
        self._vertices: list[QPointF] = []
        self._outline = QGraphicsPathItem()
        pen = QPen(QColor(255, 140, 0))
        pen.setCosmetic(True)
        pen.setWidth(2)
        self._outline.setPen(pen)
        self.addItem(self._outline, ignoreBounds=True)

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:
        """Left drag: the lasso; with a modifier, or another button: pyqtgraph's pan and zoom."""
        if ev.button() != Qt.MouseButton.LeftButton or ev.modifiers() != Qt.KeyboardModifier.NoModifier:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        if ev.isStart():
            self._vertices = [self.mapToView(ev.buttonDownPos())]
        self._vertices.append(self.mapToView(ev.pos()))
        path = QPainterPath(self._vertices[0])
        for vertex in self._vertices[1:]:
            path.lineTo(vertex)
        path.closeSubpath()
        self._outline.setPath(path)
        if ev.isFinish():
            self._outline.setPath(QPainterPath())
            self.finish_lasso(np.array([(v.x(), v.y()) for v in self._vertices]))

    def finish_lasso(self, vertices: np.ndarray) -> None:
        """Announce a lasso (what the end of a drag calls; ``vertices`` in data coordinates)."""
        self._vertices = []
        self.lassoed.emit(np.asarray(vertices, dtype=np.float64))


class DataMapPanel(QWidget):
    """The Map tab of an image project: the scatter, what colours it, progress and Stop."""

    sample_clicked = Signal(int)  # sample id of the point clicked
    paths_selected = Signal(object)  # frozenset of normalised paths inside a lasso

    def __init__(
        self, session: ProjectSession, run_dir: Callable[[], Path | None], parent: QWidget | None = None
    ) -> None:
        """``run_dir`` names the run whose features are mapped (the run in use), or None."""
        super().__init__(parent)
        self.session = session
        self._run_dir = run_dir
        self.result: DataMap | None = None
        self.sample_ids = np.zeros(0, dtype=np.int64)  # per point
        self._rows: dict[str, tuple[int, str | None]] = {}  # normalised path → (sample id, label)
        self._stale = True
        self._recolour_pending = False
        self.task = TaskController(self)
        self.task.progressed.connect(self._on_task_progressed)
        self.task.finished.connect(self._on_task_finished)
        self.task.stopped.connect(self._on_task_stopped)
        self.task.failed.connect(self._on_task_failed)
        self.task.running_changed.connect(self._on_task_running_changed)
        self._build()
        session.project_opened.connect(self._on_session_project_changed)
        session.project_closed.connect(self._on_session_project_changed)
        session.samples_changed.connect(self._on_session_project_changed)
        session.runs_changed.connect(self._on_session_project_changed)
        session.predictions_changed.connect(self._on_session_project_changed)  # maybe another run in use
        session.labels_changed.connect(self._on_session_labels_changed)
        session.classes_changed.connect(self._on_session_classes_changed)

    def _build(self) -> None:
        self.compute_button = QPushButton("&Compute map")
        self.compute_button.setToolTip("Project the features of every image to 2-D (the run in use's)")
        self.compute_button.clicked.connect(self.compute)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.task.stop)
        self.colour_combo = QComboBox()
        for key, text in COLOUR_BY.items():
            self.colour_combo.addItem(text, key)
        self.colour_combo.currentIndexChanged.connect(self._recolour)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("Drag a lasso around points to show those images on the Label tab")
        bar = QHBoxLayout()
        bar.addWidget(self.compute_button)
        bar.addWidget(self.stop_button)
        bar.addWidget(QLabel("Colour by:"))
        bar.addWidget(self.colour_combo)
        bar.addWidget(self.progress)
        bar.addWidget(self.status, 1)
        self.view_box = LassoViewBox()
        self.view_box.lassoed.connect(self._on_view_box_lassoed)
        self.view_box.sigRangeChangedManually.connect(self._place_legend)
        self.plot = pg.PlotWidget(viewBox=self.view_box)
        self.plot.setMenuEnabled(False)
        item = self.plot.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        self.legend: PlacedLegend = add_placed_legend(item, [(1, 1), (0, 1), (1, 0), (0, 0)])
        self.scatter = pg.ScatterPlotItem(
            size=POINT_SIZE, pen=None, hoverable=True, tip=self._tip, hoverSize=POINT_SIZE + 4
        )
        self.scatter.sigClicked.connect(self._on_scatter_clicked)
        item.addItem(self.scatter)
        style_plot(self.plot, self.palette())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(bar)
        layout.addWidget(self.plot, 1)

    # -- computing ------------------------------------------------------------------------------------
    def compute(self) -> bool:
        """Map every image of the open project under the run in use, in a worker; False if it cannot."""
        project = self.session.project
        run_dir = self._run_dir()
        if project is None or project.closed or self.task.is_running():
            return False
        if run_dir is None:
            self.status.setText("Train a model first: the map shows the features of the run in use")
            return False
        self._read_rows()
        paths = [Path(path) for path in self._rows]
        self._stale = False
        self.status.setText(f"Mapping {len(paths)} images with {run_dir.name}…")
        self.task.start(
            FunctionWorker(lambda progress, stop: data_map.image_map(run_dir, paths, "auto", progress, stop))
        )
        return True

    def shutdown(self) -> None:
        """Stop and wait for a map being computed (the window is closing)."""
        self.task.shutdown()

    def showEvent(self, event: QShowEvent) -> None:
        """Compute the map when the tab is first shown (and after the project or its runs changed)."""
        super().showEvent(event)
        if self._stale and self.session.project is not None:
            self.compute()
        elif self._recolour_pending:
            self._recolour()

    def changeEvent(self, event: QEvent) -> None:
        """Follow the palette (light / dark mode)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            style_plot(self.plot, self.palette())

    def _read_rows(self) -> None:
        project = self.session.project
        rows = project.rows() if project is not None and not project.closed else []
        self._rows = {os.path.normpath(path): (sample_id, label) for sample_id, path, label in rows}

    def _on_task_progressed(self, progress: Any) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, max(1, int(progress.total or 0)))
        self.progress.setValue(int(progress.done or 0))
        if getattr(progress, "message", ""):
            self.status.setText(str(progress.message))

    def _on_task_finished(self, result: DataMap) -> None:
        self.progress.setVisible(False)
        self.show_map(result)

    def _on_task_stopped(self) -> None:
        self.progress.setVisible(False)
        self._stale = True
        self.status.setText("Stopped: the map was not computed")

    def _on_task_failed(self, message: str, _details: str) -> None:
        self.progress.setVisible(False)
        self._stale = True
        self.status.setText(f"Cannot compute the map: {message}")

    def _on_task_running_changed(self, running: bool) -> None:
        self.stop_button.setEnabled(running)
        self.compute_button.setEnabled(not running)

    # -- drawing --------------------------------------------------------------------------------------
    def show_map(self, result: DataMap) -> None:
        """Draw ``result``: one point per image it could map."""
        self.result = result
        keys = [os.path.normpath(str(p)) for p in result.paths]
        self.sample_ids = np.array([self._rows.get(k, (-1, None))[0] for k in keys], dtype=np.int64)
        coords = np.asarray(result.coords, dtype=np.float64).reshape(-1, 2)
        self.scatter.setData(pos=coords, data=np.arange(len(coords)))
        self.view_box.autoRange(padding=0.05)
        self._recolour()
        skipped = f" · {len(result.skipped)} could not be read" if result.skipped else ""
        self.status.setText(f"{len(coords)} images{skipped} · click one to label it, drag a lasso for many")

    def labels(self) -> list[str | None]:
        """The current label of each point."""
        if self.result is None:
            return []
        return [self._rows.get(os.path.normpath(str(p)), (-1, None))[1] for p in self.result.paths]

    def point_classes(self) -> list[str | None]:
        """What colours each point: its label, or the run's prediction (``Colour by``)."""
        if self.result is None:
            return []
        if self.colour_combo.currentData() == "predicted":
            return [p or None for p in self.result.predicted]
        return self.labels()

    def _recolour(self, *_args: object) -> None:
        if self.result is None:
            return
        if not self.isVisible():  # labeling on the Label tab: recolour once the map is shown again
            self._recolour_pending = True
            return
        self._recolour_pending = False
        project = self.session.project
        classes = list(project.classes) if project is not None and not project.closed else []
        for name in self.result.classes:
            if name not in classes:
                classes.append(name)
        brushes = {name: QBrush(class_colour(i)) for i, name in enumerate(classes)}
        grey = QBrush(UNLABELED_COLOUR)
        shown = self.point_classes()
        self.scatter.setBrush([brushes.get(c, grey) if c is not None else grey for c in shown])
        self.legend.clear()
        present = set(shown)
        for name in classes:
            if name in present:
                self.legend.addItem(_swatch(brushes[name]), name)
        if None in present:
            self.legend.addItem(
                _swatch(grey), "unlabeled" if self.colour_combo.currentData() == "label" else "—"
            )
        QTimer.singleShot(0, self._place_legend)  # once the legend's new rows are laid out

    def _place_legend(self, *_args: object) -> None:
        if self.result is not None:
            self.legend.place(np.asarray(self.result.coords, dtype=np.float64).reshape(-1, 2))

    def _tip(self, x: float, y: float, data: Any) -> str:
        return self.point_tip(int(data))

    def point_tip(self, index: int) -> str:
        """What hovering point ``index`` shows: the file name, its label and the run's prediction."""
        if self.result is None or not 0 <= index < len(self.result.paths):
            return ""
        label = self._rows.get(os.path.normpath(str(self.result.paths[index])), (-1, None))[1]
        predicted = self.result.predicted[index]
        text = f"{self.result.paths[index].name}\nlabel: {label if label is not None else 'unlabeled'}"
        return text + (f"\npredicted: {predicted}" if predicted else "")

    # -- selecting ------------------------------------------------------------------------------------
    def _on_scatter_clicked(self, _item: object, points: Any, _event: object = None) -> None:
        if len(points):
            self.click_point(int(points[0].data()))

    def click_point(self, index: int) -> None:
        """Show the image of point ``index`` on the Label tab."""
        if 0 <= index < len(self.sample_ids) and self.sample_ids[index] >= 0:
            self.sample_clicked.emit(int(self.sample_ids[index]))

    def _on_view_box_lassoed(self, vertices: np.ndarray) -> None:
        if self.result is None:
            return
        inside = points_in_polygon(np.asarray(self.result.coords), vertices)
        if not inside.any():
            self.status.setText("No image inside the lasso")
            return
        chosen = frozenset(os.path.normpath(str(self.result.paths[i])) for i in np.flatnonzero(inside))
        self.status.setText(f"{len(chosen)} images selected: the Label tab shows them")
        self.paths_selected.emit(chosen)

    def _on_session_project_changed(self, *_args: object) -> None:
        self._stale = True
        if self.session.project is None:
            self.result = None
            self.scatter.clear()
            self.legend.clear()
        elif self.isVisible():
            self.compute()

    def _on_session_labels_changed(self, sample_ids: list[int]) -> None:
        project = self.session.project
        if self.result is None or project is None or project.closed:
            return
        for sample_id, path, label in project.rows(ids=sample_ids):  # only the changed ones: a key press
            self._rows[os.path.normpath(path)] = (sample_id, label)
        self._recolour()

    def _on_session_classes_changed(self) -> None:
        if self.result is not None:
            self._read_rows()  # a rename or merge relabels many
            self._recolour()


def _swatch(brush: QBrush) -> pg.ScatterPlotItem:
    return pg.ScatterPlotItem(size=POINT_SIZE + 3, pen=None, brush=brush)


__all__ = ["DataMapPanel", "LassoViewBox"]
