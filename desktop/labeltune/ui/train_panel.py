"""The Train tab: settings on the left; Start/Stop, progress with ETA, live curves and the outcome.

Training runs in a :class:`TrainWorker` thread; this panel only reacts to its controller's signals. The
progress, curves and result line are a :class:`TrainMonitor` (shared with the XRD panel); this panel keeps
the form, starting and continuing runs, listing them in the project and the wording of the outcome.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QWidget,
)

from labeltune.core.backbones import DEFAULT_BACKBONE
from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress
from labeltune.core.run_state import StoppedRun, stopped_run
from labeltune.core.train_config import TrainConfig
from labeltune.core.training import RunResult, new_run_dir
from labeltune.core.weights import weights_present
from labeltune.ui.errors import show_error
from labeltune.ui.session import ProjectSession
from labeltune.ui.train_form import TrainSettingsForm
from labeltune.ui.train_monitor import MonitoredPanel, TrainMonitor
from labeltune.ui.train_status import summary_text
from labeltune.ui.weights_dialog import BUNDLED, IMAGENET, RANDOM, WeightsDialog
from labeltune.workers.tasks import TaskController
from labeltune.workers.torchrun import TorchrunWorker
from labeltune.workers.training import TrainWorker

log = logging.getLogger(__name__)


RESUME_TIP = "Continue the stopped run from its last epoch, up to its planned epochs"


class TrainPanel(MonitoredPanel):
    """Trains a classifier on the open project's labeled images without freezing the window."""

    run_finished = Signal(object)  # Path of the run folder (finished or stopped with a model)

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.controller = TaskController(self)
        self.weights_dialog: WeightsDialog | None = None
        self.last_result: RunResult | None = None
        #: The stopped run that Continue resumes: the last one here, or one found in the project's runs.
        self.resumable: StoppedRun | None = None
        self._resuming = False
        self._pending: TrainConfig | None = None
        self._project_folder: Path | None = None

        self.form = TrainSettingsForm(session)
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(400)
        scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

        self.data_label = QLabel()
        self.data_label.setWordWrap(True)
        self.start_button = QPushButton("&Start training")
        self.start_button.setToolTip(
            "Train on the labeled images of this project with the settings on the left"
        )
        self.monitor = TrainMonitor()
        self.summary_label.setObjectName("trainSummary")
        self.resume_button = QPushButton("&Continue stopped run")
        self.resume_button.setToolTip(RESUME_TIP)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.resume_button)
        buttons.addStretch(1)
        self.monitor.header.addWidget(self.data_label)
        self.monitor.header.addLayout(buttons)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addWidget(self.monitor, 1)

        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.controller.running_changed.connect(self._on_controller_running_changed)
        self.controller.progressed.connect(self._on_controller_progressed)
        self.controller.reported.connect(self._on_controller_reported)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.stopped.connect(self._on_controller_stopped)
        self.controller.failed.connect(self._on_controller_failed)
        self.form.epochs_spin.valueChanged.connect(self._on_form_epochs_changed)
        session.project_opened.connect(self._on_session_project_opened)
        session.project_closed.connect(self._on_session_project_closed)
        self.curves.set_epochs(self.form.epochs_spin.value())
        self.resumable = self._newest_stopped_run()  # a stopped run survives a restart of the app
        self._update_data_label()
        self._update_buttons()

    # -- actions ------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """Whether a training runs."""
        return self.controller.is_running()

    def start(self) -> None:
        """Start training with the form's settings (asking for missing ImageNet weights first)."""
        if self.session.project is None or self.is_running():
            return
        try:
            config = self.form.config()
        except UnusableInputError as error:
            show_error(self, "Cannot start training", str(error))
            return
        self.form.save_settings()
        self.start_config(config)

    def start_config(self, config: TrainConfig) -> str:
        """Start a run with ``config`` (the form's, or Label ▸ Retrain's); the reason when it cannot start."""
        if self.session.project is None:
            return "no project is open"
        if self.is_running():
            return "a training is running on the Train tab"
        if config.weights == IMAGENET and not weights_present(config.backbone):
            self._pending = config
            self.weights_dialog = WeightsDialog(config.backbone, self)
            self.weights_dialog.finished.connect(self._on_weights_dialog_finished)
            self.weights_dialog.open()
            return ""
        folder, run_dir, gpus = (
            self.session.project.folder,
            new_run_dir(self.session.project.runs_dir),
            self.form.gpus(),
        )
        if gpus > 1:  # torchrun in a child process, read by the same monitor (ADR 0051)
            self._start_worker(TorchrunWorker(folder, config, run_dir, gpus))
        else:
            self._start_worker(TrainWorker(folder, config, run_dir))
        return ""

    def resume(self) -> None:
        """Continue the stopped run (:attr:`resumable`) from its checkpoint."""
        if self.resumable is not None:
            self.resume_run(self.resumable.run_dir)

    def resume_run(self, run_dir: Path) -> bool:
        """Continue the stopped run in ``run_dir`` (e.g. chosen in the runs list); False if it cannot be."""
        if self.session.project is None or self.is_running() or stopped_run(run_dir) is None:
            return False
        self.form.show_run_settings(Path(run_dir))  # the form shows what this run trains with
        folder, gpus = self.session.project.folder, self.form.gpus()
        if gpus > 1:
            self._start_worker(TorchrunWorker(folder, None, Path(run_dir), gpus, resume=True))
        else:
            self._start_worker(TrainWorker(folder, None, Path(run_dir), resume=True))
        self._resuming = True
        return True

    def stop(self) -> None:
        """Ask the training to stop within the current step (it keeps the best model)."""
        if self.is_running():
            self.controller.stop()
            self.monitor.show_stopping()

    def shutdown(self) -> None:
        """Stop a running training and wait for it (the window is closing)."""
        if self.weights_dialog is not None:
            self.weights_dialog.shutdown()
        self.controller.shutdown()
        self.form.shutdown()

    def _start_worker(self, worker: TrainWorker | TorchrunWorker) -> None:
        project = self.session.require()
        self._project_folder = project.folder
        self.last_result = None
        self._resuming = False
        self.monitor.begin(worker.config.epochs if worker.config is not None else 0, "Starting…")
        self.controller.start(worker)

    # -- state --------------------------------------------------------------------------------------
    def _newest_stopped_run(self) -> StoppedRun | None:
        """The newest of the project's runs that was stopped and can be continued (its folder says so)."""
        project = self.session.project
        runs = project.runs() if project is not None else []
        for run in sorted(runs, key=lambda r: (r.get("created") or 0, str(r["id"])), reverse=True):
            if (run.get("metrics") or {}).get("stopped"):
                found = stopped_run(Path(str(run["path"])))
                if found is not None:
                    return found
        return None

    def _update_buttons(self) -> None:
        running = self.is_running()
        has_project = self.session.project is not None
        self.start_button.setEnabled(has_project and not running)
        self.stop_button.setEnabled(running)
        stopped = self.resumable is not None
        self.resume_button.setEnabled(has_project and not running and stopped)
        self.resume_button.setVisible(stopped and not running)
        if self.resumable is not None:
            self.resume_button.setToolTip(f"{RESUME_TIP} (this run: {self.resumable.describe()})")
        self.form.setEnabled(not running)

    def _update_data_label(self) -> None:
        project = self.session.project
        if project is None:
            self.data_label.setText("Open a project to train a model on its labeled images.")
            return
        counts = {name: n for name, n in project.counts(include_excluded=False).items() if n}  # as trained
        total = sum(counts.values())
        if len(counts) < 2:
            self.data_label.setText(
                f"{total} labeled images in {len(counts)} class(es): "
                "label images of at least two classes first."
            )
        else:
            smallest = min(counts, key=lambda name: counts[name])
            self.data_label.setText(
                f"{total} labeled images in {len(counts)} classes "
                f"(smallest: {smallest}, {counts[smallest]} images)."
            )

    def showEvent(self, event: QShowEvent) -> None:
        """Refresh the data summary and weights status when the tab is shown."""
        super().showEvent(event)
        self._update_data_label()
        self.form.backbone_picker.refresh()

    # -- slots --------------------------------------------------------------------------------------
    def _on_weights_dialog_finished(self, _code: int) -> None:
        dialog, config = self.weights_dialog, self._pending
        self._pending = None
        self.form.backbone_picker.refresh()
        if dialog is None or config is None or self.session.project is None:
            return
        if dialog.outcome == RANDOM:
            self.form.set_weights(RANDOM)
            self.form.save_settings()
            config.weights = RANDOM
        elif dialog.outcome == BUNDLED:
            self.form.backbone_picker.set_backbone(DEFAULT_BACKBONE)
            self.form.save_settings()
            config.backbone = DEFAULT_BACKBONE
        if dialog.outcome in (IMAGENET, RANDOM, BUNDLED):
            project = self.session.project
            self._start_worker(TrainWorker(project.folder, config, new_run_dir(project.runs_dir)))
        dialog.deleteLater()
        self.weights_dialog = None

    def _on_controller_running_changed(self, _running: bool) -> None:
        self._update_buttons()

    def _on_controller_progressed(self, progress: Progress) -> None:
        if self._shows_run_project():  # (not a run of a project closed meanwhile, stopping)
            self.monitor.show_progress(progress)

    def _on_controller_reported(self, event: object) -> None:
        if self._shows_run_project():
            self.monitor.report(event)

    def _on_controller_stopped(self) -> None:
        """Stopped before there was a model: nothing was kept."""
        if not self._shows_run_project():  # the project was closed while its run stopped
            self._show_blank()
        else:
            self.monitor.end(
                "Stopped before training went on; the run is unchanged and can still be continued."
                if self._resuming
                else "Stopped before training began; nothing was saved.",
                bar=0,
            )
        self._update_buttons()

    def _on_controller_finished(self, result: RunResult) -> None:
        if not self._shows_run_project():  # the project was closed while its run stopped
            self._record(result)  # listed in its own project, shown when that one is open again
            self._show_blank()
            self._update_buttons()
            return
        self.last_result = result
        self.resumable = stopped_run(result.run_dir) if result.stopped else None
        self.monitor.end("Stopped." if result.stopped else "Done.", bar=None if result.stopped else 100)
        self.summary_label.setText(summary_text(result))
        self._record(result)
        self._update_buttons()
        self.run_finished.emit(Path(result.run_dir))

    def _on_controller_failed(self, message: str, details: str) -> None:
        if not self._shows_run_project():
            self._update_buttons()
            show_error(self, "Training of a closed project failed", message, details)
            return
        self.monitor.show_failure(message)
        self._update_buttons()
        show_error(self, "Training failed", message, details)

    def _record(self, result: RunResult) -> None:
        """List the run in its project (the open one, or its folder if another project is open now)."""
        run_dir = Path(result.run_dir)
        args: tuple[Any, ...] = (run_dir.name, run_dir, result.backbone, result.strategy, result.to_json())
        project = self.session.project
        try:
            if project is not None and project.folder == self._project_folder:
                project.record_run(*args)
                self.session.notify_runs_changed()
            elif self._project_folder is not None:
                from labeltune.core.project import Project

                with Project.open(self._project_folder) as other:
                    other.record_run(*args)
        except Exception as error:  # the run is on disk; failing to list it must not lose the result
            log.exception("cannot record run %s", run_dir)
            show_error(
                self,
                "Cannot list the run in the project",
                f"The run is saved in {run_dir}, but it could not be added to the project: {error}",
                traceback.format_exc(),
            )

    def _on_form_epochs_changed(self, epochs: int) -> None:
        if not self.is_running():
            self.monitor.show_planned(epochs)

    def _shows_run_project(self) -> bool:
        """Whether the open project is the one the last (or running) training was for."""
        project = self.session.project
        return project is not None and project.folder == self._project_folder

    def _show_blank(self, stage: str = "Ready.") -> None:
        """Nothing of an earlier project's training: empty plots for the planned epochs."""
        self.last_result = None
        self.monitor.epochs = 0
        self.monitor.show_blank(self.form.epochs_spin.value(), stage)

    def _on_session_project_opened(self, _project: object) -> None:
        if self.session.project is None:  # an XRD project: the XRD page trains on it
            return
        if not self._shows_run_project():
            self._show_blank()
        self.resumable = self._newest_stopped_run()
        self._update_data_label()
        self._update_buttons()

    def _on_session_project_closed(self) -> None:
        self.stop()
        self.resumable = None
        self._update_data_label()
        self._update_buttons()
