"""The gallery: a virtualised grid of thumbnails with a label badge on each.

A ``QListView`` in icon mode with uniform item sizes and batched layout paints only the rows on screen,
so 100 000 samples scroll smoothly; after each scroll the view tells its model which rows are visible,
so thumbnail requests for rows that scrolled away are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPalette, QPen, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from labeltune.ui.gallery_model import (
    CLASS_INDEX_ROLE,
    EXCLUDED_ROLE,
    LABEL_ROLE,
    SAMPLE_ID_ROLE,
    THUMBNAIL_ERROR_ROLE,
    THUMBNAIL_STATE_ROLE,
    UNFAMILIAR_ROLE,
    GalleryModel,
)

Index = QModelIndex | QPersistentModelIndex

#: The mark of an image the model finds unlike its training images (amber, readable on both themes).
UNFAMILIAR_COLOUR = "#e8a317"

#: Distinct class colours (Tableau 10) that read on light and dark themes; more classes rotate the hue.
CLASS_COLOURS = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
_PADDING = 6


def class_colour(index: int) -> QColor:
    """Colour of the ``index``-th class (a neutral grey for -1: unlabeled)."""
    if index < 0:
        return QColor("#8c8c8c")
    if index < len(CLASS_COLOURS):
        return QColor(CLASS_COLOURS[index])
    return QColor.fromHsv((index * 47) % 360, 150, 210)


def text_colour_on(background: QColor) -> QColor:
    """Black or white, whichever reads better on ``background``."""
    luminance = 0.299 * background.red() + 0.587 * background.green() + 0.114 * background.blue()
    return QColor(Qt.GlobalColor.black) if luminance > 150 else QColor(Qt.GlobalColor.white)


def caption_lines(name: str, fits: Callable[[str], bool]) -> tuple[str, str]:
    """A file name on up to two lines, broken after a ``_``, ``-``, ``.`` or space if it must be.

    The latest break whose first part fits is taken, so ``fish_000001329595_03643.png`` keeps its track
    id in view; the second line may still be too long (the caller elides it in the middle).
    """
    if fits(name):
        return name, ""
    breaks = [i + 1 for i, ch in enumerate(name[:-1]) if ch in "_-. " and i > 0]
    fitting = [b for b in breaks if fits(name[:b])]
    if fitting:
        return name[: max(fitting)], name[max(fitting) :]
    cut = max((i for i in range(1, len(name)) if fits(name[:i])), default=1)  # as many characters as fit
    return name[:cut], name[cut:]


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a thumbnail (or its placeholder), the file name, and the label as a coloured badge."""

    def __init__(self, thumbnail_size: int, parent: QWidget | None = None) -> None:
        """Lay cells out for ``thumbnail_size`` px thumbnails."""
        super().__init__(parent)
        self.thumbnail_size = thumbnail_size

    def cell_size(self, option_font: QFont) -> QSize:
        """Size of one grid cell: the thumbnail plus three caption lines (file name on two, label)."""
        line = QFontMetrics(option_font).height()
        return QSize(self.thumbnail_size + 2 * _PADDING, self.thumbnail_size + 3 * line + 3 * _PADDING)

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        """Every cell has the same size (the view uses uniform item sizes)."""
        return self.cell_size(option.font)  # type: ignore[attr-defined]

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        """Draw one cell."""
        rect: QRect = option.rect  # type: ignore[attr-defined]
        palette: QPalette = option.palette  # type: ignore[attr-defined]
        state = option.state  # type: ignore[attr-defined]
        selected = bool(state & QStyle.StateFlag.State_Selected)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        cell = rect.adjusted(2, 2, -2, -2)
        if selected:
            highlight = palette.color(QPalette.ColorRole.Highlight)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(highlight)
            painter.drawRoundedRect(cell, 4, 4)
        size = self.thumbnail_size
        box = QRect(rect.x() + (rect.width() - size) // 2, rect.y() + _PADDING, size, size)
        self._paint_thumbnail(painter, palette, box, index)
        class_index = int(index.data(CLASS_INDEX_ROLE))
        label = index.data(LABEL_ROLE)
        colour = class_colour(class_index)
        if label is not None:
            painter.setPen(QPen(colour, 3))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(box.adjusted(-1, -1, 1, 1))
            self._paint_badge(painter, box, class_index, colour)
        if index.data(UNFAMILIAR_ROLE):
            self._paint_unfamiliar(painter, box)
        if index.data(EXCLUDED_ROLE):
            self._paint_excluded(painter, box)
        self._paint_caption(painter, option, rect, box, index, label, colour, selected)
        if state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 2, Qt.PenStyle.DotLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(cell.adjusted(1, 1, -1, -1), 4, 4)
        painter.restore()

    @staticmethod
    def _paint_thumbnail(painter: QPainter, palette: QPalette, box: QRect, index: Index) -> None:
        image = index.data(Qt.ItemDataRole.DecorationRole)
        state = index.data(THUMBNAIL_STATE_ROLE)
        if state == "ready" and isinstance(image, QImage) and not image.isNull():
            scaled = image.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(QPoint(0, 0), scaled)
            target.moveCenter(box.center())
            painter.drawImage(target, image)
            return
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(palette.color(QPalette.ColorRole.AlternateBase))
        painter.drawRect(box)
        muted = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        painter.setPen(muted)
        if state == "failed":
            painter.setPen(QPen(muted, 2))
            inset = box.width() // 3
            inner = box.adjusted(inset, inset, -inset, -inset)
            painter.drawLine(inner.topLeft(), inner.bottomRight())
            painter.drawLine(inner.topRight(), inner.bottomLeft())
            reason = str(index.data(THUMBNAIL_ERROR_ROLE) or "unreadable").split(" (", 1)[0]
            painter.drawText(
                box.adjusted(2, 0, -2, -4),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom | Qt.TextFlag.TextWordWrap,
                reason,  # "truncated JPEG", "empty file": the tooltip has the whole reason
            )
        else:
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "…")

    @staticmethod
    def _paint_excluded(painter: QPainter, box: QRect) -> None:
        """A grey veil with a struck-through circle at the bottom right: left out of training (key X)."""
        painter.fillRect(box, QColor(128, 128, 128, 110))
        mark = QRect(box.right() - 21, box.bottom() - 21, 18, 18)
        painter.setPen(QPen(QColor(Qt.GlobalColor.black), 2))
        painter.setBrush(QColor(Qt.GlobalColor.white))
        painter.drawEllipse(mark)
        painter.drawLine(mark.topLeft() + QPoint(4, 4), mark.bottomRight() - QPoint(4, 4))

    @staticmethod
    def _paint_unfamiliar(painter: QPainter, box: QRect) -> None:
        """A '?' in an amber circle at the top right: the model has not seen images like this one."""
        mark = QRect(box.right() - 21, box.y() + 3, 18, 18)
        colour = QColor(UNFAMILIAR_COLOUR)
        painter.setPen(QPen(QColor(Qt.GlobalColor.black), 1))
        painter.setBrush(colour)
        painter.drawEllipse(mark)
        painter.setPen(text_colour_on(colour))
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(mark, Qt.AlignmentFlag.AlignCenter, "?")

    @staticmethod
    def _paint_badge(painter: QPainter, box: QRect, class_index: int, colour: QColor) -> None:
        if class_index < 0 or class_index >= 9:
            return  # only classes with a hotkey get a number
        badge = QRect(box.x() + 3, box.y() + 3, 18, 18)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(badge, 4, 4)
        painter.setPen(text_colour_on(colour))
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, str(class_index + 1))

    @staticmethod
    def _paint_caption(
        painter: QPainter,
        option: QStyleOptionViewItem,
        rect: QRect,
        box: QRect,
        index: Index,
        label: str | None,
        colour: QColor,
        selected: bool,
    ) -> None:
        palette: QPalette = option.palette  # type: ignore[attr-defined]
        font = QFont(option.font)  # type: ignore[attr-defined]
        painter.setFont(font)
        metrics = painter.fontMetrics()
        line = metrics.height()
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        left, width = rect.x() + _PADDING, rect.width() - 2 * _PADDING
        painter.setPen(palette.color(text_role))
        first, second = caption_lines(
            str(index.data(Qt.ItemDataRole.DisplayRole)),
            lambda text: metrics.horizontalAdvance(text) <= width,
        )
        second = metrics.elidedText(second, Qt.TextElideMode.ElideMiddle, width)
        centred = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter
        name_rect = QRect(left, box.bottom() + _PADDING, width, line)
        painter.drawText(name_rect, centred, first)
        name_rect = QRect(left, name_rect.bottom() + 1, width, line)
        if second:
            painter.drawText(name_rect, centred, second)
        label_rect = QRect(left, name_rect.bottom() + 2, width, line)
        if label is None:
            muted = palette.color(QPalette.ColorGroup.Disabled, text_role)
            painter.setPen(muted)
            painter.drawText(label_rect, Qt.AlignmentFlag.AlignCenter, "unlabeled")
            return
        text = metrics.elidedText(label, Qt.TextElideMode.ElideMiddle, width - 14)
        text_width = metrics.horizontalAdvance(text)
        dot_x = label_rect.center().x() - (text_width + 14) // 2
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawEllipse(QRect(dot_x, label_rect.center().y() - 4, 9, 9))
        painter.setPen(palette.color(text_role))
        text_rect = QRect(dot_x + 14, label_rect.y(), text_width + 2, line)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)


