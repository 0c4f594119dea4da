"""The XRD "Fine-tune" panel: train the phase network on the project's labeled patterns in the background.

With a model, it fine-tunes that model on the labeled measurements (mixed with fresh simulated patterns);
without one — or with one trained on another phase library, which cannot learn this one's phases (ADR
0048) — it trains a new model for the project's library from its simulated patterns ("Train a model for
this library"). A new model becomes the
project's model; a fine-tune only when it did better than its predecessor on labeled patterns held out of
its training (:mod:`labeltune.core.xrd.model_check`), otherwise the panel says so and offers *Use it
anyway*. Training runs in an :class:`XrdTrainWorker`; this panel only follows its controller. The
progress, curves and result line are a :class:`TrainMonitor` (shared with the image Train panel) in XRD
words; this panel keeps the epochs, starting, adopting the new model and the wording of the outcome.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from labeltune.core.progress import Progress
from labeltune.core.trainer import EpochRecord
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.errors import show_error
from labeltune.ui.metrics_table import percent
from labeltune.ui.train_monitor import MonitoredPanel, MonitorWords, TrainMonitor
from labeltune.ui.train_status import duration_text
from labeltune.ui.xrd_phases import WARNING_COLOUR
from labeltune.workers.tasks import TaskController
from labeltune.workers.xrd import XrdTrainWorker

if TYPE_CHECKING:
    from labeltune.core.xrd.training import XrdRunResult

log = logging.getLogger(__name__)

DEFAULT_EPOCHS = 5  # a fine-tuning epoch of 2048 patterns takes a few seconds on a 2-core CPU


def xrd_epoch_text(record: EpochRecord, epochs: int) -> str:
    """One epoch in one line, in XRD words (exact match = every phase of a pattern right)."""
    of = f"/{epochs}" if epochs else ""
    return (
        f"Epoch {record.epoch}{of}: training loss {record.train_loss:.3f} · validation loss "
        f"{record.val_loss:.3f}, all phases right in {percent(record.val_accuracy)} of the simulated "
        f"validation patterns, macro-F1 {record.val_macro_f1:.3f} · {record.seconds:.1f} s"
    )


def xrd_stage_line(progress: Progress) -> str:
    """The stage as the XRD trainer names it, with its message."""
    detail = f" — {progress.message}" if progress.message else ""
    return f"{progress.stage}{detail}"


#: What the monitor says for an XRD run: its epoch line, the stage as named, one stopping line, the time
#: left in the epoch; the bar follows the batches only.
XRD_WORDS = MonitorWords(
    epoch=xrd_epoch_text,
    stage=xrd_stage_line,
    stopping=lambda _stage: "Stopping after the current step; the best model so far is kept…",
    eta=lambda seconds: f"{duration_text(seconds)} left in this epoch",
    follows_epochs=False,
)


def comparison_of(result: XrdRunResult) -> dict[str, Any] | None:
    """The run's comparison with the model it was fine-tuned from (``metrics.json``), if it has one."""
    metrics = result.metrics if isinstance(result.metrics, dict) else {}
    comparison = metrics.get("comparison")
    return comparison if isinstance(comparison, dict) else None


def should_adopt(result: XrdRunResult) -> bool:
    """Whether the project should switch to the run: a new model, or one that beat its predecessor."""
    comparison = comparison_of(result)
    return comparison is None or comparison.get("adopt") is not False


