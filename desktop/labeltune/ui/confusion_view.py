"""The confusion matrix as a coloured grid of counts (rows = true class, columns = predicted class).

Legible with many classes (the 23 fish species, 25+): empty cells off the diagonal stay blank so the
mistakes stand out, the class names stay in view while the grid scrolls (sticky headers), and
:func:`top_confusions` lists the largest mistakes in words.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QHelpEvent,
    QKeyEvent,
    QMouseEvent,
    QMoveEvent,
    QPainter,
    QPaintEvent,
    QPalette,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

MIN_CELL = 22
MAX_CELL = 72
MAX_LABEL = 200
PAD = 6


def top_confusions(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], limit: int = 5
) -> list[tuple[str, str, int, float]]:
    """The largest mistakes: ``(true, predicted, count, share of the true class)``, biggest first."""
    found = []
    for row, counts in enumerate(matrix):
        total = sum(counts)
        for column, count in enumerate(counts):
            if row != column and count > 0:
                found.append((classes[row], classes[column], int(count), count / total if total else 0.0))
    found.sort(key=lambda item: (-item[2], -item[3], item[0], item[1]))
    return found[:limit]


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """The colour ``t`` of the way from ``a`` to ``b`` (``t`` in 0..1)."""
    t = min(max(t, 0.0), 1.0)
    return QColor(
        round(a.red() + (b.red() - a.red()) * t),
        round(a.green() + (b.green() - a.green()) * t),
        round(a.blue() + (b.blue() - a.blue()) * t),
    )


def readable_text_colour(background: QColor) -> QColor:
    """Black or white, whichever reads better on ``background`` (WCAG relative luminance)."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    luminance = (
        0.2126 * channel(background.red())
        + 0.7152 * channel(background.green())
        + 0.0722 * channel(background.blue())
    )
    return QColor(Qt.GlobalColor.black) if luminance > 0.179 else QColor(Qt.GlobalColor.white)


