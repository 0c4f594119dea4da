"""Live loss and accuracy curves of a training run (pyqtgraph), in the colours of the system palette.

Repainting a plot costs the GUI thread only a few milliseconds, but while a training thread runs Python code
each of the paint's many GIL hand-overs can wait for that thread (bench/bench_gui_stall.py measured single
paints of 50-70 ms). So the view repaints rarely: new points are coalesced (at most one redraw every
:data:`REDRAW_INTERVAL_MS`), the epoch axis spans the planned epochs from the start, the accuracy axis is
fixed at 0..1 and the loss axis only grows, in round steps, so the cached axis pictures stay valid.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from labeltune.core.trainer import EpochRecord
from labeltune.ui.plot_style import style_plot

#: Train / validation colours that read on light and dark backgrounds alike.
TRAIN_COLOUR = "#3b82f6"
VAL_COLOUR = "#f59e0b"
REDRAW_INTERVAL_MS = 400


SPLITS = ("train", "val")


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 5, 7.5 times a power of ten that is at least ``value``."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0):
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10.0 * power


class EpochAxis(pg.AxisItem):
    """An x axis with whole-number ticks only: there is no epoch 1.5."""

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        """Keep the tick levels whose spacing is at least one epoch, and only whole numbers in them."""
        levels = [
            (spacing, [v for v in values if float(v).is_integer()])
            for spacing, values in super().tickValues(minVal, maxVal, size)
            if spacing >= 1
        ]
        if not levels and maxVal - minVal < 1e6:
            levels = [(1.0, [float(v) for v in range(math.ceil(minVal), math.floor(maxVal) + 1)])]
        return levels


class TrainingCurvesView(QWidget):
    """Two plots side by side: train/validation loss and train/validation accuracy per epoch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._records: list[EpochRecord] = []
        self._epochs = 0  # planned epochs: the x axis spans them from the start
        self._loss_top = 0.0
        self._last_redraw = 0.0
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.timeout.connect(self._redraw)
        self.loss_plot = pg.PlotWidget(axisItems={"bottom": EpochAxis("bottom")})
        self.accuracy_plot = pg.PlotWidget(axisItems={"bottom": EpochAxis("bottom")})
        self.loss_plot.setToolTip("Loss per epoch: lower is better. Validation loss rising = overfitting")
        self.accuracy_plot.setToolTip(
            "Share of images classified correctly per epoch, on training and validation"
        )
        self._curves: dict[str, Any] = {}
        for plot, title, key in (
            (self.loss_plot, "Loss", "loss"),
            (self.accuracy_plot, "Accuracy", "accuracy"),
        ):
            item = plot.getPlotItem()
            item.setTitle(title)
            item.setLabel("bottom", "epoch")
            item.showGrid(x=True, y=True, alpha=0.2)
            item.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.disableAutoRange()
            plot.hideButtons()
            plot.setMinimumHeight(160)
            self._curves[f"train_{key}"] = plot.plot(  # small squares: a single epoch is a point, not a line
                [],
                [],
                pen=pg.mkPen(TRAIN_COLOUR, width=2),
                symbol="s",
                symbolSize=4,
                symbolBrush=TRAIN_COLOUR,
                symbolPen=None,
                name="training",
            )
            self._curves[f"val_{key}"] = plot.plot(
                [],
                [],
                pen=pg.mkPen(VAL_COLOUR, width=2),
                symbol="o",
                symbolSize=5,
                symbolBrush=VAL_COLOUR,
                symbolPen=None,
                name="validation",
            )
        self.accuracy_plot.setYRange(0.0, 1.0, padding=0.02)
        self._set_x_range()
        self._set_loss_range(1.0)
        # The key sits above the plots, outside them: at any size it covers no curve.
        self.key_label = QLabel(
            f'<span style="color:{TRAIN_COLOUR}">━━</span> training &nbsp;&nbsp; '
            f'<span style="color:{VAL_COLOUR}">━●━</span> validation'
        )
        self.key_label.setObjectName("curvesKey")
        self.key_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        plots = QHBoxLayout()
        plots.setContentsMargins(0, 0, 0, 0)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.accuracy_plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.key_label)
        layout.addLayout(plots, 1)
        self._apply_palette()

    # -- data ---------------------------------------------------------------------------------------
    def clear(self, epochs: int = 0) -> None:
        """Remove all points; ``epochs``: how many are planned (the x axis spans them)."""
        self._records.clear()
        self._epochs = epochs
        self._loss_top = 0.0
        self._set_x_range()
        self._redraw()

    def set_epochs(self, epochs: int) -> None:
        """How many epochs the run plans (known once training starts)."""
        if epochs != self._epochs:
            self._epochs = epochs
            self._set_x_range()

    def add_record(self, record: EpochRecord) -> None:
        """Add one epoch's point to every curve (a repeated epoch replaces the earlier one).

        Redraws at once unless it redrew less than :data:`REDRAW_INTERVAL_MS` ago; then the redraw waits.
        """
        self._records = [r for r in self._records if r.epoch != record.epoch]
        self._records.append(record)
        self._records.sort(key=lambda r: r.epoch)
        wait_ms = REDRAW_INTERVAL_MS - (time.monotonic() - self._last_redraw) * 1000
        if wait_ms <= 0:
            self._redraw()
        elif not self._redraw_timer.isActive():
            self._redraw_timer.start(int(wait_ms) + 1)

    def set_history(self, records: Iterable[EpochRecord]) -> None:
        """Show a whole history (e.g. a finished run's ``history.csv``)."""
        self._records = sorted(records, key=lambda r: r.epoch)
        self._epochs = 0
        self._loss_top = 0.0
        self._redraw()

    def flush(self) -> None:
        """Draw points still waiting for their redraw."""
        if self._redraw_timer.isActive():
            self._redraw()

    def records(self) -> list[EpochRecord]:
        """The epochs shown, in order."""
        return list(self._records)

    def curve_points(self, name: str) -> tuple[list[float], list[float]]:
        """The x and y values of one curve (``train_loss``, ``val_loss``, ``train_accuracy``, ...)."""
        self.flush()
        x, y = self._curves[name].getData()
        return ([] if x is None else [float(v) for v in x], [] if y is None else [float(v) for v in y])

    def _redraw(self) -> None:
        self._redraw_timer.stop()
        self._last_redraw = time.monotonic()
        epochs = [r.epoch for r in self._records]
        if self._records and epochs[-1] > self._epochs:
            self._epochs = epochs[-1]
            self._set_x_range()
        losses = [v for r in self._records for v in (r.train_loss, r.val_loss) if math.isfinite(v)]
        top = nice_ceiling(max(losses)) if losses else 1.0
        if top > self._loss_top or not self._records:
            self._set_loss_range(top)
        for name, curve in self._curves.items():
            curve.setData(epochs, [float(getattr(r, name)) for r in self._records])

    def _set_x_range(self) -> None:
        last = max(self._epochs, 1)
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.setXRange(0.5 if last > 1 else 0.0, last + 0.5, padding=0)

    def _set_loss_range(self, top: float) -> None:
        self._loss_top = top
        self.loss_plot.setYRange(0.0, top, padding=0.02)

    # -- palette ------------------------------------------------------------------------------------
    def changeEvent(self, event: QEvent) -> None:
        """Follow palette changes (light/dark mode switches)."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        for plot in (self.loss_plot, self.accuracy_plot):
            style_plot(plot, self.palette())
