"""The XRD project's pattern list: file names, label summaries, a mark when labeled; importing more.

The list is in project order, or "least sure first": the patterns the model is most unsure about (its
``XrdPrediction.uncertainty``, which the page supplies as ``doubt``) on top, unidentified ones last.
After an audit (ui/xrd_audit.py) it can also show only the likely label errors (most likely first) or the
near-duplicates (a group's members side by side); a pattern fixed meanwhile stays listed until the list
is filled again, so ticking the phases one by one does not make it jump away (ADR 36).

The import (read every file to check it, copy it) runs in a worker; files it skips are listed with the
reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.audit_store import DUPLICATES, LABEL_ERRORS, AuditFindings
from labeltune.core.xrd.readers import SUPPORTED_EXTENSIONS
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.errors import show_error
from labeltune.workers.tasks import FunctionWorker, TaskController

PATH_ROLE = Qt.ItemDataRole.UserRole

Describe = Callable[[Path], tuple[str, str]]
"""(text, tooltip) of a pattern's row."""
Doubt = Callable[[Path], float | None]
"""How unsure the model is about a pattern, 0..1 (``None``: not identified yet)."""
LabelText = Callable[[Path], str]
"""A pattern's label as the audit writes it (phases joined by ";")."""
ORDERS = ("Project order", "Least sure first", "Likely label errors", "Near-duplicates")
LEAST_SURE, LABEL_ERROR_ORDER, DUPLICATE_ORDER = 1, 2, 3
AUDIT_KINDS = {LABEL_ERROR_ORDER: LABEL_ERRORS, DUPLICATE_ORDER: DUPLICATES}


