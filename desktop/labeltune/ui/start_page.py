"""The start page: new project from a folder, open a project, recent projects, and the shipped demos."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QKeyEvent, QMouseEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCommandLinkButton,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.demos import DEMOS, demo_counts, demo_items
from labeltune.core.settings import Settings

log = logging.getLogger(__name__)

PATH_ROLE = Qt.ItemDataRole.UserRole
MISSING_ROLE = Qt.ItemDataRole.UserRole + 1


def project_title(folder: Path) -> str | None:
    """The name in ``folder``'s ``project.json`` (or ``xrd_project.json``); ``None`` without a project."""
    for file in ("project.json", "xrd_project.json"):
        try:
            data = json.loads((folder / file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return str(data.get("name") or folder.name)
    return None


def _section_title(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 1.25)
    font.setWeight(QFont.Weight.DemiBold)
    label.setFont(font)
    return label


class _RecentDelegate(QStyledItemDelegate):
    """Two lines per recent project: its name (bold) and its folder (smaller, dimmer)."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        """Room for two lines of text and a little padding."""
        metrics = option.fontMetrics  # type: ignore[attr-defined]
        return QSize(200, 2 * metrics.height() + 12)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        """Draw the item's background and focus with the style, then the two lines."""
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        lines = [opt.text, str(index.data(PATH_ROLE) or "")]  # type: ignore[attr-defined]
        opt.text = ""  # type: ignore[attr-defined]
        widget = opt.widget  # type: ignore[attr-defined]
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        missing = bool(index.data(MISSING_ROLE))
        palette = opt.palette  # type: ignore[attr-defined]
        group = QPalette.ColorGroup.Disabled if missing else QPalette.ColorGroup.Normal
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        rect = opt.rect.adjusted(8, 6, -8, -6)  # type: ignore[attr-defined]
        painter.save()
        painter.setPen(palette.color(group, role))
        bold = QFont(opt.font)  # type: ignore[attr-defined]
        bold.setWeight(QFont.Weight.DemiBold)
        painter.setFont(bold)
        height = QFontMetrics(bold).height()
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
        painter.drawText(
            rect, flags, QFontMetrics(bold).elidedText(lines[0], Qt.TextElideMode.ElideRight, rect.width())
        )
        if lines[1]:
            small = QFont(opt.font)  # type: ignore[attr-defined]
            small.setPointSizeF(small.pointSizeF() * 0.9)
            painter.setFont(small)
            if not selected:
                painter.setPen(palette.color(group, QPalette.ColorRole.PlaceholderText))
            path = QFontMetrics(small).elidedText(lines[1], Qt.TextElideMode.ElideMiddle, rect.width())
            painter.drawText(rect.adjusted(0, height + 2, 0, 0), flags, path)
        painter.restore()


class _RecentList(QListWidget):
    """The recent projects, like links: a click or Enter opens one.

    Delete (or the right-click menu) removes the entry from the list, not from disk.
    """

    delete_pressed = Signal()
    _in_double_click = False  # the release that ends a double click opens nothing

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Delete/Backspace forget the selected entry; other keys as usual (Enter opens it)."""
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.currentItem() is not None:
            self.delete_pressed.emit()
            return
        super().keyPressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """A plain left click opens the entry (unless the style does that itself)."""
        super().mouseReleaseEvent(event)
        single_click_style = self.style().styleHint(
            QStyle.StyleHint.SH_ItemView_ActivateItemOnSingleClick, None, self
        )
        plain = event.modifiers() == Qt.KeyboardModifier.NoModifier
        second_of_double, self._in_double_click = self._in_double_click, False
        if (
            event.button() == Qt.MouseButton.LeftButton
            and plain
            and not (single_click_style or second_of_double)
        ):
            item = self.itemAt(event.position().toPoint())
            if item is not None:
                self.itemActivated.emit(item)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        """The first click of a double click has opened the entry already: nothing more."""
        self._in_double_click = True
        event.accept()


class StartPage(QWidget):
    """What the window shows while no project is open."""

    new_project_requested = Signal()
    new_xrd_project_requested = Signal()
    open_project_requested = Signal(str)  # a project folder
    demo_requested = Signal(str)  # a key of labeltune.core.demos.DEMOS

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setObjectName("startPage")

        title = QLabel("LabelTune")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 2.2)
        font.setWeight(QFont.Weight.Bold)
        title.setFont(font)
        subtitle = QLabel(
            "Label your images or diffraction patterns and fine-tune a network on them — offline, on your "
            "own computer."
        )
        subtitle.setWordWrap(True)

        self.new_button = QCommandLinkButton(
            "&New project from a folder…",
            "Pick a folder of images: each sub-folder becomes a class, loose files stay unlabeled. "
            "You see what was found before anything is saved.",
        )
        self.new_button.setObjectName("newProjectButton")
        self.new_button.setToolTip("Create a project from a folder of images (Ctrl+N)")
        self.new_xrd_button = QCommandLinkButton(
            "New &XRD project…",
            "Powder X-ray diffraction patterns: pick a folder for the project and a reference library built "
            "from CIF files; label the phases present and identify them with a trained model.",
        )
        self.new_xrd_button.setObjectName("newXrdProjectButton")
        self.new_xrd_button.setToolTip("Create a project for X-ray diffraction patterns")
        self.open_button = QCommandLinkButton(
            "&Open project…",
            "Open a LabelTune project folder (one that holds project.json, or xrd_project.json for X-ray "
            "diffraction patterns).",
        )
        self.open_button.setObjectName("openProjectButton")
        self.open_button.setToolTip("Open an existing LabelTune project folder (Ctrl+O)")

        self.recent_list = _RecentList()
        self.recent_list.setObjectName("recentList")
        self.recent_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.recent_list.setToolTip("Click or press Enter to open; right-click or Delete to forget the entry")
        self.recent_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.recent_list.setItemDelegate(_RecentDelegate(self.recent_list))
        self.recent_list.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.recent_empty = QLabel("No recent projects yet. Start from a folder of images, or open a demo.")
        self.recent_empty.setWordWrap(True)
        self.recent_empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.recent_empty.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.recent_note = QLabel()
        self.recent_note.setObjectName("recentNote")
        self.recent_note.setWordWrap(True)
        self.forget_button = QPushButton("&Remove from list")
        self.forget_button.setToolTip("Forget the selected recent project (its folder is not touched)")
        self.forget_missing_button = QPushButton("Remove &missing")
        self.forget_missing_button.setToolTip("Forget every recent project whose folder no longer exists")

        left = QVBoxLayout()
        left.addWidget(_section_title("Start"))
        left.addWidget(self.new_button)
        left.addWidget(self.new_xrd_button)
        left.addWidget(self.open_button)
        left.addSpacing(12)
        left.addWidget(_section_title("Recent projects"))
        # One of the two is shown; either takes the spare height, so the buttons above stay together.
        left.addWidget(self.recent_empty, 1)
        left.addWidget(self.recent_list, 1)
        left.addWidget(self.recent_note)
        buttons = QHBoxLayout()
        buttons.addWidget(self.forget_button)
        buttons.addWidget(self.forget_missing_button)
        buttons.addStretch(1)
        left.addLayout(buttons)

        right = QVBoxLayout()
        right.addWidget(_section_title("Demo projects"))
        intro = QLabel(
            "Ready-labeled images and diffraction patterns that ship with LabelTune: try labeling and "
            "training offline."
        )
        intro.setWordWrap(True)
        right.addWidget(intro)
        self.demo_buttons: dict[str, QCommandLinkButton] = {}
        for name, spec in DEMOS.items():
            button = QCommandLinkButton(spec.title, self._demo_text(name))
            button.setObjectName(f"demo_{name}")
            button.setToolTip(
                f"Open your own copy of the {spec.title} demo (made once, in your LabelTune data folder)"
            )
            button.clicked.connect(lambda _checked=False, n=name: self.demo_requested.emit(n))
            self.demo_buttons[name] = button
            right.addWidget(button)
        credits = QLabel("Full data credits and licences: Help ▸ About LabelTune.")
        credits.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        right.addWidget(credits)
        right.addStretch(1)

        columns = QHBoxLayout()
        columns.setSpacing(32)
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(40, 32, 40, 32)
        outer.addWidget(title)
        outer.addWidget(subtitle)
        outer.addSpacing(16)
        outer.addLayout(columns, 1)

        # Keyboard use: Fusion (the usual style on Linux) draws no focus indicator on a command link, and
        # outside a dialog Enter presses a button only if it is an auto-default one.
        self.setStyleSheet(
            "QCommandLinkButton:focus { border: 1px solid palette(highlight); border-radius: 4px; }"
        )
        for button in (self.new_button, self.new_xrd_button, self.open_button, *self.demo_buttons.values()):
            button.setAutoDefault(True)

        self.new_button.clicked.connect(self.new_project_requested)
        self.new_xrd_button.clicked.connect(self.new_xrd_project_requested)
        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.recent_list.itemActivated.connect(self._on_recent_list_item_activated)
        self.recent_list.currentItemChanged.connect(self._on_recent_list_current_changed)
        self.recent_list.delete_pressed.connect(self._on_forget_button_clicked)
        self.recent_list.customContextMenuRequested.connect(self._on_recent_list_context_menu)
        self.forget_button.clicked.connect(self._on_forget_button_clicked)
        self.forget_missing_button.clicked.connect(self._on_forget_missing_button_clicked)
        self.refresh()

    # -- content ------------------------------------------------------------------------------------
    @staticmethod
    def _demo_text(name: str) -> str:
        spec = DEMOS[name]
        try:
            classes, images = len(demo_counts(name)), len(demo_items(name))
        except Exception as error:  # a broken installation must not take the start page down
            log.warning("demo %s unavailable: %s", name, error)
            return f"{spec.description}\nNot available in this installation."
        if spec.domain == "xrd":
            return f"{spec.description} {images} patterns, {classes} phases.\nData: {spec.credit}"
        return f"{spec.description} {classes} classes, {images} images.\nData: {spec.credit}"

    def refresh(self) -> None:
        """Re-read the recent projects from the settings (folders that vanished are shown greyed)."""
        self.recent_list.clear()
        for text in self.settings.recent_projects:
            folder = Path(text)
            name = project_title(folder)
            item = QListWidgetItem()
            item.setData(PATH_ROLE, text)
            item.setData(MISSING_ROLE, name is None)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{name or folder.name}, {text}")
            if name is None:
                item.setText(f"{folder.name} — not found")
                item.setToolTip(f"{text}\nThis folder is gone or is no longer a LabelTune project.")
            else:
                item.setText(name)
                item.setToolTip(f"{text}\nDouble-click or press Enter to open.")
            self.recent_list.addItem(item)
        has_items = self.recent_list.count() > 0
        self.recent_list.setVisible(has_items)
        self.recent_empty.setVisible(not has_items)
        self._set_note("")
        self._update_buttons()

    def _set_note(self, text: str) -> None:
        self.recent_note.setText(text)
        self.recent_note.setVisible(bool(text))

    def missing_projects(self) -> list[str]:
        """Recent projects whose folder (or project.json) is gone, as listed."""
        items = (self.recent_list.item(row) for row in range(self.recent_list.count()))
        return [str(item.data(PATH_ROLE)) for item in items if item.data(MISSING_ROLE)]

    def _update_buttons(self) -> None:
        self.forget_button.setEnabled(self.recent_list.currentItem() is not None)
        self.forget_missing_button.setEnabled(bool(self.missing_projects()))
        self.forget_button.setVisible(self.recent_list.count() > 0)
        self.forget_missing_button.setVisible(self.recent_list.count() > 0)

    def _forget(self, paths: list[str]) -> None:
        self.settings.recent_projects = [p for p in self.settings.recent_projects if p not in paths]
        try:
            self.settings.save()
        except OSError as error:  # the list still changes for this session
            log.warning("cannot save settings: %s", error)
        self.refresh()

    # -- slots --------------------------------------------------------------------------------------
    def _on_open_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a LabelTune project folder")
        if folder:
            self.open_project_requested.emit(folder)

    def _on_recent_list_item_activated(self, item: QListWidgetItem) -> None:
        path = str(item.data(PATH_ROLE))
        if item.data(MISSING_ROLE) and project_title(Path(path)) is None:
            self._set_note(
                f"{path} is no longer a LabelTune project (moved or deleted?). "
                "Remove it from the list, or open the project where it is now with Open project…"
            )
            return
        self.open_project_requested.emit(path)

    def _on_recent_list_current_changed(self, *_items: object) -> None:
        self._set_note("")
        self._update_buttons()

    def _on_recent_list_context_menu(self, position: QPoint) -> None:
        item = self.recent_list.itemAt(position)
        if item is None:
            return
        self.recent_list.setCurrentItem(item)
        menu = QMenu(self.recent_list)
        menu.addAction("&Open", lambda: self._on_recent_list_item_activated(item))
        menu.addAction("&Forget (the project stays on disk)", self._on_forget_button_clicked)
        menu.popup(self.recent_list.viewport().mapToGlobal(position))

    def _on_forget_button_clicked(self) -> None:
        item = self.recent_list.currentItem()
        if item is not None:
            self._forget([str(item.data(PATH_ROLE))])

    def _on_forget_missing_button_clicked(self) -> None:
        self._forget(self.missing_projects())
