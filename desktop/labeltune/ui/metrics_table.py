"""Tables of evaluation metrics: per-class scores of one run, and two runs compared side by side."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

Index = QModelIndex | QPersistentModelIndex


def fraction(value: Any) -> str:
    """0.8731 → ``0.873``; missing values → an en dash."""
    return "–" if value is None else f"{float(value):.3f}"


def percent(value: Any) -> str:
    """0.9375 → ``93.8 %``; missing → an en dash."""
    return f"{float(value) * 100:.1f} %" if isinstance(value, (int, float)) else "–"


def signed(value: Any) -> str:
    """A difference with its sign (``+0.052``, ``+12`` for counts); missing → an en dash."""
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:+d}"
    return f"{float(value):+.3f}"


def plain(value: Any) -> str:
    """Any value as text; missing → an en dash."""
    return "–" if value is None else str(value)


def auto(value: Any) -> str:
    """Counts as integers, scores with three decimals, yes/no for flags, the rest as text."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def difference_colour(palette: QPalette, value: float) -> QColor | None:
    """Green for a gain, red for a loss, in shades that read on the palette's base colour."""
    if abs(value) < 5e-4:
        return None
    dark = palette.color(QPalette.ColorRole.Base).lightness() < 128
    if value > 0:
        return QColor("#4ade80" if dark else "#15803d")
    return QColor("#f87171" if dark else "#b91c1c")


@dataclass(frozen=True)
class Column:
    """One column: header, how a value is shown, its tooltip, and whether it is a signed difference."""

    header: str
    format: Callable[[Any], str] = plain
    tooltip: str = ""
    is_difference: bool = False


class ValuesTableModel(QAbstractTableModel):
    """Rows of plain values; the display role is formatted, ``Qt.UserRole`` holds the raw value."""

    def __init__(self, columns: Sequence[Column], palette: QPalette | None = None) -> None:
        super().__init__()
        self._columns = list(columns)
        self._rows: list[list[Any]] = []
        self._senses: list[int] = []
        self._palette = palette or QPalette()

    def set_rows(
        self,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[Column] | None = None,
        senses: Sequence[int] | None = None,
    ) -> None:
        """Replace all rows (and the columns, when given).

        ``senses`` says per row whether a larger value is better (1), worse (-1) or neither (0); it sets
        the colour of difference columns (default: larger is better).
        """
        self.beginResetModel()
        if columns is not None:
            self._columns = list(columns)
        self._rows = [list(r) for r in rows]
        self._senses = list(senses) if senses is not None else [1] * len(self._rows)
        self.endResetModel()

    def set_palette(self, palette: QPalette) -> None:
        """Colour differences for this palette."""
        self._palette = QPalette(palette)
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(self._columns) - 1))

    def rows(self) -> list[list[Any]]:
        """The raw values."""
        return [list(r) for r in self._rows]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        """Number of rows."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        """Number of columns."""
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Formatted text, raw value, alignment and the colour of differences."""
        if not index.isValid():
            return None
        value = self._rows[index.row()][index.column()]
        column = self._columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.format(value)
        if role == Qt.ItemDataRole.UserRole:
            return value
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if isinstance(value, (int, float)) or value is None:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and column.is_difference
            and isinstance(value, (int, float))
        ):
            sense = self._senses[index.row()] if index.row() < len(self._senses) else 1
            return difference_colour(self._palette, float(value) * sense) if sense else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return column.tooltip or None
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column headers and their tooltips."""
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self._columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._columns[section].header
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._columns[section].tooltip or None
        return None


class _SortProxy(QSortFilterProxyModel):
    """Sorts by raw value; missing values last."""

    def lessThan(self, left: Index, right: Index) -> bool:
        a = left.data(Qt.ItemDataRole.UserRole)
        b = right.data(Qt.ItemDataRole.UserRole)
        if a is None or b is None:
            return b is None and a is not None
        try:
            return bool(a < b)
        except TypeError:
            return str(a) < str(b)


class ValuesTableView(QTableView):
    """A read-only, sortable table over a :class:`ValuesTableModel`."""

    def __init__(self, columns: Sequence[Column], tooltip: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values = ValuesTableModel(columns, self.palette())
        self._proxy = _SortProxy(self)
        self._proxy.setSourceModel(self.values)
        self.setModel(self._proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # keep the given order until a header is clicked
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.setWordWrap(False)
        self.setToolTip(tooltip)

    def changeEvent(self, event: QEvent) -> None:
        """Difference colours follow palette changes (light/dark mode)."""
        if event.type() == QEvent.Type.PaletteChange:
            self.values.set_palette(self.palette())
        super().changeEvent(event)

    def fit_height(self) -> None:
        """Make the table exactly as tall as its rows (for short tables that should not scroll)."""
        height = self.horizontalHeader().sizeHint().height() + self.verticalHeader().length()
        self.setFixedHeight(height + 2 * self.frameWidth() + 2)

    def set_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Show these rows (in this order until the user sorts)."""
        self.values.set_rows(rows)

    def rows(self) -> list[list[Any]]:
        """The raw values in the model's order."""
        return self.values.rows()

    def displayed(self, row: int, column: int) -> str:
        """The text shown in a cell (view order)."""
        return str(self._proxy.index(row, column).data(Qt.ItemDataRole.DisplayRole))