class PatternListPanel(QWidget):
    """Lists the patterns; says which one is current and when the user wants to import more."""

    current_changed = Signal(object)  # Path of the current pattern, or None
    imported = Signal(list)  # the pattern files an import added to the project
    name_labels_requested = Signal()  # "Labels from file names…" pressed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: XrdProject | None = None
        self.import_controller = TaskController(self)
        self._describe: Describe = lambda path: (path.name, str(path))
        self._doubt: Doubt = lambda _path: None
        self.findings: AuditFindings | None = None
        self._label_text: LabelText = lambda _path: ""
        self._paths: list[Path] = []
        self.order_box = QComboBox()
        self.order_box.setObjectName("patternOrder")
        self.order_box.addItems(list(ORDERS))
        self.order_box.setToolTip(
            "Least sure first: the patterns whose phases the model is least sure of (a probability near "
            "0.5, or a competing phase set that fits almost as well) on top; unidentified ones last.\n"
            "Likely label errors / Near-duplicates: what the last audit found (Find likely label errors…)"
        )
        self.list = QListWidget()
        self.list.setObjectName("patternList")
        self.list.setToolTip("Patterns of the project; ✓ = labeled. Up/Down move between them")
        self.list.setAlternatingRowColors(True)
        # long file names (a lab's "NiO_0p1031-La(OH)3_0p2025-...--8min.xrdml") are elided, not scrolled
        # sideways away from their labels; the tooltip holds the whole name
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.count_label = QLabel()
        self.count_label.setObjectName("patternCount")
        self.import_button = QPushButton("&Import patterns…")
        self.import_button.setToolTip("Copy pattern files into the project (unreadable files are listed)")
        self.name_labels_button = QPushButton("Labels from file &names…")
        self.name_labels_button.setToolTip(
            "Label the patterns with what their file names say (Li2CO3_0p9001-ZrO2_0p1000--8min: Li2CO3 "
            "90.01 %, ZrO2 10.00 %), after a preview"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.addWidget(QLabel("Patterns"), 1)
        header.addWidget(self.order_box)
        layout.addLayout(header)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.count_label)
        layout.addWidget(self.import_button)
        layout.addWidget(self.name_labels_button)
        self.name_labels_button.clicked.connect(self.name_labels_requested)
        self.list.currentItemChanged.connect(self._on_list_current_changed)
        self.import_button.clicked.connect(self.choose_and_import)
        self.order_box.currentIndexChanged.connect(self._on_order_box_current_index_changed)
        self.import_controller.finished.connect(self._on_import_controller_finished)
        self.import_controller.failed.connect(self._on_import_controller_failed)
        self.import_controller.running_changed.connect(self._on_import_controller_running_changed)

    def fill(self, paths: Sequence[Path], describe: Describe, select: Path | None = None) -> Path | None:
        """List ``paths`` (rows from ``describe``) and make ``select`` (or the first) current, silently.

        Returns the current pattern.
        """
        self._describe = describe
        self._paths = list(paths)
        self.list.blockSignals(True)
        self.list.clear()
        for path in self._ordered(self._paths):
            item = QListWidgetItem()
            item.setData(PATH_ROLE, str(path))
            self.list.addItem(item)
            self._describe_item(item)
        row = self.row_of(select) if select is not None else -1
        if row < 0 and self.list.count():
            row = 0
        self.list.setCurrentRow(row)
        self.list.blockSignals(False)
        return self.current_path()

    def set_doubt(self, doubt: Doubt) -> None:
        """How unsure the model is about each pattern (for "least sure first")."""
        self._doubt = doubt

    def set_least_sure_first(self, on: bool) -> None:
        """Order the list least sure first (or in project order), keeping the current pattern."""
        self.order_box.setCurrentIndex(LEAST_SURE if on else 0)

    def set_findings(self, findings: AuditFindings | None, label_text: LabelText) -> None:
        """The project's stored audit (``None``: none) and each pattern's label (used by the next fill)."""
        self.findings, self._label_text = findings, label_text

    def set_order(self, index: int) -> None:
        """Choose an order of :data:`ORDERS` (the list is filled again, keeping the current pattern)."""
        self.order_box.setCurrentIndex(index)

    def reorder(self) -> None:
        """Sort again (new identifications arrived), keeping the current pattern and not announcing it."""
        if self.order_box.currentIndex() == LEAST_SURE:
            self.fill(self._paths, self._describe, self.current_path())

    def _ordered(self, paths: list[Path]) -> list[Path]:
        kind = AUDIT_KINDS.get(self.order_box.currentIndex())
        if kind is not None:
            findings = self.findings
            if findings is None:
                return []
            kept = [p for p in paths if findings.keeps(kind, str(p), self._label_text(p))]
            return sorted(kept, key=lambda p: findings.rank(kind, str(p)))
        if self.order_box.currentIndex() != LEAST_SURE:
            return paths
        doubts = [self._doubt(path) for path in paths]
        order = sorted(range(len(paths)), key=lambda i: (doubts[i] is None, -(doubts[i] or 0.0), i))
        return [paths[i] for i in order]

    def _on_order_box_current_index_changed(self, index: int) -> None:
        """Sort again; the audit's orders start at their top (the most likely first)."""
        before = self.current_path()
        current = self.fill(self._paths, self._describe, None if index in AUDIT_KINDS else before)
        if current != before:
            self.current_changed.emit(current)

    def paths(self) -> list[Path]:
        """The listed patterns, in order."""
        return [self._path(self.list.item(row)) for row in range(self.list.count())]

    def current_path(self) -> Path | None:
        """The current pattern."""
        item = self.list.currentItem()
        return None if item is None else self._path(item)

    def row_of(self, path: Path | None) -> int:
        """The row of ``path`` (-1 when not listed)."""
        for row in range(self.list.count()):
            if path is not None and self._path(self.list.item(row)) == path:
                return row
        return -1

    def select(self, path: Path) -> None:
        """Make ``path`` current (emits :attr:`current_changed` when it changes)."""
        row = self.row_of(path)
        if row >= 0:
            self.list.setCurrentRow(row)

    def show_neighbour(self, step: int) -> None:
        """Make the previous (-1) or next (+1) pattern current."""
        count = self.list.count()
        if count:
            self.list.setCurrentRow(min(max(self.list.currentRow() + step, 0), count - 1))

    def refresh(self, path: Path | None = None) -> None:
        """Re-describe one row (or all of them)."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            if path is None or self._path(item) == path:
                self._describe_item(item)

    def set_count_text(self, text: str) -> None:
        """The line under the list (``6 of 8 labeled``)."""
        self.count_label.setText(text)

    # -- import -------------------------------------------------------------------------------------
    def choose_and_import(self) -> None:
        """Ask for pattern files and import them into the project."""
        if self.project is None:
            return
        patterns = " ".join(f"*{ext}" for ext in SUPPORTED_EXTENSIONS)
        files, _filter = QFileDialog.getOpenFileNames(
            self, "Import powder patterns", "", f"Powder patterns ({patterns});;All files (*)"
        )
        if files:
            self.import_patterns([Path(f) for f in files])

    def import_patterns(self, paths: Sequence[Path]) -> None:
        """Check and copy pattern files (or folders of them) into the project, in the background."""
        project = self.project
        if project is None or self.import_controller.is_running():
            return
        files = list(paths)
        self.import_controller.start(
            FunctionWorker(lambda progress, stop: project.import_patterns(files, progress, stop))
        )

    def shutdown(self) -> None:
        """Stop an import and wait for it (the window is closing)."""
        self.import_controller.shutdown()

    def _on_import_controller_finished(self, result: tuple[list[Path], list[tuple[str, str]]]) -> None:
        added, skipped = result
        self.imported.emit(list(added))
        if skipped:
            lines = "\n".join(f"{Path(path).name}: {reason}" for path, reason in skipped)
            show_error(
                self,
                "Some files were not imported",
                f"{len(added)} pattern(s) imported; {len(skipped)} file(s) skipped.",
                lines,
            )

    def _on_import_controller_failed(self, message: str, details: str) -> None:
        show_error(self, "Import failed", message, details)

    def _on_import_controller_running_changed(self, running: bool) -> None:
        self.import_button.setEnabled(not running)
        self.import_button.setText("Importing…" if running else "&Import patterns…")

    @staticmethod
    def _path(item: QListWidgetItem) -> Path:
        return Path(str(item.data(PATH_ROLE)))

    def _describe_item(self, item: QListWidgetItem) -> None:
        text, tooltip = self._describe(self._path(item))
        item.setText(text)
        item.setToolTip(tooltip)

    def _on_list_current_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        self.current_changed.emit(None if current is None else self._path(current))