class GalleryView(QListView):
    """Grid of thumbnails; extended selection; only visible rows ask for thumbnails."""

    def __init__(self, thumbnail_size: int = 128, parent: QWidget | None = None) -> None:
        """Show ``thumbnail_size`` px thumbnails."""
        super().__init__(parent)
        self.setObjectName("galleryView")
        self._delegate = ThumbnailDelegate(thumbnail_size, self)
        self.setItemDelegate(self._delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(5000)
        self.setWrapping(True)
        self.setSpacing(0)
        self.setGridSize(self._delegate.cell_size(self.font()))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setDragEnabled(False)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(max(8, thumbnail_size // 3))
        self.setToolTip("")
        self.setAccessibleName("Gallery of images")
        self.setWhatsThis(
            "Thumbnails of the images in the current filter. Keys 1–9 label the selected images, "
            "0 removes their label, Backspace undoes. Shift or Ctrl + click selects several."
        )
        self._retain_timer = QTimer(self)
        self._retain_timer.setSingleShot(True)
        self._retain_timer.setInterval(40)
        self._retain_timer.timeout.connect(self._on_retain_timer_timeout)
        self.verticalScrollBar().valueChanged.connect(self._on_scrollbar_value_changed)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Spread the columns over the full width (no ragged empty band on the right)."""
        cell = self._delegate.cell_size(self.font())
        width = self.viewport().width() - 2  # the list view wraps a row that fills the width exactly
        columns = max(1, width // cell.width())
        grid = QSize(max(cell.width(), width // columns), cell.height())
        if grid != self.gridSize():
            self.setGridSize(grid)
        super().resizeEvent(event)

    def visible_rows(self) -> tuple[int, int]:
        """First and last row (inclusive, approximately: one grid line of slack) on screen."""
        grid = self.gridSize()
        columns = max(1, self.viewport().width() // max(1, grid.width()))
        top = self.verticalScrollBar().value()
        first_line = max(0, top // max(1, grid.height()) - 1)
        last_line = (top + self.viewport().height()) // max(1, grid.height()) + 1
        return first_line * columns, (last_line + 1) * columns - 1

    def selected_rows(self) -> list[int]:
        """Selected rows in ascending order (read from the selection's ranges: 100 000 rows in a blink)."""
        selection = self.selectionModel()
        if selection is None:
            return []
        ranges = selection.selection()
        parts = (ranges.at(i) for i in range(ranges.count()))
        return sorted({row for part in parts for row in range(part.top(), part.bottom() + 1)})

    def selected_sample_ids(self) -> list[int]:
        """Sample ids of the selected rows, in gallery order."""
        model = self.model()
        if isinstance(model, GalleryModel):
            return [model.sample_id(row) for row in self.selected_rows()]
        return [int(model.index(row, 0).data(SAMPLE_ID_ROLE)) for row in self.selected_rows()]

    def select_row(self, row: int) -> None:
        """Make ``row`` the current, only selected, visible row."""
        model = self.model()
        if model is None or not 0 <= row < model.rowCount():
            return
        index = model.index(row, 0)
        self.selectionModel().setCurrentIndex(index, self.selectionModel().SelectionFlag.ClearAndSelect)
        self.scrollTo(index)

    def _on_scrollbar_value_changed(self, _value: int) -> None:
        self._retain_timer.start()

    def _on_retain_timer_timeout(self) -> None:
        model = self.model()
        if isinstance(model, GalleryModel):
            first, last = self.visible_rows()
            model.retain_thumbnail_requests(first, last)