PER_CLASS_COLUMNS = (
    Column("Class", tooltip="The class (true label)"),
    Column("Precision", fraction, "Of the images predicted as this class, the share that really is it"),
    Column("Recall", fraction, "Of the images of this class, the share the model found"),
    Column("F1", fraction, "The balance of precision and recall (1 is perfect)"),
    Column("Support", plain, "Validation images of this class"),
)


class PerClassTable(ValuesTableView):
    """Precision, recall, F1 and support per class."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            PER_CLASS_COLUMNS, "Scores per class on the validation images; click a header to sort", parent
        )

    def set_metrics(self, per_class: Sequence[Mapping[str, Any]]) -> None:
        """Show the ``per_class`` list of a ``metrics.json``."""
        self.set_rows([[c["class"], c["precision"], c["recall"], c["f1"], c["support"]] for c in per_class])


def comparison_columns(name: str, first: str, second: str) -> list[Column]:
    """Columns ``name | first | second | difference`` for comparing two runs."""
    return [
        Column(name),
        Column(first, auto, f"Run {first}"),
        Column(second, auto, f"Run {second}"),
        Column("Difference", signed, f"{second} minus {first}: green where {second} is better", True),
    ]


def compare_rows(names: Sequence[str], a: Mapping[str, Any], b: Mapping[str, Any]) -> list[list[Any]]:
    """Rows ``[name, a, b, b - a]`` (difference None where a value is missing or not a number)."""
    rows: list[list[Any]] = []
    for name in names:
        x, y = a.get(name), b.get(name)
        rows.append([name, x, y, difference(x, y)])
    return rows


def difference(a: Any, b: Any) -> int | float | None:
    """``b - a`` for two numbers (an int for two counts), else None."""
    numbers = (int, float)
    if not isinstance(a, numbers) or not isinstance(b, numbers) or isinstance(a, bool) or isinstance(b, bool):
        return None
    if isinstance(a, int) and isinstance(b, int):
        return b - a
    return float(b) - float(a)


class ComparisonTable(ValuesTableView):
    """Two runs' values side by side with their difference."""

    def __init__(self, first_column: str, tooltip: str, parent: QWidget | None = None) -> None:
        self._first_column = first_column
        super().__init__(comparison_columns(first_column, "A", "B"), tooltip, parent)

    def set_comparison(
        self, a_title: str, b_title: str, rows: Sequence[Sequence[Any]], senses: Sequence[int] | None = None
    ) -> None:
        """Show ``[name, a, b, difference]`` rows under the two runs' titles (``senses``: see set_rows)."""
        self.values.set_rows(rows, comparison_columns(self._first_column, a_title, b_title), senses)
