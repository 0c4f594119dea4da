"""Label next and Retrain on the Label tab: the queue of unsure images, and a quick features run after labels.

*Label next* ranks every unlabeled image of the project for the run in use (the one whose predictions the
gallery shows, else the newest; the first 500 are queued) in a worker thread
(:func:`labeltune.core.label_next.label_queue`, the ranking of ``labeltune suggest``), then shows them in
that order as the gallery filter "Label next (least sure first)"; a class key labels one and auto-advance
moves to the next in the queue; the status line says how many are still queued and why the current one is
unsure ("Blight 41 % vs Rust 38 %").

*Retrain* (after at least one new label) asks the Train tab's panel to train a *features* run with the run
in use's settings (:func:`labeltune.core.label_next.retrain_plan`: ADR 34); when it has finished, the
status line shows the change ("Validation accuracy 0.86 → 0.91 (+12 labels)") and the queue is ranked
again by the new run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress
from labeltune.ui.errors import show_error
from labeltune.ui.gallery_bar import QUEUE_FILTER, FilterCombo
from labeltune.ui.gallery_model import GalleryModel
from labeltune.ui.heatmap_panel import predicted_run_dir
from labeltune.ui.session import ProjectSession
from labeltune.workers.tasks import FunctionWorker, TaskController

NEXT_TIP = (
    "Rank the unlabeled images by how unsure the model is (two near-copies are not queued together) "
    "and show them least sure first; a class key labels one and moves to the next"
)
RETRAIN_TIP = (
    "Train a quick features head with the settings of the run in use on every label now (seconds, "
    "on cached features), then show the change in validation accuracy and rank the queue again"
)


class LabelNextController(QObject):
    """The Label next and Retrain buttons, the queue's worker and what the status line says about it."""

    #: A retraining run to start (a TrainConfig): the image page hands it to the Train tab's panel.
    retrain_requested = Signal(object)
    queue_shown = Signal(int)  # the queue is in the gallery: how many images it holds

    def __init__(
        self,
        session: ProjectSession,
        model: GalleryModel,
        filter_combo: FilterCombo,
        status_label: QLabel,
        parent: QObject | None = None,
    ) -> None:
        """Work on ``session``'s project; show the queue with ``filter_combo``; talk in ``status_label``."""
        super().__init__(parent)
        self.session = session
        self.model = model
        self.filter_combo = filter_combo
        self.status_label = status_label
        self.task = TaskController(self)
        self.queue: dict[str, Any] = {}  # normalised path -> QueueItem, of the queue shown
        self._queue_run: Path | None = None
        self._retrained_run: Path | None = None  # the run Retrain made: in use from then on
        self._retrain_base: Path | None = None  # set while a retraining run trains
        self._new_labels: set[int] = set()

        self.widget = QWidget()
        self.next_button = QPushButton("Label &next")
        self.next_button.setObjectName("labelNextButton")
        self.next_button.setToolTip(NEXT_TIP)
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(120)
        self.progress_bar.setVisible(False)
        self.retrain_button = QPushButton("&Retrain")
        self.retrain_button.setObjectName("retrainButton")
        self.retrain_button.setToolTip(RETRAIN_TIP)
        self.change_label = QLabel()  # the last retrain's change, kept in view
        self.change_label.setObjectName("retrainChangeLabel")
        layout = QHBoxLayout(self.widget)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.next_button, self.progress_bar, self.retrain_button, self.change_label):
            layout.addWidget(widget)
        layout.addStretch(1)

        self.next_button.clicked.connect(self._on_next_button_clicked)
        self.retrain_button.clicked.connect(self.retrain)
        self.task.progressed.connect(self._on_task_progressed)
        self.task.finished.connect(self._on_task_finished)
        self.task.stopped.connect(self._on_task_stopped)
        self.task.failed.connect(self._on_task_failed)
        self.task.running_changed.connect(self._update_buttons)
        session.project_opened.connect(self._on_session_project_opened)
        session.project_closed.connect(self._on_session_project_opened)
        session.labels_changed.connect(self._on_session_labels_changed)
        session.current_changed.connect(self._on_session_current_changed)
        session.runs_changed.connect(self._update_buttons)
        session.predictions_changed.connect(self._on_session_predictions_changed)
        self._update_buttons()

    # -- the run in use -----------------------------------------------------------------------------
    def run_in_use(self) -> Path | None:
        """The run Retrain made, else the one whose predictions the gallery shows, else the newest run."""
        project = self.session.project
        if project is None or project.closed:
            return None
        if self._retrained_run is not None:
            return self._retrained_run
        shown = predicted_run_dir(project, self.model.predicted_run)
        if shown is not None:
            return shown
        runs = project.runs()
        return Path(runs[-1]["path"]) if runs else None

    # -- Label next ---------------------------------------------------------------------------------
    def start(self) -> bool:
        """Rank the unlabeled images for the run in use in a worker; False if there is nothing to rank."""
        run_dir, project = self.run_in_use(), self.session.project
        if run_dir is None or project is None:
            self._say("Label next needs a trained model: train one on the Train tab first")
            return False
        if self.task.is_running():
            return False
        from labeltune.core.label_next import label_queue

        folder = project.folder
        self._queue_run = run_dir
        self.progress_bar.setRange(0, 0)
        self._say(f"Label next: ranking the unlabeled images for {run_dir.name}…")
        self.task.start(
            FunctionWorker(lambda progress, stop: label_queue(run_dir, folder, "auto", progress, stop))
        )
        return True

    def stop(self) -> None:
        """Stop ranking (within the current batch of images)."""
        self.task.stop()

    def shutdown(self) -> None:
        """Wait for a ranking in progress (the window is closing)."""
        self.task.shutdown()

    def status_text(self, sample_id: int | None) -> str:
        """``Label next: 11 queued · this one: Blight 41 % vs Rust 38 %`` (empty outside the queue)."""
        if self.model.filter != QUEUE_FILTER:
            return ""
        rows = range(self.model.rowCount())
        queued = sum(1 for row in rows if self.model.label(row) is None)
        text = f"Label next: {queued:,} queued, least sure first"
        row = self.model.row_of(sample_id) if sample_id is not None else -1
        item = self.queue.get(os.path.normpath(self.model.path(row))) if row >= 0 else None
        if item is not None and self.model.label(row) is None:
            text += f" · this one: {item.reason()}"
        return text

    def _on_next_button_clicked(self) -> None:
        if self.task.is_running():
            self.stop()
        else:
            self.start()

    def _on_task_progressed(self, progress: Progress) -> None:
        self.progress_bar.setRange(0, max(0, progress.total))
        self.progress_bar.setValue(progress.done)

    def _on_task_finished(self, result: tuple[list[Any], list[tuple[str, str]]]) -> None:
        items, skipped = result
        self.queue = {os.path.normpath(str(item.path)): item for item in items}
        if not items:
            self._say("Label next: no unlabeled images to rank")
            return
        self.filter_combo.show_queue(tuple(os.path.normpath(str(item.path)) for item in items))
        if self.model.rowCount():
            self.model_first_row()
        unreadable = f" · {len(skipped):,} unreadable left out" if skipped else ""
        self._say(self.status_text(self.session.current_id) + unreadable)
        self.queue_shown.emit(len(items))

    def model_first_row(self) -> None:
        """Show the first unlabeled image of the queue."""
        row = self.model.next_unlabeled_row(0)
        if row >= 0:
            self.session.set_current(self.model.sample_id(row))

    def _on_task_stopped(self) -> None:
        self._say("Label next stopped; the gallery is unchanged")

    def _on_task_failed(self, message: str, details: str) -> None:
        self._say(f"Label next failed: {message}")
        show_error(self.widget, "Cannot rank the images to label next", message, details)

    # -- Retrain ------------------------------------------------------------------------------------
    def retrain(self) -> bool:
        """Ask for a features run with the settings of the run in use; False when it cannot start."""
        run_dir = self.run_in_use()
        if run_dir is None or self._retrain_base is not None:
            return False
        from labeltune.core.label_next import retrain_plan

        try:
            plan = retrain_plan(run_dir)
        except UnusableInputError as error:
            show_error(self.widget, "Cannot retrain", str(error))
            return False
        self._retrain_base = run_dir
        self._update_buttons()
        self._say(plan.note or f"Retraining a features head on {plan.config.backbone} (Train tab)…")
        self.retrain_requested.emit(plan.config)
        return True

    def retrain_refused(self, reason: str) -> None:
        """The Train tab could not start the run (one is training already): nothing was started."""
        self._retrain_base = None
        self._update_buttons()
        self._say(f"Not retrained: {reason}")

    def retrain_ended(self, run_dir: Path | None) -> None:
        """A training the Train tab ran has ended (``None``: stopped without a model, or failed)."""
        base, self._retrain_base = self._retrain_base, None
        if base is None:  # a run started on the Train tab: it is the newest, so label next uses it
            self._update_buttons()
            return
        if run_dir is None:
            self._say("Retraining ended without a model; the run in use is unchanged")
            self._update_buttons()
            return
        from labeltune.core.label_next import metric_change

        self._retrained_run = Path(run_dir)
        self._new_labels.clear()
        self.change_label.setText(metric_change(base, run_dir))
        self._say(self.change_label.text())
        self._update_buttons()
        if self.model.filter == QUEUE_FILTER or self.queue:
            self.start()  # the new run ranks the queue again

    # -- state --------------------------------------------------------------------------------------
    def _update_buttons(self, *_args: object) -> None:
        running = self.task.is_running()
        has_run = self.run_in_use() is not None
        self.next_button.setText("Stop &next" if running else "Label &next")
        self.next_button.setEnabled(has_run)
        self.progress_bar.setVisible(running)
        waiting = self._retrain_base is not None
        self.retrain_button.setEnabled(has_run and bool(self._new_labels) and not waiting)
        self.retrain_button.setText("Retraining…" if waiting else "&Retrain")

    def _on_session_project_opened(self, *_args: object) -> None:
        self.queue, self._queue_run, self._retrained_run = {}, None, None
        self._retrain_base = None
        self._new_labels.clear()
        self.change_label.clear()
        self.filter_combo.show_queue(None)
        self._update_buttons()

    def _on_session_predictions_changed(self) -> None:
        if self.session.shown_run is not None:  # a run was checked or drilled into: that one is in use
            self._retrained_run = None
        self._update_buttons()

    def _on_session_labels_changed(self, ids: list[int]) -> None:
        project = self.session.project
        if project is None or project.closed or not ids:
            return
        self._new_labels.update(row[0] for row in project.rows(ids=ids) if row[2] is not None)
        self._update_buttons()

    def _on_session_current_changed(self, sample_id: int) -> None:
        text = self.status_text(sample_id)
        if text:
            said = self.status_label.text()
            before = said.split(" · Label next: ")[0] if not said.startswith("Label next:") else ""
            self._say(f"{before} · {text}" if before else text)

    def _say(self, message: str) -> None:
        self.status_label.setText(message)