class ConfusionMatrixView(QWidget):
    """Paints the confusion matrix; colour intensity is the share of the true class (row-normalised)."""

    cell_activated = Signal(int, int)  # true class index, predicted class index (click / Enter)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._matrix: list[list[int]] = []
        self._classes: list[str] = []
        self._current: tuple[int, int] | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Rows: the true class; columns: what the model predicted. Hover a cell for details")
        self.setAccessibleName("Confusion matrix")
        self.setObjectName("confusionMatrix")

    # -- data ---------------------------------------------------------------------------------------
    def set_matrix(self, matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> None:
        """Show ``matrix`` (square, one row and column per class); an empty matrix clears the view."""
        self._matrix = [[int(v) for v in row] for row in matrix]
        self._classes = [str(c) for c in classes]
        if self._matrix and (
            len(self._matrix) != len(self._classes) or any(len(r) != len(self._classes) for r in self._matrix)
        ):
            raise ValueError("the confusion matrix must have one row and one column per class")
        self._current = (0, 0) if self._matrix else None
        self.updateGeometry()
        self.update()

    def matrix(self) -> list[list[int]]:
        """The counts shown."""
        return [list(row) for row in self._matrix]

    def classes(self) -> list[str]:
        """The class names on the axes."""
        return list(self._classes)

    def share(self, row: int, column: int) -> float:
        """The count of a cell as a share of its true class (0 when the class has no images)."""
        total = sum(self._matrix[row])
        return self._matrix[row][column] / total if total else 0.0

    def cell_text(self, row: int, column: int) -> str:
        """The explanation of one cell (its tooltip)."""
        count = self._matrix[row][column]
        true, predicted = self._classes[row], self._classes[column]
        share = f" ({self.share(row, column):.0%} of {true})" if sum(self._matrix[row]) else ""
        return f"true {true} predicted as {predicted}: {count}{share}"

    # -- geometry -----------------------------------------------------------------------------------
    def _label_width(self, metrics: QFontMetrics) -> int:
        widths = [metrics.horizontalAdvance(c) for c in self._classes] or [0]
        return min(max(widths), MAX_LABEL)

    def _layout(self) -> tuple[int, int, int, bool]:
        """Left edge of the grid, top edge, cell size, and whether column labels are rotated."""
        metrics = self.fontMetrics()
        n = max(len(self._classes), 1)
        label = self._label_width(metrics)
        left = metrics.height() + PAD * 2 + label + PAD

        def fit(top: int) -> int:
            available = min((self.width() - left - PAD) // n, (self.height() - top - PAD) // n)
            return max(MIN_CELL, min(MAX_CELL, available))

        top = metrics.height() * 2 + PAD * 3  # column names written horizontally above the cells
        cell = fit(top)
        if label + 2 <= cell:
            return left, top, cell, False
        top = metrics.height() + PAD * 3 + label + 2  # column names too wide: written upwards
        return left, top, fit(top), True

    def cell_rect(self, row: int, column: int) -> QRect:
        """Where a cell is painted."""
        left, top, cell, _ = self._layout()
        return QRect(left + column * cell, top + row * cell, cell, cell)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        """The (row, column) under ``pos``, or None."""
        if not self._matrix:
            return None
        left, top, cell, _ = self._layout()
        column, row = (pos.x() - left) // cell, (pos.y() - top) // cell
        n = len(self._classes)
        if pos.x() < left or pos.y() < top or row >= n or column >= n:
            return None
        return int(row), int(column)

    def sizeHint(self) -> QSize:
        """Room for comfortable cells."""
        return self._size_for(48)

    def minimumSizeHint(self) -> QSize:
        """Room for the smallest readable cells."""
        return self._size_for(MIN_CELL)

    def _size_for(self, cell: int) -> QSize:
        metrics = self.fontMetrics()
        n = max(len(self._classes), 2)
        label = self._label_width(metrics)
        side = metrics.height() + PAD * 3 + label
        return QSize(side + n * cell + PAD, side + n * cell + PAD)

    def header_offsets(self) -> tuple[int, int]:
        """How far the row and column names are moved to stay in view of a scrolled parent."""
        visible = self.visibleRegion().boundingRect()
        if visible.isEmpty():
            return 0, 0
        return max(0, visible.left()), max(0, visible.top())

    def moveEvent(self, event: QMoveEvent) -> None:
        """Scrolling moves this widget inside its scroll area: repaint all, so the headers follow."""
        super().moveEvent(event)
        self.update()

    # -- painting -----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the axes, the cells and their counts."""
        painter = QPainter(self)
        palette = self.palette()
        text_colour = palette.color(QPalette.ColorRole.WindowText)
        if not self._matrix:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No confusion matrix for this run")
            return
        metrics = self.fontMetrics()
        left, top, cell, rotated = self._layout()
        n = len(self._classes)
        label = self._label_width(metrics)
        grid = QRect(left, top, n * cell, n * cell)

        base = palette.color(QPalette.ColorRole.Base)
        accent = palette.color(QPalette.ColorRole.Highlight)
        border = palette.color(QPalette.ColorRole.Mid)
        count_font = self.font()
        if cell < 30:
            count_font.setPointSizeF(max(count_font.pointSizeF() * 0.8, 6.0))
        painter.setFont(count_font)
        for row in range(n):
            for column in range(n):
                rect = QRect(left + column * cell, top + row * cell, cell, cell)
                fill = mix(base, accent, self.share(row, column))
                painter.fillRect(rect, fill)
                painter.setPen(border)
                painter.drawRect(rect.adjusted(0, 0, -1, -1))
                count = self._matrix[row][column]
                if count or row == column:  # blank zeros off the diagonal: the mistakes stand out
                    painter.setPen(readable_text_colour(fill))
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(count))

        # The names, on strips that stay at the visible edges while the grid scrolls: the row names'
        # strip first (clipped below the column header), then the column names' strip over it (clipped
        # right of the row names), then the corner.
        dx, dy = self.header_offsets()
        visible = self.visibleRegion().boundingRect()
        if visible.isEmpty():
            visible = self.rect()
        window = palette.color(QPalette.ColorRole.Window)
        bold = QFont(self.font())
        bold.setBold(True)
        bold_metrics = QFontMetrics(bold)

        painter.save()
        painter.setClipRect(QRect(dx, dy + top, left, max(0, visible.bottom() - dy - top + 1)))
        painter.fillRect(QRect(dx, top, left, grid.height()), window)
        painter.setPen(text_colour)
        label_left = dx + metrics.height() + PAD * 2
        for i, name in enumerate(self._classes):
            painter.drawText(
                QRect(label_left - 2, top + i * cell, label + 2, cell),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, label + 2),
            )
        rows_top, rows_bottom = max(top, dy + top), min(grid.bottom(), visible.bottom())
        painter.setFont(bold)
        painter.translate(dx + PAD, (rows_top + rows_bottom) / 2)
        painter.rotate(-90)
        height = max(rows_bottom - rows_top, bold_metrics.horizontalAdvance("True class") + PAD)
        painter.drawText(
            QRect(-height // 2, 0, height, metrics.height()), Qt.AlignmentFlag.AlignCenter, "True class"
        )
        painter.restore()

        painter.save()
        painter.setClipRect(QRect(dx + left, dy, max(0, visible.right() - dx - left + 1), top))
        painter.fillRect(QRect(left, dy, grid.width(), top), window)
        painter.setPen(text_colour)
        for i, name in enumerate(self._classes):
            if rotated:
                painter.save()
                painter.translate(left + i * cell + cell / 2 - metrics.height() / 2, dy + top - PAD)
                painter.rotate(-90)
                painter.drawText(
                    QRect(0, 0, label + 2, metrics.height()),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, label + 2),
                )
                painter.restore()
            else:
                painter.drawText(
                    QRect(left + i * cell, dy + top - PAD - metrics.height(), cell, metrics.height()),
                    Qt.AlignmentFlag.AlignCenter,
                    metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, cell),
                )
        # "Predicted class" centred on the visible columns, never narrower than its text
        span_left, span_right = max(left, dx + left), min(grid.right(), visible.right())
        width = max(span_right - span_left, bold_metrics.horizontalAdvance("Predicted class") + PAD)
        painter.setFont(bold)
        painter.drawText(
            QRect(span_left + (span_right - span_left - width) // 2, dy + PAD, width, metrics.height()),
            Qt.AlignmentFlag.AlignCenter,
            "Predicted class",
        )
        painter.restore()
        painter.fillRect(QRect(dx, dy, left, top), window)
        painter.setFont(self.font())
        if self._current is not None and self.hasFocus():
            painter.setPen(text_colour)
            row, column = self._current
            painter.drawRect(QRect(left + column * cell, top + row * cell, cell, cell).adjusted(1, 1, -2, -2))

    # -- interaction --------------------------------------------------------------------------------
    def event(self, event: QEvent) -> bool:
        """Cell tooltips."""
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            hit = self.cell_at(event.pos())
            if hit is not None:
                text = f"{self.cell_text(*hit)}\nClick or Enter: show these validation images"
                QToolTip.showText(event.globalPos(), text, self, self.cell_rect(*hit))
                return True
        return super().event(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        """A double-click opens the cell too (usually the first click already has, and the tab changed)."""
        self.mousePressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Clicking a cell makes it current; a left click on a cell with images opens them."""
        hit = self.cell_at(event.position().toPoint())
        if hit is not None:
            self._current = hit
            self.update()
            if event.button() == Qt.MouseButton.LeftButton and self._matrix[hit[0]][hit[1]] > 0:
                self.cell_activated.emit(*hit)
        super().mousePressEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Arrow keys move between cells (their explanation is shown); Enter activates the cell."""
        if self._current is None:
            super().keyPressEvent(event)
            return
        row, column = self._current
        n = len(self._classes)
        moves = {
            Qt.Key.Key_Left: (0, -1),
            Qt.Key.Key_Right: (0, 1),
            Qt.Key.Key_Up: (-1, 0),
            Qt.Key.Key_Down: (1, 0),
        }
        key = Qt.Key(event.key())
        if key in moves:
            d_row, d_column = moves[key]
            self._current = (min(max(row + d_row, 0), n - 1), min(max(column + d_column, 0), n - 1))
            rect = self.cell_rect(*self._current)
            QToolTip.showText(self.mapToGlobal(rect.center()), self.cell_text(*self._current), self, rect)
            self.update()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.cell_activated.emit(row, column)
        else:
            super().keyPressEvent(event)

    def current_cell(self) -> tuple[int, int] | None:
        """The cell the keyboard is on."""
        return self._current
