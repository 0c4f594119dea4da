"""One training monitor for both kinds of data, images and XRD patterns.

Progress bar, stage line with time left, epoch line, loss/accuracy curves, Stop and the result line.
The Train panel (images) and the XRD Fine-tune panel each keep their own form, start and outcome logic;
they forward their :class:`~labeltune.workers.tasks.TaskController`'s ``progressed`` and ``reported``
signals here, where :class:`~labeltune.workers.training.TrainingStarted`, :class:`EpochRecord` and
:class:`Progress` are handled once. What differs between the two is wording, passed in as
:class:`MonitorWords` (the epoch-text hook among them), and where the curves sit (below or beside).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.progress import Progress
from labeltune.core.trainer import EpochRecord
from labeltune.ui.curves import TrainingCurvesView
from labeltune.ui.train_status import (
    STAGE_TEXT,
    EtaClock,
    duration_text,
    epoch_text,
    show_progress,
    stage_text,
)
from labeltune.ui.train_status import stopping_text as image_stopping_text
from labeltune.workers.training import TrainingNotice, TrainingStarted


def image_stage_line(progress: Progress) -> str:
    """The image side's stage line: the stage's readable name, and the trainer's message while training."""
    detail = f" — {progress.message}" if progress.stage == "train" and progress.message else ""
    return f"{stage_text(progress)}{detail}"


def eta_left(seconds: float) -> str:
    """``about 45 s left``."""
    return f"{duration_text(seconds)} left"


@dataclass(frozen=True)
class MonitorWords:
    """How a panel words what the monitor shows (the defaults are the image Train panel's)."""

    #: One finished epoch in one line (the epoch-text hook): ``(record, planned epochs) -> text``.
    epoch: Callable[[EpochRecord, int], str] = epoch_text
    #: The stage line while the job runs.
    stage: Callable[[Progress], str] = image_stage_line
    #: The stage line once Stop was pressed, by the stage reported last.
    stopping: Callable[[str], str] = image_stopping_text
    #: The time left, from the seconds the :class:`EtaClock` estimates.
    eta: Callable[[float], str] = eta_left
    #: Whether the bar and the stage line follow finished epochs (short epochs outrun throttled progress).
    follows_epochs: bool = True


