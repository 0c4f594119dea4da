"""The class list beside the gallery: hotkey, colour and image count of each class, and class editing."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QKeyEvent, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.errors import LabelTuneError
from labeltune.ui.errors import show_error
from labeltune.ui.gallery import class_colour
from labeltune.ui.session import ProjectSession

log = logging.getLogger(__name__)

NAME_ROLE = Qt.ItemDataRole.UserRole + 1  # class name; None on the "Unlabeled" row
KEY_COLUMN, NAME_COLUMN, COUNT_COLUMN = 0, 1, 2


def _swatch(colour: QColor, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return QIcon(pixmap)


class _ClassTree(QTreeWidget):
    """The list itself; Delete and F2 edit the selected class, Enter shows its images."""

    delete_pressed = Signal()
    rename_pressed = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Delete removes, F2 renames the selected class."""
        if event.key() == Qt.Key.Key_Delete:
            self.delete_pressed.emit()
        elif event.key() == Qt.Key.Key_F2:
            self.rename_pressed.emit()
        else:
            super().keyPressEvent(event)


class ClassPanel(QWidget):
    """Classes in hotkey order with their counts, the unlabeled count, and add/rename/merge/delete."""

    class_activated = Signal(object)  # a class name, or None for "Unlabeled": show those images

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        """List the classes of ``session``'s project and keep the counts current."""
        super().__init__(parent)
        self.session = session
        self._counts: dict[str, int] = {}
        self._unlabeled = 0
        self.tree = _ClassTree()
        self.tree.setObjectName("classTree")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Key", "Class", "Images"])
        self.tree.setRootIsDecorated(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # "Plectrogly…_dickii": both ends show
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.setToolTip(
            "Classes and their hotkeys. Double-click (or Enter) shows a class's images; right-click to "
            "rename, merge, delete or reorder. Select several classes to merge them."
        )
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(KEY_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COUNT_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        self.total_label = QLabel()
        self.total_label.setObjectName("classTotalLabel")

        self.add_button = self._button("Add…", "Add a class (it gets the next free hotkey)", self.add_class)
        self.rename_button = self._button("Rename…", "Rename the selected class (F2)", self.rename_class)
        self.merge_button = self._button(
            "Merge…", "Merge the selected classes into one (their images are relabeled)", self.merge_classes
        )
        self.delete_button = self._button(
            "Delete…", "Delete the selected class; its images become unlabeled (Del)", self.delete_class
        )
        buttons = QGridLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for i, button in enumerate(
            (self.add_button, self.rename_button, self.merge_button, self.delete_button)
        ):
            buttons.addWidget(button, i // 2, i % 2)
        title = QLabel("<b>Classes</b>")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.total_label)
        layout.addLayout(buttons)

        self.tree.itemActivated.connect(self._on_tree_item_activated)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.customContextMenuRequested.connect(self._on_tree_context_menu_requested)
        self.tree.delete_pressed.connect(self.delete_class)
        self.tree.rename_pressed.connect(self.rename_class)
        session.project_opened.connect(self.refresh)
        session.project_closed.connect(self.refresh)
        session.classes_changed.connect(self.refresh)
        session.labels_changed.connect(self.refresh)
        session.samples_changed.connect(self.refresh)
        self.refresh()

    def _button(self, text: str, tip: str, slot: object) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda: slot())  # type: ignore[operator]  # drop the "checked" argument
        return button

    # -- contents -----------------------------------------------------------------------------------
    def preferred_width(self, cap: int = 360) -> int:
        """Width that shows every class name whole (up to ``cap`` px): key, swatch, name and count."""
        metrics = self.tree.fontMetrics()
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        names = [item.text(NAME_COLUMN) for item in items if item is not None]
        name = max((metrics.horizontalAdvance(n) for n in names), default=0) + 16 + 24  # swatch, padding
        key = metrics.horizontalAdvance("Key") + 16
        count = metrics.horizontalAdvance("Images") + 20
        scrollbar = self.tree.verticalScrollBar().sizeHint().width()
        return min(cap, max(170, key + name + count + scrollbar + 2 * self.tree.frameWidth() + 4))

    def counts(self) -> dict[str, int]:
        """Images per class as shown (in class order)."""
        return dict(self._counts)

    def unlabeled_count(self) -> int:
        """Unlabeled images as shown."""
        return self._unlabeled

    def refresh(self, *_args: object) -> None:
        """Read classes and counts from the project (one indexed query) and redraw the list."""
        project = self.session.project
        selected = set(self.selected_classes())
        self.tree.clear()
        if project is None or project.closed:
            self._counts, self._unlabeled = {}, 0
            self.total_label.setText("")
            self._update_buttons()
            return
        self._counts = project.counts()
        self._unlabeled = project.unlabeled_count()
        classes = project.classes
        for i, name in enumerate(classes):
            item = QTreeWidgetItem(["L" if i >= 9 else str(i + 1), name, f"{self._counts.get(name, 0):,}"])
            item.setData(0, NAME_ROLE, name)
            item.setIcon(NAME_COLUMN, _swatch(class_colour(i)))
            tip = (
                f"{name}: press {i + 1} to label" if i < 9 else f"{name}: press L and type its name to label"
            )
            item.setToolTip(NAME_COLUMN, tip)
            item.setToolTip(KEY_COLUMN, tip)
            self._align(item)
            self.tree.addTopLevelItem(item)
            item.setSelected(name in selected)
        unlabeled = QTreeWidgetItem(["0", "Unlabeled", f"{self._unlabeled:,}"])
        unlabeled.setData(0, NAME_ROLE, None)
        font = QFont(self.tree.font())
        font.setItalic(True)
        unlabeled.setFont(NAME_COLUMN, font)
        unlabeled.setIcon(NAME_COLUMN, _swatch(class_colour(-1)))
        unlabeled.setToolTip(NAME_COLUMN, "Images without a label: press 0 or Delete to remove a label")
        self._align(unlabeled)
        self.tree.addTopLevelItem(unlabeled)
        total = sum(self._counts.values()) + self._unlabeled
        self.total_label.setText(f"{total:,} images, {total - self._unlabeled:,} labeled")
        self._update_buttons()

    @staticmethod
    def _align(item: QTreeWidgetItem) -> None:
        item.setTextAlignment(KEY_COLUMN, Qt.AlignmentFlag.AlignCenter)
        item.setTextAlignment(COUNT_COLUMN, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def selected_classes(self) -> list[str]:
        """Names of the selected classes (the Unlabeled row is not a class), in class order."""
        names = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            name = item.data(0, NAME_ROLE) if item is not None else None
            if item is not None and item.isSelected() and name is not None:
                names.append(str(name))
        return names

    def _update_buttons(self) -> None:
        has_project = self.session.project is not None
        count = len(self.selected_classes())
        self.add_button.setEnabled(has_project)
        self.rename_button.setEnabled(count == 1)
        self.merge_button.setEnabled(count >= 1 and has_project and len(self._counts) > 1)
        self.delete_button.setEnabled(count >= 1)

    # -- class editing (arguments given: no dialog; tests and scripts) -------------------------------
    def _run(self, title: str, action: object) -> bool:
        try:
            action()  # type: ignore[operator]
        except LabelTuneError as error:
            show_error(self, title, str(error))
            return False
        return True

    def add_class(self, name: str | None = None) -> bool:
        """Add a class (asks for its name when none is given); False if nothing was added."""
        if self.session.project is None:
            return False
        if name is None:
            name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
            if not ok:
                return False
        return self._run("Cannot add the class", lambda: self.session.add_class(name))

    def rename_class(self, old: str | None = None, new: str | None = None) -> bool:
        """Rename a class (the selected one, asking for the new name when not given)."""
        old = old if old is not None else next(iter(self.selected_classes()), None)
        if old is None:
            return False
        if new is None:
            new, ok = QInputDialog.getText(self, "Rename class", f"New name for “{old}”:", text=old)
            if not ok:
                return False
        return self._run("Cannot rename the class", lambda: self.session.rename_class(old, new))

    def merge_classes(self, sources: Sequence[str] | None = None, target: str | None = None) -> bool:
        """Merge classes (the selected ones) into ``target`` (asked for, and may be a new name)."""
        project = self.session.project
        names = list(sources) if sources is not None else self.selected_classes()
        if project is None or not names:
            return False
        if target is None:
            choices = [c for c in project.classes if c not in names] + names
            target, ok = QInputDialog.getItem(
                self, "Merge classes", f"Relabel the images of {', '.join(names)} as:", choices, 0, True
            )
            if not ok:
                return False
        return self._run("Cannot merge the classes", lambda: self.session.merge_classes(names, target))

    def delete_class(self, name: str | None = None, confirm: bool = True) -> bool:
        """Delete a class (the selected one); its images become unlabeled. Asks first unless told not to."""
        name = name if name is not None else next(iter(self.selected_classes()), None)
        if name is None:
            return False
        if confirm:
            count = self._counts.get(name, 0)
            answer = QMessageBox.question(
                self,
                "Delete class",
                f"Delete the class “{name}”? Its {count:,} images become unlabeled.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        return self._run("Cannot delete the class", lambda: self.session.delete_class(name))

    def move_class(self, name: str, delta: int) -> bool:
        """Move a class up (-1) or down (+1) in the list; hotkeys follow the order."""
        project = self.session.project
        if project is None or name not in project.classes:
            return False
        order = project.classes
        i = order.index(name)
        j = max(0, min(len(order) - 1, i + delta))
        if i == j:
            return False
        order.insert(j, order.pop(i))
        return self._run("Cannot reorder the classes", lambda: self.session.reorder_classes(order))

    # -- slots --------------------------------------------------------------------------------------
    def _on_tree_item_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        self.class_activated.emit(item.data(0, NAME_ROLE))

    def _on_tree_context_menu_requested(self, position: QPoint) -> None:
        item = self.tree.itemAt(position)
        menu = QMenu(self)
        name = item.data(0, NAME_ROLE) if item is not None else None
        if item is not None:
            menu.addAction("Show these images", lambda: self.class_activated.emit(name))
        menu.addAction("Add class…", self.add_class)
        if name is not None:
            menu.addAction("Rename…", lambda: self.rename_class(name)).setShortcut(QKeySequence("F2"))
            menu.addAction("Merge selected…", self.merge_classes)
            menu.addAction("Move up", lambda: self.move_class(name, -1))
            menu.addAction("Move down", lambda: self.move_class(name, +1))
            menu.addSeparator()
            menu.addAction("Delete…", lambda: self.delete_class(name)).setShortcut(
                QKeySequence.StandardKey.Delete
            )
        menu.popup(self.tree.viewport().mapToGlobal(position))
