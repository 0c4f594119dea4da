"""Results ▸ *Check all images*: predict the project's images with one run, in a worker thread.

The predictions (calibrated confidence, unfamiliar-input score) are stored in the project; the session then
tells the Label tab, which shows them. The check belongs to the project it started on: when another project
is shown by the time it ends, its line is left alone. :class:`RunJob` is the shape of such a job (a
button that starts and stops it, a line that says how it goes); *Find likely label errors…*
(:mod:`labeltune.ui.label_audit`) is another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from labeltune.ui.errors import show_error
from labeltune.ui.run_details import CHECK_TEXT
from labeltune.ui.runs_list import RunDetails
from labeltune.ui.session import ProjectSession
from labeltune.workers.tasks import FunctionWorker, TaskController

Job = Callable[[Any, Any], Any]  # function(progress, stop_event), run in the worker thread


class RunJob(QObject):
    """Runs one job of a run on the open project and says how it goes on ``button`` and ``label``.

    Subclasses say what the job is (:meth:`job`), the words, and what its result means
    (:meth:`finished_text`); the session is told with :meth:`ProjectSession.notify_predictions_changed`.
    """

    idle_text = CHECK_TEXT  # the button's text while no job runs
    running_text = "Stop checking"
    busy_text = "Checking the images…"
    failed_text = "The check failed."
    error_title = "Cannot check the images"

    def __init__(self, session: ProjectSession, button: QPushButton, label: QLabel, parent: QWidget) -> None:
        """Drive ``button`` (its text: start or stop) and ``label`` (progress and outcome)."""
        super().__init__(parent)
        self.session = session
        self.button = button
        self.label = label
        self._widget = parent  # errors are shown over it
        self.controller = TaskController(self)
        self._folder: Path | None = None  # the folder of the project the job runs on
        self._run: str | None = None  # the run the job runs (or last ran) with
        self._shown_run: str | None = None  # the run whose details the line is under
        self.controller.progressed.connect(self._on_controller_progressed)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.stopped.connect(self._on_controller_stopped)
        self.controller.failed.connect(self._on_controller_failed)
        self.controller.running_changed.connect(self._on_controller_running_changed)

    def job(self, folder: Path, details: RunDetails) -> Job:
        """The work to run in the worker thread for the project in ``folder`` and the run of ``details``."""
        raise NotImplementedError

    def finished_text(self, result: Any) -> str:
        """The line once the job has finished with ``result``."""
        raise NotImplementedError

    def project_folder(self) -> Path | None:
        """The folder of the open project the job is for (the image project; the XRD audit overrides it)."""
        project = self.session.project
        return None if project is None else project.folder

    def announce(self, run_id: str | None) -> None:
        """Tell the session the job's outcome is stored (the check also makes its run the one shown)."""
        self.session.notify_predictions_changed()

    def start(self, details: RunDetails | None) -> bool:
        """Run the job for the run of ``details`` on the open project, in a worker thread.

        False when nothing was started (no project or run, or a job is running already).
        """
        folder = self.project_folder()
        if folder is None or details is None or self.controller.is_running():
            return False
        job = self.job(folder, details)
        run_id = details.run.get("id")  # (an XRD project's model has none)
        self._folder, self._run = folder, None if run_id is None else str(run_id)
        if self._shown_run in (None, self._run):
            self.label.setText(self.busy_text)
        self.controller.start(FunctionWorker(job))
        return True

    def _says_for_its_run(self) -> bool:
        """Whether the line is under the job's run (the line says nothing about another run's job)."""
        return self._shown_run in (None, self._run)

    def toggle(self, details: RunDetails | None) -> None:
        """Stop a running job, else start one (the button does both)."""
        if self.controller.is_running():
            self.controller.stop()
        else:
            self.start(details)

    def stop(self) -> None:
        """Stop a running job (its project is being closed); its line is cleared."""
        self.controller.stop()
        self.label.clear()

    def shutdown(self) -> None:
        """Stop a running job and wait for it (the window is closing)."""
        self.controller.stop()
        self.controller.shutdown()

    def _on_controller_running_changed(self, running: bool) -> None:
        self.button.setText(self.running_text if running else self.idle_text)

    def _shows_its_project(self) -> bool:
        folder = self.project_folder()
        return folder is not None and folder == self._folder

    def _on_controller_progressed(self, progress: Any) -> None:
        if progress.total and self._shows_its_project() and self._says_for_its_run():
            self.label.setText(f"{self.busy_text} {progress.done} of {progress.total}")

    def _on_controller_stopped(self) -> None:
        if self._shows_its_project() and self._says_for_its_run():  # (not when its project was closed)
            self.label.setText("Stopped; nothing was stored.")

    def _on_controller_finished(self, result: Any) -> None:
        if not self._shows_its_project():  # its project was closed meanwhile
            return
        if self._says_for_its_run():
            self.label.setText(self.finished_text(result))
        self.announce(self._run)

    def _on_controller_failed(self, message: str, details: str) -> None:
        if self._shows_its_project():
            self.label.setText(self.failed_text)
        show_error(self._widget, self.error_title, message, details)


class ImageCheck(RunJob):
    """*Check all images*: predicts every image of the project with one run and stores the answers."""

    def job(self, folder: Path, details: RunDetails) -> Job:
        """Predict the project's images with the run (core/inference.py ``predict_project``)."""
        run_id, run_dir = str(details.run["id"]), str(details.run["path"])

        def check(progress: Any, stop: Any) -> dict[str, Any]:
            from labeltune.core.inference import predict_project

            return predict_project(folder, run_id, run_dir, progress=progress, stop_event=stop)

        return check

    def announce(self, run_id: str | None) -> None:
        """The Label tab shows this run's answers from now on."""
        self.session.notify_predictions_changed(run_id)

    def describe(self, details: RunDetails | None) -> None:
        """Word the line for the run now shown: its check in progress, stored predictions, or nothing.

        The line is under one run's details: what it said about the check of another run is not kept.
        """
        project = self.session.project
        run_id = None if details is None else str(details.run["id"])
        self._shown_run = run_id
        if run_id is None or project is None or project.closed:
            self.label.clear()
        elif self.controller.is_running():
            same = run_id == self._run
            self.label.setText(self.busy_text if same else "Checking the images with another run…")
        elif project.has_predictions(run_id):
            self.label.setText("Already checked: the Label tab can show what this model says.")
        else:
            self.label.clear()

    def finished_text(self, result: dict[str, Any]) -> str:
        """How many images were checked and how many look unfamiliar."""
        unfamiliar = int(result["unfamiliar"])
        text = f"Checked {result['predicted']} images."
        verb = "looks" if unfamiliar == 1 else "look"
        if unfamiliar:
            return text + (
                f" <b>{unfamiliar} {verb} unlike the training images</b>: see them in the Label tab "
                "(Show: Unfamiliar to the model)."
            )
        return text + " None looks unlike the training images. The Label tab shows what the model says."
