"""Label as… : every class from the keyboard, however many there are.

Keys 1–9 reach the first nine classes; this popup (key ``L`` in the Label tab) reaches all of them: type a
few letters of the name (or its number), ↑/↓ to move, Enter to label, Esc to close.  Names match
ignoring case, and ``_``/``-`` match a space, so "chromis ch" finds ``Chromis_chrysura``.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from labeltune.ui.gallery import class_colour


def _normalised(text: str) -> str:
    return " ".join(text.casefold().replace("_", " ").replace("-", " ").split())


def class_matches(query: str, classes: Sequence[str]) -> list[int]:
    """Indices of ``classes`` that ``query`` finds: its number, or every word as part of the name.

    Names that start with the query come first, then the others, each in class order.
    """
    text = _normalised(query)
    if not text:
        return list(range(len(classes)))
    if text.isdigit():  # "1" finds 1 and 10–19, in order
        return [i for i in range(len(classes)) if str(i + 1).startswith(text)]
    words = text.split()
    found = [i for i, name in enumerate(classes) if all(word in _normalised(name) for word in words)]
    return sorted(found, key=lambda i: not _normalised(classes[i]).startswith(text))


class ClassChooser(QDialog):
    """A small filterable list of the project's classes; ``chosen`` carries the class picked."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("classChooser")
        self.setWindowTitle("Label as…")
        self._classes: list[str] = []
        self.search_edit = QLineEdit()
        self.search_edit.setObjectName("classChooserSearch")
        self.search_edit.setPlaceholderText("Type a class name or number…")
        self.search_edit.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setObjectName("classChooserList")
        self.list.setUniformItemSizes(True)
        self.hint = QLabel("↑/↓ choose · Enter labels · Esc closes")
        self.hint.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search_edit)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.hint)
        self.resize(360, 420)
        self.search_edit.textChanged.connect(self._refill)
        self.search_edit.installEventFilter(self)
        self.list.itemActivated.connect(self._on_list_item_activated)

    def ask(self, classes: Sequence[str], targets: str) -> None:
        """Show the classes (``targets`` says which images get the label) and wait for a choice."""
        self._classes = list(classes)
        self.setWindowTitle(f"Label {targets} as…")
        self.search_edit.clear()
        self._refill("")
        self.open()
        self.search_edit.setFocus(Qt.FocusReason.PopupFocusReason)

    def _refill(self, query: str) -> None:
        self.list.clear()
        for index in class_matches(query, self._classes):
            name = self._classes[index]
            key = str(index + 1) if index < 9 else "  "
            item = QListWidgetItem(f"{key}  {name}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setForeground(self.palette().text())
            item.setData(Qt.ItemDataRole.DecorationRole, class_colour(index))
            item.setToolTip(name)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """↑/↓ in the search box move in the list; Enter picks the highlighted class."""
        if (
            watched is self.search_edit
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
        ):
            key = Qt.Key(event.key())
            steps = {Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1, Qt.Key.Key_PageUp: -8, Qt.Key.Key_PageDown: 8}
            if key in steps:
                row = max(0, min(self.list.count() - 1, self.list.currentRow() + steps[key]))
                self.list.setCurrentRow(row)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                item = self.list.currentItem()
                if item is not None:
                    self._on_list_item_activated(item)
                return True
        return super().eventFilter(watched, event)

    def _on_list_item_activated(self, item: QListWidgetItem) -> None:
        name = str(item.data(Qt.ItemDataRole.UserRole))
        self.accept()
        self.chosen.emit(name)
