"""Big label changes off the GUI thread: a selection of thousands of images, and its undo or redo.

The key handler writes a small change itself (a few milliseconds, committed before the next key press);
a change of more than :data:`BACKGROUND_ABOVE` images is one transaction of several seconds at 100 000
images, so :class:`LabelBatchRunner` runs it in a worker (``Project.assign_labels``, ``undo``, ``redo``:
core/project_store/labels.py writes it through a connection of its own, so the GUI thread reads on) and
hands the result back in the GUI thread, where the gallery is updated once. One batch at a time: the
labeling keys say "still labeling" until it is done. See docs/adr/0039.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QWidget

from labeltune.core.progress import Progress, ProgressCallback
from labeltune.ui.errors import show_error
from labeltune.workers.tasks import FunctionWorker, TaskController

log = logging.getLogger(__name__)

BACKGROUND_ABOVE = 500
"""Label changes of more images than this run in a worker; smaller ones are written in the key handler."""

Job = Callable[[ProgressCallback, threading.Event], object]


class LabelBatchRunner(QObject):
    """Runs one big label change at a time in a worker; says what it does in ``status_label``."""

    def __init__(self, status_label: QLabel, parent: QWidget) -> None:
        """Report progress in ``status_label``; errors appear over ``parent``."""
        super().__init__(parent)
        self.tasks = TaskController(self)
        self.tasks.progressed.connect(self._on_tasks_progressed)
        self.tasks.finished.connect(self._on_tasks_finished)
        self.tasks.failed.connect(self._on_tasks_failed)
        self.tasks.stopped.connect(self._on_tasks_stopped)
        self._status_label = status_label
        self._widget = parent
        self._what = ""
        self._done: Callable[[object], None] | None = None
        self._job_ended = threading.Event()
        self._job_ended.set()

    def busy(self) -> bool:
        """Whether a batch is being written."""
        return self.tasks.is_running()

    def refuse_if_busy(self) -> bool:
        """Say that a batch is still being written (and return ``True``) while one is; else ``False``."""
        if not self.busy():
            return False
        self._status_label.setText(f"Still {self._what[0].lower()}{self._what[1:]} Wait until it is done.")
        return True

    def run(self, what: str, job: Job, done: Callable[[object], None]) -> None:
        """Run ``job(progress, stop_event)`` in a worker, saying ``what``; ``done(result)`` in this thread."""
        self._what, self._done = what, done
        self._job_ended.clear()

        def work(progress: ProgressCallback, stop_event: threading.Event) -> object:
            try:
                return job(progress, stop_event)
            finally:
                self._job_ended.set()

        self._status_label.setText(what)
        self.tasks.start(FunctionWorker(work))

    def wait_for_job(self) -> None:
        """Block until the running job has written (or failed to): before its project closes."""
        self._job_ended.wait()

    def shutdown(self) -> None:
        """Let a running batch end (it commits or rolls back whole), then stop the thread."""
        self.wait_for_job()
        self._done = None  # the page is going: nothing to update
        self.tasks.shutdown()

    def _on_tasks_progressed(self, progress: Progress) -> None:
        percent = f" {100 * progress.done // progress.total} %" if progress.total else ""
        self._status_label.setText(f"{self._what}{percent}")

    def _on_tasks_finished(self, result: object) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(result)

    def _on_tasks_failed(self, message: str, details: str) -> None:
        self._done = None
        self._status_label.setText(f"Not saved: {message}")
        show_error(self._widget, "Cannot change the labels", message, details)

    def _on_tasks_stopped(self) -> None:
        self._done = None
        self._status_label.setText("Stopped: no label was changed")
