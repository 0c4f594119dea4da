"""Every plot follows the palette (light/dark mode) through one function: training curves and XRD plot."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from pytestqt.qtbot import QtBot

from labeltune.ui.curves import TrainingCurvesView
from labeltune.ui.xrd_plot import PatternPlot


def _dark() -> QPalette:
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Base, QColor("#202124"))
    palette.setColor(QPalette.ColorRole.Text, QColor("#e8eaed"))
    return palette


def test_a_dark_palette_recolours_the_curves_and_the_xrd_plot(qtbot: QtBot) -> None:
    curves, xrd = TrainingCurvesView(), PatternPlot()
    for widget in (curves, xrd):
        qtbot.addWidget(widget)
        widget.setPalette(_dark())
    plots = [curves.loss_plot, curves.accuracy_plot, xrd.plot]
    for plot in plots:
        assert plot.backgroundBrush().color().name() == "#202124"
        axis = plot.getPlotItem().getAxis("bottom")
        assert axis.textPen().color().name() == "#e8eaed"
        assert axis.pen().color().name() == "#e8eaed"
    assert xrd.legend.opts["brush"].color().name() == "#202124"
