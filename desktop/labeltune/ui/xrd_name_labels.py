"""Label ▸ Labels from file names…: preview what each pattern's name says, then label them in one step.

``Li2CO3_0p9001-ZrO2_0p1000--8min.xrdml`` says Li2CO3 90.01 %, ZrO2 10.00 %. The dialog shows, per pattern,
the label its name gives (or why it gives none), which of its phases the library has (as a phase or as the
formula of some of its phases) and which it lacks, and the pattern's current label. The spelling is
configurable (:class:`~labeltune.core.xrd.name_labels.NamePattern`). Applying is one write and one undo
step (:meth:`XrdProject.set_each_label`). Parsing is string work: a few milliseconds for hundreds of names.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.xrd.library import Library
from labeltune.core.xrd.name_labels import NameLabel, NamePattern, match_phases, parse_name
from labeltune.core.xrd.xrd_labels import XrdLabel
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.errors import show_error
from labeltune.ui.xrd_phases import WARNING_COLOUR
from labeltune.ui.xrd_results import read_only_table

COLUMNS = ("Pattern", "Label from the name", "In the library", "Label now")
FILE_COLUMN, LABEL_COLUMN, LIBRARY_COLUMN, NOW_COLUMN = range(4)


class XrdNameLabelsDialog(QDialog):
    """Previews the labels the pattern file names state and applies them (``applied``: the keys changed)."""

    applied = Signal(list)

    def __init__(self, project: XrdProject, library: Library | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Labels from file names")
        self.setObjectName("xrdNameLabelsDialog")
        self.resize(900, 560)
        self.project = project
        self.library = library
        self._parsed: list[tuple[Path, NameLabel]] = []
        defaults = NamePattern()
        self.phase_separator_edit = QLineEdit(defaults.phase_separator)
        self.amount_separator_edit = QLineEdit(defaults.amount_separator)
        self.decimal_mark_edit = QLineEdit(defaults.decimal_mark)
        self.end_marker_edit = QLineEdit(defaults.end_marker)
        self.percent_box = QCheckBox("Amounts are weight &percent (A_90-B_10), not fractions (A_0p9-B_0p1)")
        self.keep_box = QCheckBox("&Keep the labels patterns already have")
        self.keep_box.setChecked(True)
        for edit, tip in (
            (self.phase_separator_edit, "What separates one phase from the next (A_0p9-B_0p1: '-')"),
            (self.amount_separator_edit, "What separates a phase from its amount (A_0p9: '_')"),
            (self.decimal_mark_edit, "The decimal mark in names (0p9 = 0.9: 'p'; empty: digits only)"),
            (self.end_marker_edit, "Where the mixture ends and a note starts (…--8min: '--'; empty: none)"),
        ):
            edit.setToolTip(tip)
            edit.setMaximumWidth(80)
            edit.textChanged.connect(self._on_settings_changed)
        self.percent_box.toggled.connect(self._on_settings_changed)
        self.keep_box.toggled.connect(self._on_settings_changed)
        form = QFormLayout()
        form.addRow("Between &phases:", self.phase_separator_edit)
        form.addRow("Between a phase and its &amount:", self.amount_separator_edit)
        form.addRow("&Decimal mark:", self.decimal_mark_edit)
        form.addRow("Mixture &ends at:", self.end_marker_edit)
        self.table = read_only_table(
            "nameLabelsTable",
            COLUMNS,
            "What each pattern's file name says. Phases the library lacks are kept as formula labels: "
            "a model for this library cannot learn them until the library has their structures",
        )
        self.summary_label = QLabel()
        self.summary_label.setObjectName("nameLabelsSummary")
        self.summary_label.setWordWrap(True)
        self.button_box = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.button_box.accepted.connect(self.accept)
        self.button_box.rejected.connect(self.reject)
        options = QHBoxLayout()
        options.addLayout(form)
        checks = QVBoxLayout()
        checks.addWidget(self.percent_box)
        checks.addWidget(self.keep_box)
        checks.addStretch(1)
        options.addLayout(checks, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(options)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.button_box)
        self._on_settings_changed()

    # -- preview ------------------------------------------------------------------------------------
    def name_pattern(self) -> NamePattern | None:
        """The spelling the fields describe (``None`` with a message when it cannot split names)."""
        try:
            return NamePattern(
                phase_separator=self.phase_separator_edit.text(),
                amount_separator=self.amount_separator_edit.text(),
                decimal_mark=self.decimal_mark_edit.text(),
                end_marker=self.end_marker_edit.text(),
                percent=self.percent_box.isChecked(),
            )
        except ValueError as error:
            self.summary_label.setText(f"<span style='color:{WARNING_COLOUR}'>{error}</span>")
            return None

    def labels_to_apply(self) -> dict[Path, XrdLabel]:
        """The labels OK would give: names that state one, unlabeled patterns only unless told otherwise."""
        keep = self.keep_box.isChecked()
        out: dict[Path, XrdLabel] = {}
        for path, parsed in self._parsed:
            if not parsed.ok or (keep and self.project.labels(path).is_labeled):
                continue
            label = XrdLabel(parsed.phases, parsed.fractions)
            if self.project.labels(path) != label:
                out[path] = label
        return out

    def _on_settings_changed(self, *_args: object) -> None:
        pattern = self.name_pattern()
        ok = self.button_box.button(QDialogButtonBox.StandardButton.Ok)
        if pattern is None:
            ok.setEnabled(False)
            return
        self._parsed = [(path, parse_name(path.name, pattern)) for path in self.project.patterns()]
        self._fill_table()
        todo = self.labels_to_apply()
        ok.setText(f"&Label {len(todo)} pattern{'s' if len(todo) != 1 else ''}")
        ok.setEnabled(bool(todo))
        self._update_summary(len(todo))

    def _fill_table(self) -> None:
        warning = QColor(WARNING_COLOUR)
        self.table.setRowCount(len(self._parsed))
        for row, (path, parsed) in enumerate(self._parsed):
            matches = match_phases(parsed.phases, self.library) if parsed.ok else []
            library_text = "; ".join(m.text() for m in matches)
            label_text = parsed.summary() if parsed.ok else f"⚠ {parsed.problem}"
            if parsed.ok and parsed.notes:
                label_text += f" ({'; '.join(parsed.notes)})"
            now = self.project.labels(path)
            texts = (path.name, label_text, library_text, now.summary() if now.is_labeled else "—")
            for column, text in enumerate(texts):
                item = self.table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(row, column, item)
                item.setText(text)
                item.setToolTip(text)
                unknown = column == LIBRARY_COLUMN and any(not m.known for m in matches)
                bad = column == LABEL_COLUMN and not parsed.ok
                item.setData(Qt.ItemDataRole.ForegroundRole, warning if (unknown or bad) else None)

    def _update_summary(self, todo: int) -> None:
        total = len(self._parsed)
        stated = sum(1 for _path, parsed in self._parsed if parsed.ok)
        unknown = sorted(
            {
                m.phase
                for _path, parsed in self._parsed
                if parsed.ok
                for m in match_phases(parsed.phases, self.library)
                if not m.known
            }
        )
        text = (
            f"{stated} of {total} names state a label; {todo} pattern{'s' if todo != 1 else ''} would change."
        )
        if unknown:
            text += (
                f" Not in the library (kept as formula labels): {', '.join(unknown)} — add their CIFs to "
                "the library to train a model that finds them."
            )
        self.summary_label.setText(text)

    # -- apply --------------------------------------------------------------------------------------
    def accept(self) -> None:
        """Label the patterns (one undo step); on a failure say why and stay open."""
        todo = self.labels_to_apply()
        try:
            changed = self.project.set_each_label(todo)
        except Exception as error:  # not saved (disk full, read-only...): labels.csv is as it was
            show_error(self, "Cannot save the labels", str(error))
            return
        self.applied.emit(changed)
        super().accept()


__all__ = ["XrdNameLabelsDialog"]
