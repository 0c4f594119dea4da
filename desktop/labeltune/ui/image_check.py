"""Results ▸ *Check all images*: predict the project's images with one run, in a worker thread.

The predictions (calibrated confidence, unfamiliar-input score) are stored in the project; the session then
tells the Label tab, which shows them. The check belongs to the project it started on: when another project
is shown by the time it ends, its line is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from labeltune.ui.errors import show_error
from labeltune.ui.run_details import CHECK_TEXT
from labeltune.ui.runs_list import RunDetails
from labeltune.ui.session import ProjectSession
from labeltune.workers.tasks import FunctionWorker, TaskController


class ImageCheck(QObject):
    """Runs the check of one run on the open project and says how it goes on ``button`` and ``label``."""

    def __init__(self, session: ProjectSession, button: QPushButton, label: QLabel, parent: QWidget) -> None:
        """Drive ``button`` (its text: check or stop) and ``label`` (progress and outcome)."""
        super().__init__(parent)
        self.session = session
        self.button = button
        self.label = label
        self._widget = parent  # errors are shown over it
        self.controller = TaskController(self)
        self._checking_folder: Path | None = None  # and the folder of its project
        self._checking_run: str | None = None  # the run being (or last) checked
        self._shown_run: str | None = None  # the run whose details the line is under
        self.controller.progressed.connect(self._on_controller_progressed)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.stopped.connect(self._on_controller_stopped)
        self.controller.failed.connect(self._on_controller_failed)
        self.controller.running_changed.connect(self._on_controller_running_changed)

    def start(self, details: RunDetails | None) -> bool:
        """Predict all the project's images with the run of ``details``, in a worker thread.

        False when nothing was started (no project or run, or a check is running already).
        """
        project = self.session.project
        if project is None or details is None or self.controller.is_running():
            return False
        folder, run_id, run_dir = project.folder, str(details.run["id"]), str(details.run["path"])

        def check(progress: Any, stop: Any) -> dict[str, Any]:
            from labeltune.core.inference import predict_project

            return predict_project(folder, run_id, run_dir, progress=progress, stop_event=stop)

        self._checking_folder, self._checking_run = folder, run_id
        if self._shown_run in (None, run_id):
            self.label.setText("Checking the images…")
        self.controller.start(FunctionWorker(check))
        return True

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
            same = run_id == self._checking_run
            self.label.setText("Checking the images…" if same else "Checking the images with another run…")
        elif project.has_predictions(run_id):
            self.label.setText("Already checked: the Label tab can show what this model says.")
        else:
            self.label.clear()

    def toggle(self, details: RunDetails | None) -> None:
        """Stop a running check, else start one (the button does both)."""
        if self.controller.is_running():
            self.controller.stop()
        else:
            self.start(details)

    def stop(self) -> None:
        """Stop a running check (its project is being closed); its line is cleared."""
        self.controller.stop()
        self.label.clear()

    def shutdown(self) -> None:
        """Stop a running check and wait for it (the window is closing)."""
        self.controller.stop()
        self.controller.shutdown()

    def _on_controller_running_changed(self, running: bool) -> None:
        self.button.setText("Stop checking" if running else CHECK_TEXT)

    def _shows_checked_project(self) -> bool:
        project = self.session.project
        return project is not None and project.folder == self._checking_folder

    def _on_controller_progressed(self, progress: Any) -> None:
        if progress.total and self._shows_checked_project() and self._shown_run in (None, self._checking_run):
            self.label.setText(f"Checking the images… {progress.done} of {progress.total}")

    def _on_controller_stopped(self) -> None:
        if self._shows_checked_project() and self._shown_run in (None, self._checking_run):
            self.label.setText("Stopped; nothing was stored.")  # (not when its project was closed meanwhile)

    def _on_controller_finished(self, result: dict[str, Any]) -> None:
        if not self._shows_checked_project():  # its project was closed meanwhile
            return
        unfamiliar = int(result["unfamiliar"])
        text = f"Checked {result['predicted']} images."
        if unfamiliar:
            verb = "looks" if unfamiliar == 1 else "look"
            text += (
                f" <b>{unfamiliar} {verb} unlike the training images</b>: see them in the Label tab "
                "(Show: Unfamiliar to the model)."
            )
        else:
            text += " None looks unlike the training images. The Label tab shows what the model says."
        if self._shown_run in (None, self._checking_run):
            self.label.setText(text)
        self.session.notify_predictions_changed(self._checking_run)  # the Label tab shows this run's answers

    def _on_controller_failed(self, message: str, details: str) -> None:
        if self._shows_checked_project():
            self.label.setText("The check failed.")
        show_error(self._widget, "Cannot check the images", message, details)
