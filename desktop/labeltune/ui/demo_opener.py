"""Opening a shipped demo from the start page: written once, in a worker, then opened like any project.

Writing a demo copies its files and, for XRD, computes a peak library: seconds that must not freeze the
window. :class:`DemoOpener` runs :func:`labeltune.core.demos.write_demo` in a
:class:`~labeltune.workers.tasks.FunctionWorker` behind a small window-modal dialog with a progress bar
and Stop; a demo the app has written before opens at once. The window hands it ``open_project``, so
opening a written demo behaves exactly like opening any project folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QDialog, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from labeltune.core import demos
from labeltune.core.progress import Progress
from labeltune.core.xrd.xrd_project import is_xrd_project
from labeltune.ui.errors import show_error
from labeltune.ui.train_status import show_progress
from labeltune.workers.tasks import FunctionWorker, TaskController

log = logging.getLogger(__name__)

ERROR_TITLE = "Cannot open the demo"

#: What each progress stage of a demo writer means, for the dialog.
STAGE_TEXT = {"copy demo": "Copying the demo's files", "library": "Computing the reference peaks"}


def demo_written(folder: Path) -> bool:
    """Whether the app's copy of a demo is there already (an image or an XRD project)."""
    return (folder / "project.json").exists() or is_xrd_project(folder)


def adopt_shipped_model(folder: Path) -> None:
    """A demo written before the shipped XRD model was installed gets it now (if it still has none)."""
    from labeltune.core.xrd.shipped import shipped_model_dir
    from labeltune.core.xrd.xrd_project import XrdProject

    project = XrdProject.open(folder)
    shipped = shipped_model_dir()
    if project.model_dir is None and shipped is not None:
        project.set_model(shipped)


class DemoProgressDialog(QDialog):
    """What the window shows while a demo is written: what is happening, a progress bar and Stop."""

    stop_requested = Signal()

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("demoProgressDialog")
        self.setWindowTitle("Opening a demo")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self._finished = False
        self.heading = QLabel(f"Writing the “{title}” demo project (once; later it opens at once)…")
        self.heading.setWordWrap(True)
        self.status = QLabel("Starting…")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 0)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop writing the demo; nothing is left behind")
        self.stop_button.clicked.connect(self._on_stop_button_clicked)
        layout = QVBoxLayout(self)
        for widget in (self.heading, self.status, self.progress_bar, self.stop_button):
            layout.addWidget(widget)
        self.setMinimumWidth(420)

    def show_progress(self, progress: Progress) -> None:
        """Show a progress report of the writer."""
        if not self.stop_button.isEnabled():
            return  # "Stopping…" stays until the worker ends
        text = STAGE_TEXT.get(progress.stage, progress.stage.capitalize())
        if progress.total > 0:
            text += f": {progress.done} of {progress.total}"
        self.status.setText(text + "…")
        show_progress(self.progress_bar, progress)

    def finish(self) -> None:
        """Close for good (the worker has ended)."""
        self._finished = True
        self.accept()
        self.deleteLater()

    def reject(self) -> None:
        """Escape or the title bar's close button: Stop; the dialog closes once the worker has ended."""
        if self._finished:
            super().reject()
        else:
            self._on_stop_button_clicked()

    def _on_stop_button_clicked(self) -> None:
        if self.stop_button.isEnabled():
            self.stop_button.setEnabled(False)
            self.status.setText("Stopping — removing what was written…")
            self.stop_requested.emit()


class DemoOpener(QObject):
    """Opens shipped demos for one window, writing a demo first (in a worker) when the app has no copy.

    One demo is written at a time; a request while one is being written is ignored (the dialog says
    which). Closing the window stops the writer and waits for it, so no thread outlives the window.
    """

    opened = Signal(object)  # Path: the demo's project folder, handed to open_project
    stopped = Signal()  # the user pressed Stop (or closed the window): nothing was written
    failed = Signal(str)  # the message shown to the user

    def __init__(self, window: QWidget, open_project: Callable[[Path], None]) -> None:
        super().__init__(window)
        self.setObjectName("demoOpener")
        self._window = window
        self._open_project = open_project
        self._closing = False
        self.dialog: DemoProgressDialog | None = None
        self.controller = TaskController(self)
        self.controller.progressed.connect(self._on_controller_progressed)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.stopped.connect(self._on_controller_stopped)
        self.controller.failed.connect(self._on_controller_failed)
        window.installEventFilter(self)

    @classmethod
    def of(cls, window: QWidget, open_project: Callable[[Path], None]) -> DemoOpener:
        """The window's opener, made on first use."""
        opener = window.findChild(cls, "demoOpener", Qt.FindChildOption.FindDirectChildrenOnly)
        return opener if isinstance(opener, cls) else cls(window, open_project)

    def is_writing(self) -> bool:
        """Whether a demo is being written now."""
        return self.controller.is_running()

    def open(self, name: str) -> None:
        """Open demo ``name``: at once when written before, else after writing it in a worker."""
        if self.is_writing():
            return
        self._closing = False  # the window was shown again after a close
        try:
            spec = demos.get_demo(name)
            folder = demos.demo_project_dir(name)
            if demo_written(folder):
                if is_xrd_project(folder):
                    adopt_shipped_model(folder)
                self._open(folder)
                return
        except Exception as error:  # a damaged demo copy or user data dir must not take the app down
            self._fail(str(error))
            return
        self.dialog = DemoProgressDialog(spec.title, self._window)
        self.dialog.stop_requested.connect(self.controller.stop)
        self.controller.start(
            FunctionWorker(lambda progress, stop: demos.write_demo(name, folder, progress, stop))
        )
        self.dialog.open()

    def shutdown(self) -> None:
        """Stop a demo being written and wait for the worker (the window is closing)."""
        self._closing = True
        self.controller.shutdown()
        self._close_dialog()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The window's Close: stop the writer before the window goes."""
        if watched is self._window and event.type() == QEvent.Type.Close and self.is_writing():
            self.shutdown()
        return False

    def _open(self, folder: Path) -> None:
        try:
            self._open_project(folder)
        except Exception as error:
            self._fail(str(error))
            return
        self.opened.emit(folder)

    def _fail(self, message: str, details: str = "") -> None:
        log.warning("cannot open the demo: %s", message)
        show_error(self._window, ERROR_TITLE, message, details)
        self.failed.emit(message)

    def _close_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.finish()
            self.dialog = None

    def _on_controller_progressed(self, progress: Progress) -> None:
        if self.dialog is not None:
            self.dialog.show_progress(progress)

    def _on_controller_finished(self, result: object) -> None:
        self._close_dialog()
        if isinstance(result, Path) and not self._closing:
            self._open(result)

    def _on_controller_stopped(self) -> None:
        self._close_dialog()
        self.stopped.emit()

    def _on_controller_failed(self, message: str, details: str) -> None:
        self._close_dialog()
        if not self._closing:
            self._fail(message, details)
