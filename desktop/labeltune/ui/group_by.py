"""The Train tab's *Group by* choice, with a live preview of the split it gives.

The choices are those of :mod:`labeltune.core.grouping`: nothing, the import's groups, a file-name pattern
(ready-made ones or a custom regular expression), a column of a CSV file, or the folder of each image.
The preview splits the labeled images from their names only (no image is opened), a quarter of a second
after the last edit, so typing a pattern never waits on it; for large projects (over
:data:`SYNC_LIMIT` labeled images, where the split takes a noticeable fraction of a second) it is
computed in a worker thread, and an edit made meanwhile is previewed when that one is done.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.errors import UnusableInputError
from labeltune.core.grouping import IMPORT_COLUMN, NAME_PRESETS, GroupingSpec, csv_columns
from labeltune.core.grouping_preview import (
    GroupExample,
    GroupingPreview,
    GroupingSuggestion,
    preview_grouping,
    suggest_grouping,
)
from labeltune.workers.tasks import FunctionWorker, TaskController

log = logging.getLogger(__name__)

NONE, IMPORT, PATTERN, CSV, FOLDER = "none", "import", "pattern", "csv", "folder"
KIND_TEXT = {
    NONE: "Nothing: split image by image",
    IMPORT: "Groups that came with the import",
    PATTERN: "Part of the file name",
    CSV: "A column of a CSV file",
    FOLDER: "The folder each image sits in",
}
CUSTOM = "custom"
#: Milliseconds after the last edit before the preview is computed.
DEBOUNCE_MS = 250
#: Up to this many labeled images the preview is computed at once (tens of ms); beyond, in a worker.
SYNC_LIMIT = 5000
#: Per-class counts are listed up to this many classes.
MAX_CLASSES_SHOWN = 8


def example_html(example: GroupExample) -> str:
    """A file name with the part that forms its group in bold (or followed by the group)."""
    name = example.name
    if example.span is not None and example.span[1] > example.span[0]:
        start, end = example.span
        return f"{html.escape(name[:start])}<b>{html.escape(name[start:end])}</b>{html.escape(name[end:])}"
    return f"{html.escape(name)} → <b>{html.escape(str(example.group))}</b>"


def preview_html(preview: GroupingPreview, grouped: bool) -> str:
    """The preview in words: groups, images per side (and per class), examples and warnings."""
    sides = f"{preview.train} training / {preview.val} validation images"
    if not grouped:
        lines = [f"Not grouped: {sides}, chosen image by image."]
    else:
        alone = f" ({preview.alone} images without a group, each on its own)" if preview.alone else ""
        lines = [f"<b>{preview.groups} groups</b>{alone} → {sides}."]
    if 1 < len(preview.per_class) <= MAX_CLASSES_SHOWN:
        lines.append(
            "Per class: "
            + "; ".join(f"{html.escape(c)} {t} / {v}" for c, (t, v) in preview.per_class.items())
        )
    if preview.examples:
        lines.append("e.g. " + ", ".join(example_html(e) for e in preview.examples))
    lines += [f'<span style="color: #b36b00">{html.escape(w)}</span>' for w in preview.warnings]
    return "<small>" + "<br>".join(lines) + "</small>"


class GroupByBox(QWidget):
    """What keeps related images together in the split, and a preview of the split it gives."""

    preview_updated = Signal()  # the preview (or its error) was recomputed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._paths: list[Path] = []
        self._labels: list[str | None] = []
        self._imported: list[str | None] = []
        self._val_fraction = 0.2
        self._csv_file = ""
        self._import_groups = 0
        self.preview: GroupingPreview | None = None
        self.error = ""

        self.kind_combo = QComboBox()
        for key, text in KIND_TEXT.items():
            self.kind_combo.addItem(text, key)
        self.kind_combo.setToolTip(
            "Images that belong together (frames of one fish track, photos of one plant) must not be split "
            "between training and validation, or the validation score flatters the model"
        )
        self.preset_combo = QComboBox()
        for preset in NAME_PRESETS:
            self.preset_combo.addItem(preset.title, preset.key)
            self.preset_combo.setItemData(
                self.preset_combo.count() - 1, f"e.g. {preset.example}", Qt.ItemDataRole.ToolTipRole
            )
        self.preset_combo.addItem("Custom pattern…", CUSTOM)
        self.pattern_edit = QLineEdit()
        self.pattern_edit.setPlaceholderText(r"e.g. fish_(\d+)_")
        self.pattern_edit.setToolTip(
            "A regular expression searched in each file name: its first group in brackets (or the whole "
            "match) is the group; names it does not match are groups of their own"
        )
        self.csv_button = QPushButton("Choose CSV…")
        self.csv_button.setToolTip(
            "A CSV file with a 'path' column and a column that names each image's group"
        )
        self.column_combo = QComboBox()
        self.column_combo.setToolTip("The column that names each image's group")
        self.csv_label = QLabel()
        self.preview_label = QLabel()
        self.preview_label.setObjectName("groupPreview")
        self.preview_label.setWordWrap(True)
        self.preview_label.setTextFormat(Qt.TextFormat.RichText)
        self.preview_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.preview_label.linkActivated.connect(self._on_preview_label_link_activated)
        self.suggestion: GroupingSuggestion | None = None  # a file-name pattern offered when ungrouped

        self.pattern_row = QWidget()
        pattern_layout = QHBoxLayout(self.pattern_row)
        pattern_layout.setContentsMargins(0, 0, 0, 0)
        pattern_layout.addWidget(self.preset_combo)
        pattern_layout.addWidget(self.pattern_edit, 1)
        self.csv_row = QWidget()
        csv_layout = QHBoxLayout(self.csv_row)
        csv_layout.setContentsMargins(0, 0, 0, 0)
        csv_layout.addWidget(self.csv_button)
        csv_layout.addWidget(self.csv_label, 1)
        csv_layout.addWidget(self.column_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.kind_combo)
        layout.addWidget(self.pattern_row)
        layout.addWidget(self.csv_row)
        layout.addWidget(self.preview_label)

        self._controller = TaskController(self)
        self._controller.finished.connect(self._on_controller_finished)
        self._controller.stopped.connect(self._on_controller_stopped)
        self._controller.failed.connect(self._on_controller_failed)
        self._again = False  # an edit came while the worker computed the previous preview
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.kind_combo.currentIndexChanged.connect(self._on_kind_combo_changed)
        self.preset_combo.currentIndexChanged.connect(self._on_preset_combo_changed)
        self.pattern_edit.textEdited.connect(self._on_pattern_edit_edited)
        self.column_combo.currentIndexChanged.connect(self._on_column_combo_changed)
        self.csv_button.clicked.connect(self._on_csv_button_clicked)
        self._set_import_available(0)
        self._on_preset_combo_changed(0)
        self._show_rows()

    # -- values -------------------------------------------------------------------------------------
    def kind(self) -> str:
        """The chosen kind: ``none``, ``import``, ``pattern``, ``csv`` or ``folder``."""
        return str(self.kind_combo.currentData())

    def spec_text(self) -> str:
        r"""The chosen grouping as a spec (core/grouping.py), e.g. ``regex:fish_(\d+)_``."""
        kind = self.kind()
        if kind == IMPORT:
            return f"csv:{IMPORT_COLUMN}"
        if kind == PATTERN:
            return f"regex:{self.pattern_edit.text()}"
        if kind == CSV:
            column = self.column_combo.currentText()
            return f"csv:{column}@{self._csv_file}" if column and self._csv_file else "csv:"
        return kind

    def checked_spec(self) -> str:
        """:meth:`spec_text`, or :class:`UnusableInputError` saying what is missing or wrong."""
        if self.kind() == CSV and not (self._csv_file and self.column_combo.currentText()):
            raise UnusableInputError(
                "group by a CSV column: choose the CSV file and the column that names groups"
            )
        text = self.spec_text()
        GroupingSpec.parse(text)
        return text

    def set_spec_text(self, text: str | None) -> None:
        """Show a stored spec; empty means the import's groups where there are any, else nothing."""
        try:
            spec = GroupingSpec.parse(text)
        except UnusableInputError:  # an invalid custom pattern stays editable
            spec = GroupingSpec("pattern", pattern=str(text or "").removeprefix("regex:"))
        import_ok = self._import_groups > 0
        if spec.kind == "auto" or (spec.kind == "csv" and spec.column == IMPORT_COLUMN and not spec.csv_file):
            self._select(IMPORT if import_ok else NONE)
        elif spec.kind == "csv":
            self.set_csv_file(spec.csv_file, spec.column)
            self._select(CSV)
        elif spec.kind == "pattern":
            self.set_pattern(spec.pattern)
            self._select(PATTERN)
        else:
            self._select(spec.kind)
        self._schedule()

    def set_pattern(self, pattern: str) -> None:
        """Choose the preset with this pattern, or the custom pattern."""
        keys = [p.key for p in NAME_PRESETS if p.pattern == pattern]
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(keys[0] if keys else CUSTOM))
        self.preset_combo.blockSignals(False)
        self.pattern_edit.setText(pattern)
        self.pattern_edit.setReadOnly(bool(keys))
        self._schedule()

    def set_csv_file(self, file: str, column: str = "") -> None:
        """Use ``file`` and list its columns (``column``, else a ``group``-like one, is chosen)."""
        self._csv_file = file
        self.csv_label.setText(Path(file).name if file else "no file chosen")
        self.csv_label.setToolTip(file)
        self.column_combo.blockSignals(True)
        self.column_combo.clear()
        try:
            columns = [c for c in csv_columns(file) if c.lower() != "path"] if file else []
        except UnusableInputError as exc:
            columns = []
            log.info("cannot read the group CSV: %s", exc)
        self.column_combo.addItems(columns)
        lowered = [c.lower() for c in columns]
        wanted = column.lower() if column else IMPORT_COLUMN
        if wanted in lowered:
            self.column_combo.setCurrentIndex(lowered.index(wanted))
        self.column_combo.blockSignals(False)
        self._schedule()

    def set_samples(
        self, paths: Sequence[Path], labels: Sequence[str | None], imported: Sequence[str | None]
    ) -> None:
        """The project's images, labels and imported groups, for the preview."""
        self._paths, self._labels, self._imported = list(paths), list(labels), list(imported)
        self._set_import_available(len({g for g in self._imported if g is not None}))
        self._schedule()

    def set_val_fraction(self, fraction: float) -> None:
        """The validation share the preview splits with."""
        self._val_fraction = fraction
        self._schedule()

    def update_preview(self) -> None:
        """Compute the preview (normally :data:`DEBOUNCE_MS` after the last edit).

        At once for up to :data:`SYNC_LIMIT` labeled images, else in a worker; ``preview_updated``
        follows either way.
        """
        self._timer.stop()
        if self._controller.is_running():
            self._again = True
            return
        labeled = sum(1 for label in self._labels if label is not None)
        if not labeled:
            self._show_preview(None, note="No labeled images yet.")
            return
        spec, paths, labels = self.spec_text(), list(self._paths), list(self._labels)
        imported, fraction = list(self._imported), self._val_fraction
        suggest = self.kind() == NONE  # nothing chosen: offer a file-name pattern that looks meaningful

        def compute(_progress: object = None, _stop: object = None) -> tuple[GroupingPreview, Any]:
            preview = preview_grouping(spec, paths, labels, imported, fraction)
            return preview, suggest_grouping(paths, labels) if suggest else None

        if labeled <= SYNC_LIMIT:
            try:
                self._show_preview(*compute(), error="")
            except UnusableInputError as exc:
                self._show_preview(None, error=str(exc))
            return

        self.preview_label.setText(f"<small>Working out the split of {labeled:,} images…</small>")
        self._controller.start(FunctionWorker(compute))

    def show_problem(self, message: str) -> None:
        """Say in the preview why there is none (e.g. the project's images could not be read)."""
        self._show_preview(None, error=message)

    def shutdown(self) -> None:
        """Wait for a preview being computed (the window is closing)."""
        self._timer.stop()
        self._controller.shutdown()

    def _show_preview(
        self,
        preview: GroupingPreview | None,
        suggestion: GroupingSuggestion | None = None,
        *,
        error: str = "",
        note: str = "",
    ) -> None:
        self.preview, self.error, self.suggestion = preview, error, suggestion
        kind = self.kind()
        if error:
            self.preview_label.setText(f'<small><span style="color: red">{html.escape(error)}</span></small>')
        elif preview is not None:
            text = preview_html(preview, kind != NONE)
            if suggestion is not None and kind == NONE:
                text += (
                    "<br><small><b>Tip:</b> many file names share "
                    f"{html.escape(suggestion.preset.title.lower())} (e.g. "
                    f"<b>{html.escape(suggestion.example)}</b>): {suggestion.groups} groups, "
                    f"{suggestion.grouped_images} images with others. If those are frames of one track or "
                    f"photos of one plant, keep them together: "
                    f'<a href="preset:{suggestion.preset.key}">group by it</a>.</small>'
                )
            self.preview_label.setText(text)
        else:
            self.preview_label.setText(f"<small>{note}</small>")
        self.pattern_edit.setStyleSheet("color: red" if error and kind == PATTERN else "")
        self.preview_updated.emit()

    def _on_controller_finished(self, result: tuple[GroupingPreview, Any]) -> None:
        if not self._update_again():
            self._show_preview(*result)

    def _on_controller_stopped(self) -> None:
        self._update_again()

    def _update_again(self) -> bool:
        """Compute the preview again if the settings changed while the last one was computed."""
        if not self._again:
            return False
        self._again = False
        self.update_preview()
        return True

    def _on_controller_failed(self, message: str, _details: str) -> None:
        if self._again:
            self._again = False
            self.update_preview()
            return
        self._show_preview(None, error=message)

    # -- helpers ------------------------------------------------------------------------------------
    def _import_index(self) -> int:
        return self.kind_combo.findData(IMPORT)

    def _set_import_available(self, groups: int) -> None:
        """Offer the import's groups only where the import brought some."""
        self._import_groups = groups
        index = self._import_index()
        view = self.kind_combo.view()
        if index >= 0:
            self.kind_combo.setItemText(
                index, f"{KIND_TEXT[IMPORT]} ({groups} groups)" if groups else KIND_TEXT[IMPORT]
            )
            if isinstance(view, QListView):
                view.setRowHidden(index, not groups)
            model = self.kind_combo.model()
            item = model.item(index) if hasattr(model, "item") else None
            if item is not None:
                item.setEnabled(bool(groups))
            if not groups and self.kind() == IMPORT:
                self._select(NONE)

    def _select(self, kind: str) -> None:
        index = self.kind_combo.findData(kind)
        if index >= 0:
            self.kind_combo.setCurrentIndex(index)
        self._show_rows()

    def _show_rows(self) -> None:
        self.pattern_row.setVisible(self.kind() == PATTERN)
        self.csv_row.setVisible(self.kind() == CSV)

    def _schedule(self) -> None:
        self._timer.start()

    # -- slots --------------------------------------------------------------------------------------
    def _on_timer_timeout(self) -> None:
        self.update_preview()

    def _on_kind_combo_changed(self, _index: int) -> None:
        self._show_rows()
        if self.kind() == CSV and not self._csv_file:
            self.csv_label.setText("no file chosen")
        self._schedule()

    def _on_preview_label_link_activated(self, link: str) -> None:
        if link.startswith("preset:"):
            self.preset_combo.setCurrentIndex(self.preset_combo.findData(link.removeprefix("preset:")))
            self._select(PATTERN)

    def _on_preset_combo_changed(self, _index: int) -> None:
        key = self.preset_combo.currentData()
        preset = next((p for p in NAME_PRESETS if p.key == key), None)
        if preset is not None:
            self.pattern_edit.setText(preset.pattern)
        self.pattern_edit.setReadOnly(preset is not None)
        self._schedule()

    def _on_pattern_edit_edited(self, _text: str) -> None:
        self._schedule()

    def _on_column_combo_changed(self, _index: int) -> None:
        self._schedule()

    def _on_csv_button_clicked(self) -> None:
        start = str(Path(self._csv_file).parent) if self._csv_file else str(Path.home())
        file, _ = QFileDialog.getOpenFileName(
            self, "CSV file with groups", start, "CSV files (*.csv);;All files (*)"
        )
        if file:
            self.set_csv_file(file)
