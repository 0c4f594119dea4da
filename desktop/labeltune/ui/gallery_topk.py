"""The top-k bars beside the large view: the newest checked run's best classes for the current image.

Each bar is a class with its calibrated probability; the predicted class is drawn in the class colour of
the gallery's badges, and an unfamiliar image (unlike the run's training images) gets the amber mark.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from labeltune.ui.gallery import UNFAMILIAR_COLOUR, class_colour

ROW = 18


def name_column(names: Sequence[str], metrics: QFontMetrics, width: int) -> tuple[int, list[str]]:
    """The width of the names' column in a ``width`` wide widget and the names as drawn in it.

    As wide as the longest name, at most half the widget; a longer name is elided in the middle
    ("Plectrog…on dickii", as in the class list) where it was cut at the left edge ("yphidodon dickii").
    """
    needed = max((metrics.horizontalAdvance(name) for name in names), default=0) + 6  # 2 px to spare
    column = max(1, min(needed, width // 2))
    return column, [metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, column - 4) for name in names]


class TopKBars(QWidget):
    """Horizontal bars: class name, probability; empty (and hidden) without a prediction."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """No bars until :meth:`set_topk`."""
        super().__init__(parent)
        self.setObjectName("topkBars")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._topk: list[tuple[str, float]] = []
        self._classes: list[str] = []
        self._unfamiliar = False
        self.setVisible(False)

    def set_topk(self, topk: Sequence[tuple[str, float]], classes: Sequence[str], unfamiliar: bool) -> None:
        """Show ``topk`` (best first); ``classes`` give the colours, ``unfamiliar`` the mark."""
        self._topk = [(str(name), float(p)) for name, p in topk]
        self._classes = list(classes)
        self._unfamiliar = unfamiliar
        tip = "\n".join(f"{name}: {100 * p:.1f} %" for name, p in self._topk)
        if unfamiliar:
            tip += "\nUnfamiliar: unlike the images the model was trained on — trust it less"
        self.setToolTip(f"What the model says (calibrated confidence)\n{tip}")
        self.setVisible(bool(self._topk))
        self.updateGeometry()
        self.update()

    def bars(self) -> list[tuple[str, float]]:
        """The classes and probabilities shown, best first."""
        return list(self._topk)

    @property
    def unfamiliar(self) -> bool:
        """Whether the unfamiliar mark is shown."""
        return self._unfamiliar

    def sizeHint(self) -> QSize:
        """One row per class (and one for the unfamiliar mark)."""
        return QSize(240, ROW * (len(self._topk) + int(self._unfamiliar)) + 4)

    def paintEvent(self, _event: QPaintEvent) -> None:
        """Paint the bars."""
        painter = QPainter(self)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        width = self.width()
        name_width, shown = name_column([name for name, _p in self._topk], painter.fontMetrics(), width)
        for i, (name, probability) in enumerate(self._topk):
            top = 2 + i * ROW
            painter.setPen(text)
            painter.drawText(
                QRect(0, top, name_width - 4, ROW),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                shown[i],
            )
            bar_room = max(1, width - name_width - 50)
            colour = class_colour(self._classes.index(name)) if name in self._classes else QColor("gray")
            painter.fillRect(QRect(name_width, top + 3, round(bar_room * probability), ROW - 6), colour)
            painter.drawText(
                QRect(name_width + bar_room + 4, top, 46, ROW),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{100 * probability:.0f} %",
            )
        if self._unfamiliar:
            top = 2 + len(self._topk) * ROW
            painter.setPen(QColor(UNFAMILIAR_COLOUR).darker(140))
            painter.drawText(
                QRect(0, top, width, ROW),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                "? unfamiliar: unlike the images the model was trained on",
            )
        painter.end()