def xrd_summary_text(result: XrdRunResult, adopted: bool = True) -> str:
    """What a finished XRD run achieved and which model the project uses now, as a few lines of rich text."""
    metrics = result.metrics
    epochs = len(result.history)
    unit = "epoch" if epochs == 1 else "epochs"
    lines = [
        f"<b>Stopped</b> after {epochs} {unit}; the best model so far is kept."
        if result.stopped
        else f"<b>Finished</b> {epochs} {unit}."
    ]
    simulated = metrics.get("simulated_validation") if isinstance(metrics, dict) else None
    if isinstance(simulated, dict) and "exact_accuracy" in simulated:
        lines.append(
            f"All phases right in <b>{percent(float(simulated['exact_accuracy']))}</b> of "
            f"{simulated.get('patterns', '?')} simulated validation patterns"
            + (f", macro-F1 {float(simulated['macro_f1']):.3f}." if "macro_f1" in simulated else ".")
        )
    comparison = comparison_of(result)
    if comparison is not None:
        lines.append(html.escape(str(comparison.get("text", ""))))
    name = Path(result.run_dir).name
    if adopted:
        lines.append(f"The project now uses this model: {name}.")
    else:
        previous = Path(str(comparison.get("previous", ""))).name if comparison else "the current model"
        basis = (
            "your held-out labeled patterns"
            if comparison and comparison.get("basis") == "measured"
            else ("simulated patterns")
        )
        lines.append(
            f"<b>Kept the current model</b> ({html.escape(previous)}): the fine-tuned one did not do "
            f"better on {basis}. It is saved as {html.escape(name)} (see the Models tab); "
            "<i>Use it anyway</i> switches to it."
        )
    return "<br>".join(lines)


