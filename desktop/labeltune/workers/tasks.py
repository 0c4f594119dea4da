"""A worker runs one core job in a ``QThread``; a GUI-side controller owns the thread.

The controller quits and waits for the thread when the worker ends and re-emits ``finished``,
``stopped`` or ``failed``; widgets and tests listen to the controller, never to the worker (whose signals
come from another thread). A job ends in exactly one of the three: ``finished`` carries its result (never a
stand-in for a stop), ``stopped`` says it ended early on the stop event (:class:`StoppedError`), ``failed``
carries the message (superqt's ``returned``/``aborted``/``errored``; ADR 0023). Subclasses override the
plain method :meth:`Worker.work`, never a slot: in PySide6 an overridden ``@Slot`` in a subclass runs in
the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from labeltune.core.errors import LabelTuneError
from labeltune.core.file_problems import storage_error
from labeltune.core.progress import Progress, StoppedError

log = logging.getLogger(__name__)


class Worker(QObject):
    """Base worker: ``work()`` runs in the thread; progress is throttled to about 10 signals a second."""

    progressed = Signal(object)  # Progress
    reported = Signal(object)  # job-specific events (e.g. an EpochRecord)
    finished = Signal(object)  # the result of work()
    stopped = Signal()  # work() ended early on the stop event (StoppedError): there is no result
    failed = Signal(str, str)  # a readable message, details (traceback) to copy

    min_interval = 0.1

    def __init__(self) -> None:
        super().__init__()
        self.stop_event = threading.Event()
        self._last_progress = 0.0
        self._last_stage = ""

    def work(self) -> Any:
        """Do the job (runs in the worker thread); override this plain method."""
        raise NotImplementedError

    def report(self, progress: Progress) -> None:
        """Progress callback for core functions: emits at most every ``min_interval`` s.

        The last report of a stage and the first of a new one always go through: they say what the job
        is doing now ("saving the model" while the user waits for Stop).
        """
        now = time.monotonic()
        if (
            now - self._last_progress >= self.min_interval
            or (progress.total and progress.done >= progress.total)
            or progress.stage != self._last_stage
        ):
            self._last_progress = now
            self._last_stage = progress.stage
            self.progressed.emit(progress)

    @Slot()
    def run(self) -> None:
        """Run :meth:`work` and turn every outcome into a signal."""
        try:
            result = self.work()
        except StoppedError:
            self.stopped.emit()
        except LabelTuneError as error:
            self.failed.emit(str(error), traceback.format_exc())
        except OSError as error:  # a disk failure no core function worded: the same words (ADR 0042)
            log.warning("worker failed: %s", error, exc_info=True)
            self.failed.emit(str(storage_error(error, action="")), traceback.format_exc())
        except Exception as error:  # every failure must reach the user, whatever it is
            log.exception("worker failed")
            self.failed.emit(f"{type(error).__name__}: {error}", traceback.format_exc())
        else:
            self.finished.emit(result)


class FunctionWorker(Worker):
    """Runs ``function(progress_callback, stop_event)``: the shape of every long core job."""

    def __init__(self, function: Callable[[Callable[[Progress], None], threading.Event], Any]) -> None:
        super().__init__()
        self._function = function

    def work(self) -> Any:
        """Call the function."""
        return self._function(self.report, self.stop_event)


class TaskController(QObject):
    """Owns one worker thread at a time; re-emits the worker's signals in the GUI thread."""

    started = Signal()
    progressed = Signal(object)
    reported = Signal(object)
    finished = Signal(object)
    stopped = Signal()
    failed = Signal(str, str)
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: Worker | None = None

    def is_running(self) -> bool:
        """Whether a worker is running."""
        return self._thread is not None

    def start(self, worker: Worker) -> None:
        """Run ``worker`` in a new thread; only one at a time."""
        if self._thread is not None:
            raise RuntimeError("a task is already running")
        thread = QThread()
        thread.setObjectName(type(worker).__name__)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progressed.connect(self.progressed)
        worker.reported.connect(self.reported)
        worker.finished.connect(self._on_worker_finished)
        worker.stopped.connect(self._on_worker_stopped)
        worker.failed.connect(self._on_worker_failed)
        self._thread, self._worker = thread, worker
        thread.start()
        self.started.emit()
        self.running_changed.emit(True)

    def stop(self) -> None:
        """Ask the worker to stop (it ends at its next check and keeps what it has)."""
        if self._worker is not None:
            self._worker.stop_event.set()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop and wait for the worker (when the window closes)."""
        if self._thread is not None and self._worker is not None:
            self._worker.stop_event.set()
            self._thread.quit()
            self._thread.wait(timeout_ms)
            self._cleanup()

    def _cleanup(self) -> None:
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        if thread is not None:
            thread.quit()
            thread.wait()
            thread.deleteLater()
        if worker is not None:
            worker.deleteLater()
        self.running_changed.emit(False)

    @Slot(object)
    def _on_worker_finished(self, result: object) -> None:
        self._cleanup()
        self.finished.emit(result)

    @Slot()
    def _on_worker_stopped(self) -> None:
        self._cleanup()
        self.stopped.emit()

    @Slot(str, str)
    def _on_worker_failed(self, message: str, details: str) -> None:
        self._cleanup()
        self.failed.emit(message, details)