class TrainMonitor(QWidget):
    """Shows one training run as it goes and how it ended; the owning panel says when (it has the project).

    ``beside``: the curves to the right of a scrolling column of words (a short, wide pane), instead of
    below them. The panel puts its own widgets in :attr:`header` (above the bar) and :attr:`footer`
    (below the result line), and Stop in its own row of buttons.
    """

    def __init__(
        self, words: MonitorWords | None = None, *, beside: bool = False, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.words = words if words is not None else MonitorWords()
        #: Planned epochs of the current (or last) run, and its finished epochs, also while not shown.
        self.epochs = 0
        self.records: list[EpochRecord] = []
        self._eta = EtaClock()

        self.stop_button = QPushButton("St&op")
        self.stop_button.setToolTip("Stop after the current step; the best model so far is kept")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.progress_bar.setToolTip("Progress of the current step of training")
        # Labels whose text changes during training must not resize the plots below (a relayout repaints
        # them, which is slow while training holds the GIL): one line each, clipped rather than widened.
        # Beside the curves, in a narrow column, they wrap instead (a cut line said too little).
        line = QSizePolicy.Policy.Preferred if beside else QSizePolicy.Policy.Fixed
        self.stage_label = QLabel("Ready.")
        self.stage_label.setWordWrap(beside)
        self.stage_label.setSizePolicy(QSizePolicy.Policy.Ignored, line)
        self.stage_label.setToolTip("What training is doing now")
        self.eta_label = QLabel()
        self.eta_label.setToolTip("Estimated time left, from the speed so far")
        self.epoch_label = QLabel(" ")
        self.epoch_label.setWordWrap(beside)
        self.epoch_label.setSizePolicy(QSizePolicy.Policy.Ignored, line)
        self.epoch_label.setToolTip("Scores of the last finished epoch")
        #: What the user should know about the run (out of memory: smaller micro-batches); hidden if nothing.
        self.notice_label = QLabel()
        self.notice_label.setObjectName("trainingNotice")
        self.notice_label.setWordWrap(True)
        self.notice_label.setToolTip(
            "The device ran out of memory: each step is computed in smaller parts, the batch stays the same"
        )
        self.notice_label.hide()
        self.curves = TrainingCurvesView()
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header = QVBoxLayout()
        self.header.setContentsMargins(0, 0, 0, 0)
        self.footer = QVBoxLayout()
        self.footer.setContentsMargins(0, 0, 0, 0)
        if beside:
            self._lay_out_beside()
        else:
            self._lay_out_below()

    def _lay_out_below(self) -> None:
        self.eta_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        stage = QHBoxLayout()
        stage.addWidget(self.stage_label, 1)
        stage.addWidget(self.eta_label)
        self.summary_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # Room for the summary from the start, so that showing or clearing it does not resize the plots.
        self.summary_label.setMinimumHeight(self.fontMetrics().lineSpacing() * 4 + 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.header)
        layout.addWidget(self.progress_bar)
        layout.addLayout(stage)
        layout.addWidget(self.epoch_label)
        layout.addWidget(self.notice_label)
        layout.addWidget(self.curves, 1)
        layout.addWidget(self.summary_label)
        layout.addLayout(self.footer)

    def _lay_out_beside(self) -> None:
        self.eta_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        stage = QVBoxLayout()  # the time left on a line of its own: the column is narrow
        stage.setSpacing(0)
        stage.addWidget(self.stage_label)
        stage.addWidget(self.eta_label)
        column = QVBoxLayout()
        column.addLayout(self.header)
        column.addWidget(self.progress_bar)
        column.addLayout(stage)
        column.addWidget(self.epoch_label)
        column.addWidget(self.notice_label)
        column.addWidget(self.summary_label)
        column.addLayout(self.footer)
        column.addStretch(1)
        words = QWidget()
        words.setLayout(column)
        scroll = QScrollArea()
        scroll.setWidget(words)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.curves.setMinimumWidth(320)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll, 3)
        layout.addWidget(self.curves, 2)

    # -- what the panel says ------------------------------------------------------------------------
    def is_stopping(self) -> bool:
        """Whether Stop was pressed (the panel enables Stop only while its training runs)."""
        return not self.stop_button.isEnabled()

    def begin(self, epochs: int, stage: str) -> None:
        """A new run starts: forget the last one; ``epochs`` planned (0: not known yet)."""
        self.epochs = epochs
        self.records = []
        self._eta = EtaClock()
        self.curves.clear(epochs)
        self.epoch_label.setText(" ")
        self.summary_label.clear()
        self.show_notice("")
        self.eta_label.clear()
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat("%p%")
        self.stage_label.setText(stage)

    def show_stopping(self, stage: str = "train") -> None:
        """Stop was pressed: disable it and say what the run still waits for."""
        self.stop_button.setEnabled(False)
        self.stage_label.setText(self.words.stopping(stage))

    def show_progress(self, progress: Progress) -> None:
        """The bar, the stage line (or what a stop waits for) and the time left."""
        show_progress(self.progress_bar, progress)
        if self.is_stopping():
            self.stage_label.setText(self.words.stopping(progress.stage))
        else:
            self.stage_label.setText(self.words.stage(progress))
        left = self._eta.update(progress)
        self.eta_label.setText("" if left is None else self.words.eta(left))

    def report(self, event: object, *, shown: bool = True) -> None:
        """A :class:`TrainingStarted` or an :class:`EpochRecord`: kept always, drawn when ``shown``.

        Progress reports are throttled (~10 a second) while epochs of a short run take milliseconds:
        where the words say so, the stage and the bar also follow these events, so they never show a
        finished earlier stage.
        """
        if isinstance(event, TrainingStarted):
            self.epochs = event.epochs
        elif isinstance(event, EpochRecord):
            self.records.append(event)
        elif isinstance(event, TrainingNotice):
            self.show_notice(event.message)
        if not shown:
            return
        follows = self.words.follows_epochs
        if isinstance(event, TrainingStarted):
            self.curves.set_epochs(event.epochs)
            if follows:
                self.eta_label.clear()  # the estimate was for the stage before
                if not self.is_stopping():
                    self.stage_label.setText(STAGE_TEXT["train"])
        elif isinstance(event, EpochRecord):
            self.curves.add_record(event)
            self.epoch_label.setText(self.words.epoch(event, self.epochs))
            if follows and self.epochs and not self.is_stopping():
                self.progress_bar.setRange(0, self.epochs)
                self.progress_bar.setValue(min(event.epoch, self.epochs))
                # the throttled progress text may still name an earlier epoch: never behind the curves
                self.stage_label.setText(f"{STAGE_TEXT['train']} — epoch {event.epoch}/{self.epochs} done")

    def show_notice(self, message: str) -> None:
        """Show ``message`` until the next run begins ("" hides the line)."""
        self.notice_label.setText(f"⚠ {message}" if message else "")
        self.notice_label.setVisible(bool(message))

    def end(self, stage: str, bar: int | None) -> None:
        """The run ended (with a result, or stopped without one): ``bar`` in percent, None leaves it."""
        self.eta_label.clear()
        self.curves.flush()
        if bar is not None:
            self.progress_bar.setRange(0, 100)
            self.progress_bar.setValue(bar)
        self.stage_label.setText(stage)

    def show_failure(self, message: str) -> None:
        """The run failed with ``message`` (the panel shows the details in a dialog)."""
        self.eta_label.clear()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.stage_label.setText("Training failed.")
        self.summary_label.setText(f"<b>Training failed</b>: {message}")

    def show_blank(self, planned_epochs: int, stage: str = "Ready.") -> None:
        """Nothing of the run on screen (it belongs to another project): empty plots for the planned run."""
        self.curves.clear(planned_epochs)
        self.epoch_label.setText(" ")
        self.summary_label.clear()
        self.show_notice("")
        self.eta_label.clear()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.stage_label.setText(stage)

    def show_planned(self, epochs: int) -> None:
        """The form's epochs changed: empty plots span them (plots with a run's points stay)."""
        if not self.curves.records():
            self.curves.set_epochs(epochs)

    def replay(self) -> None:
        """Draw the run's epochs again (they went on while another project was shown)."""
        if not self.records or self.curves.records() == self.records:
            return
        self.curves.clear(self.epochs)
        for record in self.records:
            self.curves.add_record(record)
        self.curves.flush()
        self.epoch_label.setText(self.words.epoch(self.records[-1], self.epochs))


class MonitoredPanel(QWidget):
    """A training panel around a :class:`TrainMonitor`: the monitor's widgets under the panel's own names.

    The panels have always had ``panel.progress_bar``, ``panel.curves``, ... (tests, the screenshots
    script and the main window reach for them); they are the monitor's widgets, shown by the panel.
    """

    monitor: TrainMonitor

    @property
    def stop_button(self) -> QPushButton:
        """Stop (sits in the panel's own row of buttons)."""
        return self.monitor.stop_button

    @property
    def progress_bar(self) -> QProgressBar:
        """The progress of the current step."""
        return self.monitor.progress_bar

    @property
    def stage_label(self) -> QLabel:
        """What training is doing now."""
        return self.monitor.stage_label

    @property
    def eta_label(self) -> QLabel:
        """The time left."""
        return self.monitor.eta_label

    @property
    def epoch_label(self) -> QLabel:
        """The last finished epoch's scores."""
        return self.monitor.epoch_label

    @property
    def curves(self) -> TrainingCurvesView:
        """Loss and accuracy per epoch."""
        return self.monitor.curves

    @property
    def summary_label(self) -> QLabel:
        """The result line."""
        return self.monitor.summary_label
