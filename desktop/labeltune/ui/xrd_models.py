"""The XRD "Models" tab: the project's models with their recorded scores; one click switches the model.

Lists the bundled model, every run of the project and models added from other folders
(:func:`labeltune.core.xrd.model_list.list_models` reads their ``metrics.json``; nothing is recomputed).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.xrd.model_list import BUNDLED, ModelEntry, list_models
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.predict_dialog import PredictFolderDialog

COLUMNS = ("Model", "On your measurements", "On simulated patterns", "Date", "")
USE_COLUMN = 4


def measured_text(entry: ModelEntry) -> str:
    """``6 of 8 fully right (75 %)``, or a dash when no measured score is recorded."""
    if entry.measured_exact is None or not entry.measured_patterns:
        return "—"
    share = entry.measured_exact / entry.measured_patterns * 100
    return f"{entry.measured_exact} of {entry.measured_patterns} fully right ({share:.0f} %)"


def simulated_text(entry: ModelEntry) -> str:
    """``72.6 % of 1024``, or a dash."""
    if entry.simulated_exact is None:
        return "—"
    of = f" of {entry.simulated_patterns}" if entry.simulated_patterns else ""
    return f"{entry.simulated_exact * 100:.1f} %{of}"


def model_title(entry: ModelEntry) -> str:
    """The name with what it is: bundled, fine-tuned from …, added, in use."""
    notes = []
    if entry.origin == BUNDLED:
        notes.append("bundled with the app")
    elif entry.started_from:
        notes.append(f"fine-tuned from {entry.started_from}")
    if entry.kept_previous:
        notes.append("did no better than it: not used")
    if entry.active:
        notes.append("in use")
    return entry.name + (f" ({', '.join(notes)})" if notes else "")


class XrdModelsPanel(QWidget):
    """A table of the project's models; *Use* makes one the project's model, *Add…* picks another folder."""

    model_chosen = Signal(object)  # Path of the model the user picked (the page checks and sets it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: XrdProject | None = None
        self.entries: list[ModelEntry] = []
        self.bundled: Path | None = None
        """Override of the app's bundled model (tests); None: the installed one."""
        self.note_label = QLabel(
            "Scores as recorded by each run: <i>on your measurements</i> counts labeled patterns whose "
            "phases were all found while held out of the model's training."
        )
        self.note_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("xrdModelsTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.add_button = QPushButton("&Add model from folder…")
        self.add_button.setToolTip("Use an XRD model run folder (holds config.json) from elsewhere")
        self.predict_button = QPushButton("Predict a &folder…")
        self.predict_button.setToolTip("Identify the phases of a folder of patterns with the selected model")
        self.predict_dialog: PredictFolderDialog | None = None
        buttons = QHBoxLayout()
        buttons.addWidget(self.predict_button)
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(self._on_add_button_clicked)
        self.predict_button.clicked.connect(self.open_predict_dialog)

    def set_project(self, project: XrdProject | None) -> None:
        """Show ``project``'s models."""
        self.project = project
        self.refresh()

    def refresh(self) -> None:
        """Re-read the list (a run finished or the model changed)."""
        project = self.project
        self.setEnabled(project is not None)
        self.entries = [] if project is None else list_models(project, self.bundled)
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            date = "" if entry.created is None else entry.created.strftime("%Y-%m-%d %H:%M")
            texts = (model_title(entry), measured_text(entry), simulated_text(entry), date)
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setToolTip(self._tooltip(entry))
                if entry.active:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, column, item)
            button = QPushButton("In use" if entry.active else "Use")
            button.setEnabled(not entry.active and entry.problem is None)
            button.setToolTip(entry.problem or f"Identify phases with {entry.name}")
            button.clicked.connect(lambda _checked=False, path=entry.path: self.model_chosen.emit(path))
            self.table.setCellWidget(row, USE_COLUMN, button)

    def open_predict_dialog(self) -> PredictFolderDialog | None:
        """*Predict a folder…* with the selected model, else the one in use (returned for tests)."""
        rows = self.table.selectionModel().selectedRows()
        chosen = [self.entries[rows[0].row()]] if rows else [e for e in self.entries if e.active]
        if not chosen:
            return None
        wavelength = self.project.wavelength if self.project is not None else None
        self.predict_dialog = PredictFolderDialog(chosen[0].path, chosen[0].name, self, wavelength or 1.5406)
        self.predict_dialog.open()
        return self.predict_dialog

    def use_button(self, row: int) -> QPushButton:
        """The *Use* button of a row."""
        widget = self.table.cellWidget(row, USE_COLUMN)
        assert isinstance(widget, QPushButton)
        return widget

    def row_of(self, path: Path) -> int:
        """The row showing the model in ``path`` (-1: none)."""
        for row, entry in enumerate(self.entries):
            if entry.path == path:
                return row
        return -1

    @staticmethod
    def _tooltip(entry: ModelEntry) -> str:
        lines = [str(entry.path)]
        if entry.measured_how:
            lines.append(f"Measured score: {entry.measured_how}")
        if entry.problem:
            lines.append(entry.problem)
        return "\n".join(lines)

    def _on_add_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "XRD model run folder (holds config.json)")
        if folder:
            self.model_chosen.emit(Path(folder))


__all__ = ["XrdModelsPanel", "measured_text", "simulated_text"]
