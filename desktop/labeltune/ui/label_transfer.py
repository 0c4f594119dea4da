"""File ▸ Export labels… and Import labels…: the open project's labels to and from a CSV file.

The work is core/label_io.py's (the same as ``labeltune labels export|import``), run in a worker because
an import may hash every file of the project to match rows by content. When it ends, a window-modal
message says what happened (:attr:`LabelTransfer.message`, so tests can read it) and, after an import,
the session tells every panel that labels and classes changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from labeltune.core.progress import ProgressCallback
from labeltune.ui.errors import show_error
from labeltune.ui.session import ProjectSession
from labeltune.workers.tasks import FunctionWorker, TaskController

log = logging.getLogger(__name__)

CSV_FILTER = "Label files (*.csv);;All files (*)"


class LabelTransfer(QObject):
    """Exports and imports the open project's labels (either kind) through a worker."""

    done = Signal(str)  # the summary shown to the user, once an export or import ended well

    def __init__(self, session: ProjectSession, parent: QWidget) -> None:
        super().__init__(parent)
        self.session = session
        self._window = parent
        self.controller = TaskController(self)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.failed.connect(self._on_controller_failed)
        self.controller.stopped.connect(lambda: log.info("label transfer stopped"))
        self.message: QMessageBox | None = None
        self._title = ""
        self._imported = False

    def export_labels(self) -> None:
        """Ask for a CSV file and write the open project's labels to it."""
        project = self.session.current_project
        if project is None or self.controller.is_running():
            return
        name, _ = QFileDialog.getSaveFileName(
            self._window, "Export labels", str(project.folder / "labels-export.csv"), CSV_FILTER
        )
        if not name:
            return
        out = Path(name) if Path(name).suffix else Path(name).with_suffix(".csv")

        def work(_report: ProgressCallback, _stop: threading.Event) -> str:
            from labeltune.core.label_io import export_csv
            from labeltune.core.label_targets import label_target

            count = export_csv(label_target(project), out)
            return f"{count} label(s) written to {out}."

        self._start("Labels exported", work, imported=False)

    def import_labels(self) -> None:
        """Ask for a CSV file (``path,label`` or XRD ``path,phases,fractions``) and apply its labels."""
        project = self.session.current_project
        if project is None or self.controller.is_running():
            return
        name, _ = QFileDialog.getOpenFileName(self._window, "Import labels", str(project.folder), CSV_FILTER)
        if not name:
            return
        source = Path(name)

        def work(report: ProgressCallback, stop: threading.Event) -> str:
            from labeltune.core.label_io import import_labels, read_label_csv
            from labeltune.core.label_targets import label_target

            rows = read_label_csv(source)
            # the user chose this file: unknown classes are listed, not added (as the CLI without --new-class)
            result = import_labels(label_target(project), rows, [source.parent], False, report, stop)
            return result.summary()

        self._start("Labels imported", work, imported=True)

    def _start(
        self, title: str, work: Callable[[ProgressCallback, threading.Event], Any], imported: bool
    ) -> None:
        self._title, self._imported = title, imported
        self.controller.start(FunctionWorker(work))

    def _on_controller_finished(self, summary: object) -> None:
        if self._imported:
            self.session.labels_changed.emit([])
            self.session.classes_changed.emit()
        self.message = QMessageBox(
            QMessageBox.Icon.Information, self._title, str(summary), parent=self._window
        )
        self.message.open()
        self.done.emit(str(summary))

    def _on_controller_failed(self, message: str, details: str) -> None:
        if self._imported:  # rows before the failure were committed: show them
            self.session.labels_changed.emit([])
            self.session.classes_changed.emit()
        show_error(self._window, "Cannot transfer the labels", message, details)

    def shutdown(self) -> None:
        """Stop a running transfer and wait for it (the window is closing)."""
        self.controller.shutdown()
