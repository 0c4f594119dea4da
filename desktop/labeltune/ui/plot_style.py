"""One way to colour a pyqtgraph plot from the Qt palette (light/dark mode), for every plot in the app."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette


def palette_colours(palette: QPalette) -> tuple[QColor, QColor]:
    """The palette's background (Base) and text colours."""
    return palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)


def style_plot(plot: pg.PlotWidget, palette: QPalette, legend_alpha: int = 200) -> None:
    """Background, axes (lines, tick text, labels), title and legend of ``plot`` in ``palette``'s colours."""
    base, text = palette_colours(palette)
    plot.setBackground(base)
    item = plot.getPlotItem()
    item.titleLabel.setText(item.titleLabel.text, color=text)
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        axis.setPen(pg.mkPen(text))
        axis.setTextPen(pg.mkPen(text))
        if axis.labelText:
            axis.setLabel(axis.labelText, color=text.name())
    legend = item.legend
    if legend is not None:
        legend.setLabelTextColor(text)
        for _sample, label in legend.items:  # setLabelTextColor does not re-render existing labels
            label.setText(label.text, color=text)
        legend.setBrush(pg.mkBrush(QColor(base.red(), base.green(), base.blue(), legend_alpha)))
        legend.setPen(pg.mkPen(QColor(text.red(), text.green(), text.blue(), 80)))