class XrdTrainPanel(MonitoredPanel):
    """Epochs, Start/Stop, progress with time left, live curves and the outcome of an XRD training."""

    run_finished = Signal(object)  # Path of the new run folder (a usable model, adopted or not)
    use_requested = Signal(object)  # Path of a kept-out run the user wants to use anyway

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: XrdProject | None = None
        self.controller = TaskController(self)
        self.last_result: XrdRunResult | None = None
        # further XrdTrainConfig fields; fine-tuning epochs are shorter than pretraining ones (8192)
        self.config_overrides: dict[str, Any] = {"patterns_per_epoch": 2048}
        self._project_folder: Path | None = None
        # why the project's model cannot identify the library's phases (the page's check; None: it can)
        self.library_problem: Callable[[], str | None] = lambda: None

        self.data_label = QLabel()
        self.data_label.setObjectName("xrdTrainData")
        self.data_label.setWordWrap(True)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 500)
        self.epochs_spin.setValue(DEFAULT_EPOCHS)
        self.epochs_spin.setToolTip("How many passes of training; Stop keeps the best model so far")
        epochs_label = QLabel("&Epochs:")
        epochs_label.setBuddy(self.epochs_spin)
        self.start_button = QPushButton("&Start")
        # Words on the left, curves on the right: the tab is short under the pattern plot, and stacked
        # the curves would be squeezed to a few pixels (their axes cut off).
        self.monitor = TrainMonitor(XRD_WORDS, beside=True)
        self.summary_label.setObjectName("xrdTrainSummary")
        self.curves.accuracy_plot.getPlotItem().setTitle("All phases right")
        self.curves.accuracy_plot.setToolTip(
            "Share of patterns whose every phase was called right, per epoch (validation: simulated)"
        )
        self.use_anyway_button = QPushButton("&Use it anyway")
        self.use_anyway_button.setToolTip("Switch the project to the fine-tuned model although it did worse")
        self.use_anyway_button.setVisible(False)

        controls = QHBoxLayout()
        controls.addWidget(epochs_label)
        controls.addWidget(self.epochs_spin)
        controls.addWidget(self.start_button)
        controls.addWidget(self.stop_button)
        controls.addStretch(1)
        self.monitor.header.addWidget(self.data_label)
        self.monitor.header.addLayout(controls)
        use_row = QHBoxLayout()
        use_row.addWidget(self.use_anyway_button)
        use_row.addStretch(1)
        self.monitor.footer.addLayout(use_row)
        layout = QHBoxLayout(self)
        layout.addWidget(self.monitor)

        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.use_anyway_button.clicked.connect(self._on_use_anyway_button_clicked)
        self.epochs_spin.valueChanged.connect(self._on_epochs_spin_value_changed)
        self.controller.running_changed.connect(self._on_controller_running_changed)
        self.controller.progressed.connect(self._on_controller_progressed)
        self.controller.reported.connect(self._on_controller_reported)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.stopped.connect(self._on_controller_stopped)
        self.controller.failed.connect(self._on_controller_failed)
        self.curves.set_epochs(DEFAULT_EPOCHS)
        self.refresh()

    # -- state --------------------------------------------------------------------------------------
    @property
    def _epochs(self) -> int:
        """The planned epochs of the current (or last) run (the monitor keeps them)."""
        return self.monitor.epochs

    @_epochs.setter
    def _epochs(self, epochs: int) -> None:
        self.monitor.epochs = epochs

    @property
    def _run_records(self) -> list[EpochRecord]:
        """The current (or last) run's epochs, for replay (the monitor keeps them)."""
        return self.monitor.records

    @_run_records.setter
    def _run_records(self, records: list[EpochRecord]) -> None:
        self.monitor.records = records

    def set_project(self, project: XrdProject | None) -> None:
        """Follow another project (a running training goes on and records its run in its own project).

        The page shows only this project's training: another project's running run is named, its
        curves come back when that project is shown again, and a finished one's outcome is not shown.
        """
        if project is None or project.folder != self._project_folder:
            self.use_anyway_button.setVisible(False)  # it offered a run of another project
        self.project = project
        if self._shows_run_project():
            self.monitor.replay()
        else:
            self.last_result = None
            running = self.is_running() and self._project_folder is not None
            self.monitor.show_blank(
                self.epochs_spin.value(),
                f"Training a model for {self._project_folder.name} in the background…"
                if running and self._project_folder is not None
                else "Ready.",
            )
        self.refresh()

    def _shows_run_project(self) -> bool:
        """Whether the shown project is the one the last (or running) training was for."""
        return self.project is not None and self.project.folder == self._project_folder

    def is_running(self) -> bool:
        """Whether a training runs."""
        return self.controller.is_running()

    def refresh(self) -> None:
        """Update the data summary and the buttons (labels or the model changed)."""
        running = self.is_running()
        project = self.project
        self.stop_button.setEnabled(running)
        self.epochs_spin.setEnabled(not running)
        if project is None:
            self.data_label.setText("Open an XRD project to train a model on it.")
            self.start_button.setEnabled(False)
            return
        labeled = project.labeled_count()
        total = len(project.patterns())
        problem = None if project.model_dir is None else self.library_problem()
        if project.model_dir is not None and problem is None:
            self.start_button.setText("&Start fine-tuning")
            self.start_button.setToolTip(
                "Fine-tune the project's model on the labeled patterns, mixed with simulated ones so it "
                "keeps the phases your patterns do not show"
            )
            if labeled:
                self.data_label.setText(
                    f"Fine-tunes <b>{project.model_dir.name}</b> on the {labeled} labeled pattern(s) of "
                    f"{total}, then checks both models on labeled patterns held out of the fine-tuning "
                    "(cross-validation): the project switches only to a better model."
                )
            else:
                self.data_label.setText("Label some patterns first: fine-tuning learns from your labels.")
            self.start_button.setEnabled(labeled > 0 and not running)
        else:
            self.start_button.setText("&Train a model for this library")
            self.start_button.setToolTip(
                "Train a new model on patterns simulated from the project's library (in the background)"
            )
            why = (
                "No model yet"
                if problem is None
                else f"<span style='color:{WARNING_COLOUR}'>⚠ {html.escape(problem)}</span><br>Instead"
            )
            self.data_label.setText(
                f"{why}: train one here from patterns simulated from the library "
                f"({project.library_dir.name}), or choose an existing model above. Then fine-tune it on "
                "your labeled patterns."
            )
            self.start_button.setEnabled(not running)

    # -- actions ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start (fine-)training with the chosen number of epochs."""
        project = self.project
        if project is None or self.is_running():
            return
        init = project.model_dir if self.library_problem() is None else None  # else: one for this library
        source = project.folder if init is not None else project.library_dir
        worker = XrdTrainWorker(
            source,
            init,
            project.new_run_dir(),
            XrdTrainConfig(**{**self.config_overrides, "epochs": self.epochs_spin.value()}),
            wavelength=project.wavelength,
        )
        self._project_folder = project.folder
        self.last_result = None
        self.use_anyway_button.setVisible(False)
        self.monitor.begin(
            self.epochs_spin.value(), "Starting (loading PyTorch the first time takes a few seconds)…"
        )
        self.controller.start(worker)

    def stop(self) -> None:
        """Ask the training to stop after the current step (the best model so far is kept)."""
        if self.is_running():
            self.controller.stop()
            self.monitor.show_stopping()

    def shutdown(self) -> None:
        """Stop a running training and wait for it (the window is closing)."""
        self.controller.shutdown()

    # -- slots --------------------------------------------------------------------------------------
    def _on_epochs_spin_value_changed(self, epochs: int) -> None:
        if not self.is_running():
            self.monitor.show_planned(epochs)

    def _on_controller_running_changed(self, _running: bool) -> None:
        self.refresh()

    def _on_controller_progressed(self, progress: Progress) -> None:
        if self._shows_run_project():  # (not another project's run, going on in the background)
            self.monitor.show_progress(progress)

    def _on_controller_reported(self, event: object) -> None:
        self.monitor.report(event, shown=self._shows_run_project())

    def _on_controller_stopped(self) -> None:
        self.monitor.end("Stopped before the first epoch ended; the project keeps its model.", bar=0)
        self.refresh()

    def _on_controller_finished(self, result: XrdRunResult) -> None:
        if not result.history:  # stopped before the first epoch ended, like a stop without a result
            self._on_controller_stopped()
            return
        run_dir = Path(result.run_dir)
        if not self._shows_run_project():  # trained for another project: its outcome is shown there
            name = self._project_folder.name if self._project_folder is not None else "another project"
            if should_adopt(result):
                self._adopt(run_dir)
                self.monitor.end(f"The new model of {name} is ready: open that project to see it.", bar=None)
            else:
                self.monitor.end(
                    f"The fine-tuned model of {name} did no better; that project keeps its model.", bar=None
                )
            self.refresh()
            return
        self.last_result = result
        self.monitor.end("Stopped." if result.stopped else "Done.", bar=100)
        adopted = should_adopt(result)
        if adopted:
            self._adopt(run_dir)
        self.summary_label.setText(xrd_summary_text(result, adopted))
        self.use_anyway_button.setVisible(
            not adopted and self.project is not None and self.project.folder == self._project_folder
        )
        self.refresh()
        self.run_finished.emit(run_dir)

    def _on_use_anyway_button_clicked(self) -> None:
        result = self.last_result
        if result is None:
            return
        run_dir = Path(result.run_dir)
        self.use_requested.emit(run_dir)  # the page checks and sets it, and says why if it cannot
        if self.project is not None and self.project.model_dir == run_dir:
            self.use_anyway_button.setVisible(False)
            self.summary_label.setText(xrd_summary_text(result, adopted=True))

    def _adopt(self, run_dir: Path) -> None:
        """Make the new run the model of the project it was trained for."""
        try:
            if self.project is not None and self.project.folder == self._project_folder:
                self.project.set_model(run_dir)
            elif self._project_folder is not None:
                XrdProject.open(self._project_folder).set_model(run_dir)
        except Exception as error:  # the run is on disk: say where, do not lose it
            log.exception("cannot set the model of %s", self._project_folder)
            show_error(
                self,
                "Cannot use the new model",
                f"The run is saved in {run_dir}, but the project could not be switched to it: {error}",
            )

    def _on_controller_failed(self, message: str, details: str) -> None:
        if not self._shows_run_project():
            name = self._project_folder.name if self._project_folder is not None else "another project"
            self.stage_label.setText("Ready.")
            self.refresh()
            show_error(self, f"Training for {name} failed", message, details)
            return
        self.monitor.show_failure(message)
        self.refresh()
        show_error(self, "Training failed", message, details)
