"""The Results tab: the project's runs; one run's scores, per-class table and confusion matrix; two compared.

Only small files are read here (metrics.json, history.csv, config.json): fine in the GUI thread. *Check
all images* predicts the project's images with the selected run in a worker thread and stores the
predictions (calibrated confidence, unfamiliar-input score), which the Label tab then shows.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from labeltune.ui.confusion_view import ConfusionMatrixView, top_confusions
from labeltune.ui.curves import TrainingCurvesView
from labeltune.ui.errors import show_error
from labeltune.ui.metrics_table import ComparisonTable, PerClassTable, compare_rows, percent
from labeltune.ui.runs_list import (
    RunDetails,
    RunsListView,
    backbone_title,
    created_text,
    grouping_line,
    load_run_details,
    run_title,
)
from labeltune.ui.session import ProjectSession
from labeltune.workers.tasks import FunctionWorker, TaskController

log = logging.getLogger(__name__)

HINT = "Select a run to see its results; select two (Ctrl+click) to compare them."
HEADLINE = (
    ("accuracy", "Accuracy", "Share of validation images classified correctly"),
    ("balanced_accuracy", "Balanced accuracy", "Mean recall over classes: fair when classes differ in size"),
    ("macro_f1", "Macro-F1", "Mean F1 over classes: balances missed and wrongly added images"),
)


def status_text(details: RunDetails) -> str:
    """How the run ended, in words."""
    summary = details.summary
    planned = (details.config.get("train") or {}).get("epochs")
    ran, best = summary.get("epochs_run"), summary.get("best_epoch")
    of = f" of {planned}" if planned else ""
    if summary.get("stopped"):
        return f"Stopped by you after {ran}{of} epochs; the best model (epoch {best}) was kept."
    if summary.get("stopped_early"):
        return f"Stopped early after {ran}{of} epochs: validation stopped improving (best epoch {best})."
    if ran is not None:
        return f"Finished {ran}{of} epochs; the best model is from epoch {best}."
    return ""


def facts_text(details: RunDetails) -> str:
    """Data sizes, time and weights of a run, one line."""
    summary = details.summary
    parts = []
    if summary.get("train_size") is not None:
        parts.append(f"{summary['train_size']} training / {summary.get('val_size')} validation images")
    if summary.get("seconds_total") is not None:
        parts.append(f"{float(summary['seconds_total']):.0f} s")
    weights = str(summary.get("weights_id") or "")
    if weights.startswith("random"):
        parts.append("random weights (no pretraining)")
    elif weights:
        parts.append(f"weights {weights}")
    if details.config.get("device"):
        parts.append(str(details.config["device"]))
    size = (details.config.get("model") or {}).get("input_size")
    if size:
        parts.append(f"{size} px input")
    grouping = grouping_line(summary, details.config)
    if grouping:
        parts.append(f"split {grouping}")
    return " · ".join(parts)


def headline_details(details: RunDetails) -> tuple[dict[str, str], list[str]]:
    """The small line under each headline figure (how many images, the interval) and the warnings."""
    from labeltune.core.metrics import headline_warnings, wilson_interval

    metrics, summary = details.metrics or {}, details.summary
    n = metrics.get("n") or summary.get("val_size")
    accuracy = metrics.get("accuracy", summary.get("val_accuracy"))
    if not isinstance(n, int) or n <= 0 or not isinstance(accuracy, (int, float)):
        return {}, []
    right = round(float(accuracy) * n)
    interval = metrics.get("accuracy_interval") or list(wilson_interval(right, n))
    lines = {key: f"on {n} validation images" for key, _, _ in HEADLINE}
    lines["accuracy"] = f"{right} of {n} · 95 % interval {100 * interval[0]:.0f}–{100 * interval[1]:.0f} %"
    return lines, headline_warnings(n, str(summary.get("weights_id") or ""), interval)


def reliability_text(details: RunDetails) -> str:
    """How far the run's confidence can be trusted, and how it spots unfamiliar images, in words."""
    metrics = details.metrics or {}
    parts = []
    calibration = metrics.get("calibration") or {}
    if calibration.get("n"):
        parts.append(
            f"Confidence is calibrated on the validation images: calibration error "
            f"{100 * calibration['ece_before']:.1f} % → {100 * calibration['ece_after']:.1f} %"
            + ("" if calibration.get("cross_fitted") else " (few images: measured in-sample)")
            + "."
        )
    unfamiliar = metrics.get("unfamiliar") or {}
    if unfamiliar.get("val_unfamiliar_rate") is not None:
        parts.append(
            f"Images unlike the training images are marked unfamiliar; the check flags "
            f"{100 * unfamiliar['val_unfamiliar_rate']:.0f} % of the validation images "
            f"(aimed at {100 * unfamiliar['false_alarm_target']:.0f} %)."
        )
    elif details.has_evaluation:
        parts.append("This run was made before LabelTune could spot unfamiliar images.")
    return " ".join(parts)


class _Figure(QFrame):
    """A caption above a large number."""

    def __init__(self, caption: str, tooltip: str) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip(tooltip)
        self.value = QLabel("–")
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        self.value.setFont(font)
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail = QLabel()
        self.detail.setObjectName("figureDetail")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(caption))
        layout.addWidget(self.value)
        layout.addWidget(self.detail)


class RunDetailsView(QWidget):
    """One run: headline scores, per-class table, confusion matrix and training curves."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.details: RunDetails | None = None
        self.title_label = QLabel()
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title_label.setFont(font)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.facts_label = QLabel()
        self.facts_label.setWordWrap(True)
        self.facts_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setObjectName("problemLabel")
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setObjectName("headlineWarning")
        self.warning_label.setStyleSheet("color: #b36b00")
        self.reliability_label = QLabel()
        self.reliability_label.setWordWrap(True)
        self.reliability_label.setObjectName("reliabilityLabel")
        self.check_button = QPushButton("C&heck all images")
        self.check_button.setObjectName("checkButton")
        self.check_button.setToolTip(
            "Predict every image of the project with this model: the Label tab then shows what it says about "
            "each image, how sure it is, and marks the images unlike anything it was trained on"
        )
        self.check_label = QLabel()
        self.check_label.setObjectName("checkLabel")
        self.check_label.setWordWrap(True)
        check = QHBoxLayout()
        check.addWidget(self.check_button)
        check.addWidget(self.check_label, 1)
        self.figures = {key: _Figure(caption, tip) for key, caption, tip in HEADLINE}
        figures = QHBoxLayout()
        for figure in self.figures.values():
            figures.addWidget(figure)
        figures.addStretch(1)

        self.per_class = PerClassTable()
        self.confusion = ConfusionMatrixView()
        self.confusions_label = QLabel()
        self.confusions_label.setObjectName("topConfusions")
        self.confusions_label.setWordWrap(True)
        self.confusions_label.setToolTip("The largest mistakes of the confusion matrix, in words")
        scroll = self.confusion_scroll = QScrollArea()
        scroll.setWidget(self.confusion)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.curves = TrainingCurvesView()
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.per_class)
        top.addWidget(scroll)
        top.setStretchFactor(0, 1)
        top.setStretchFactor(1, 2)
        top.setSizes([300, 600])  # the matrix needs the room: 23 classes are 23 rows and columns
        self.tables = QSplitter(Qt.Orientation.Vertical)
        self.tables.addWidget(top)
        self.tables.addWidget(self.curves)
        self.tables.setStretchFactor(0, 3)
        self.tables.setStretchFactor(1, 2)
        self.tables.setSizes([340, 160])  # from the start, not what the plots' size hints ask

        layout = QVBoxLayout(self)
        layout.addWidget(self.title_label)
        layout.addWidget(self.status_label)
        layout.addLayout(figures)
        layout.addWidget(self.facts_label)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.reliability_label)
        layout.addLayout(check)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.confusions_label)
        layout.addWidget(self.tables, 1)

    def figure_text(self, key: str) -> str:
        """The text of a headline figure (``accuracy``, ``balanced_accuracy``, ``macro_f1``)."""
        return self.figures[key].value.text()

    def show_run(self, details: RunDetails) -> None:
        """Show one run; runs without metrics say why and show what they have."""
        self.details = details
        run = details.run
        backbone = backbone_title(str(run.get("backbone", "")))
        self.title_label.setText(f"{backbone} · {run.get('strategy', '')} · {created_text(run)}")
        self.title_label.setToolTip(str(run.get("path", "")))
        self.status_label.setText(status_text(details))
        self.facts_label.setText(facts_text(details))
        metrics = details.metrics or {}
        summary = details.summary
        lines, warnings = headline_details(details)
        for key, figure in self.figures.items():
            value = metrics.get(key, summary.get(f"val_{key}"))
            figure.value.setText(percent(value))
            figure.value.setToolTip(f"{value:.4f}" if isinstance(value, (int, float)) else "no value")
            figure.detail.setText(f"<small>{lines.get(key, '')}</small>")
        self.warning_label.setText(" ".join(f"⚠ {w}" for w in warnings))
        self.warning_label.setVisible(bool(warnings))
        self.problem_label.setText(details.problem)
        self.problem_label.setVisible(bool(details.problem))
        reliability = reliability_text(details)
        self.reliability_label.setText(f"<small>{reliability}</small>" if reliability else "")
        self.reliability_label.setVisible(bool(reliability))
        self.check_button.setEnabled(details.has_evaluation)
        if details.has_evaluation:
            self.per_class.set_metrics(metrics.get("per_class", []))
            classes = [c["class"] for c in metrics.get("per_class", [])] or list(summary.get("classes", []))
            self.confusion.set_matrix(metrics["confusion_matrix"], classes)
            self.confusion_scroll.horizontalScrollBar().setValue(0)  # a new matrix starts at its corner
            self.confusion_scroll.verticalScrollBar().setValue(0)
        else:
            self.per_class.set_metrics([])
            self.confusion.set_matrix([], [])
        mistakes = top_confusions(self.confusion.matrix(), self.confusion.classes())
        self.confusions_label.setText(
            "Most often confused: "
            + "; ".join(
                f"{html.escape(true)} taken for {html.escape(predicted)} {count}× ({share:.0%})"
                for true, predicted, count, share in mistakes
            )
            if mistakes
            else ""
        )
        self.confusions_label.setVisible(bool(mistakes))
        self.curves.set_history(details.history)


#: Row name, key in metrics.json, key in the run summary, and whether larger is better (1), worse (-1).
SUMMARY_ROWS = (
    ("Accuracy", "accuracy", "val_accuracy", 1),
    ("Balanced accuracy", "balanced_accuracy", "val_balanced_accuracy", 1),
    ("Macro-F1", "macro_f1", "val_macro_f1", 1),
    ("Backbone", None, "backbone", 0),
    ("Strategy", None, "strategy", 0),
    ("Weights", None, "weights_id", 0),
    ("Training images", None, "train_size", 0),
    ("Validation images", None, "val_size", 0),
    ("Best epoch", None, "best_epoch", 0),
    ("Epochs run", None, "epochs_run", 0),
    ("Seconds", None, "seconds_total", -1),
    ("Split", None, None, 0),
)


def summary_values(details: RunDetails) -> dict[str, Any]:
    """The comparable values of a run, keyed by the row names of :data:`SUMMARY_ROWS`."""
    metrics, summary = details.metrics or {}, details.summary
    values: dict[str, Any] = {}
    for name, metric_key, summary_key, _ in SUMMARY_ROWS:
        value = metrics.get(metric_key) if metric_key else None
        values[name] = value if value is not None or not summary_key else summary.get(summary_key)
    values["Split"] = grouping_line(summary, details.config) or None
    return values


def class_f1(details: RunDetails) -> dict[str, float]:
    """F1 per class name (empty without an evaluation)."""
    per_class = (details.metrics or {}).get("per_class") or []
    return {str(c["class"]): float(c["f1"]) for c in per_class}


class RunComparisonView(QWidget):
    """Two runs side by side: summary values and per-class F1, with B − A differences."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title_label = QLabel()
        self.title_label.setWordWrap(True)
        self.summary_table = ComparisonTable("Measure", "Headline scores and settings of the two runs")
        self.f1_table = ComparisonTable("Class", "F1 per class in each run; the difference is B minus A")
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.summary_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title_label)
        layout.addWidget(self.note_label)
        layout.addWidget(self.summary_table)
        layout.addWidget(self.f1_table, 1)

    def show_runs(self, a: RunDetails, b: RunDetails) -> None:
        """Compare run ``a`` (older) with run ``b`` (newer)."""
        self.title_label.setText(f"<b>A</b>: {run_title(a.run)}<br><b>B</b>: {run_title(b.run)}")
        names = [row[0] for row in SUMMARY_ROWS]
        rows = compare_rows(names, summary_values(a), summary_values(b))
        self.summary_table.set_comparison("A", "B", rows, [row[3] for row in SUMMARY_ROWS])
        self.summary_table.fit_height()
        f1_a, f1_b = class_f1(a), class_f1(b)
        classes = list(f1_a) + [c for c in f1_b if c not in f1_a]
        self.f1_table.set_comparison("F1 (A)", "F1 (B)", compare_rows(classes, f1_a, f1_b))
        missing = [d for d in (a, b) if not d.has_evaluation]
        self.note_label.setText(
            " ".join(f"{run_title(d.run)}: {d.problem}" for d in missing) if missing else ""
        )
        self.note_label.setVisible(bool(missing))


class ResultsPanel(QWidget):
    """Runs of the open project on the left; the selected run (or two compared) on the right."""

    continue_requested = Signal(object)  # Path of a stopped run to continue (the Train tab does it)

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runs_list = RunsListView()
        self.hint_label = QLabel(HINT)
        self.hint_label.setWordWrap(True)
        self.placeholder = QLabel("No training runs yet: train a model in the Train tab.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.details_view = RunDetailsView()
        self.comparison_view = RunComparisonView()
        self.stack = QStackedWidget()
        for widget in (self.placeholder, self.details_view, self.comparison_view):
            self.stack.addWidget(widget)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.runs_list, 1)
        left_layout.addWidget(self.hint_label)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([400, 880])  # the run's details need the room (23×23 confusion matrices)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        self.check_controller = TaskController(self)
        self._checking: str | None = None  # id of the run whose check is running
        self._checking_folder: Path | None = None  # and the folder of its project
        self.runs_list.selection_changed.connect(self._on_runs_list_selection_changed)
        self.runs_list.continue_requested.connect(self.continue_requested)
        self.details_view.check_button.clicked.connect(self._on_check_button_clicked)
        self.check_controller.progressed.connect(self._on_check_controller_progressed)
        self.check_controller.finished.connect(self._on_check_controller_finished)
        self.check_controller.stopped.connect(self._on_check_controller_stopped)
        self.check_controller.failed.connect(self._on_check_controller_failed)
        self.check_controller.running_changed.connect(self._on_check_controller_running_changed)
        session.project_opened.connect(self._on_session_project_opened)
        session.project_closed.connect(self._on_session_project_closed)
        session.runs_changed.connect(self._on_session_runs_changed)
        self.refresh()

    def refresh(self, select_new: bool = False) -> None:
        """Re-read the project's runs; with ``select_new``, a run that was not listed before is selected."""
        project = self.session.project
        before = {str(run["id"]) for run in self.runs_list.runs()}
        runs = project.runs() if project is not None else []
        self.runs_list.set_runs(runs)
        new = [run for run in self.runs_list.runs() if str(run["id"]) not in before]
        if select_new and new:
            self.runs_list.select_ids([str(new[0]["id"])])
        elif not self.runs_list.selected_runs() and runs:
            self.runs_list.select_ids([str(self.runs_list.runs()[0]["id"])])
        self._show_selection(self.runs_list.selected_runs())

    def check_images(self) -> None:
        """Predict all the project's images with the shown run, in a worker thread."""
        project = self.session.project
        details = self.details_view.details
        if project is None or details is None or self.check_controller.is_running():
            return
        folder, run_id, run_dir = project.folder, str(details.run["id"]), str(details.run["path"])

        def check(progress: Any, stop: Any) -> dict[str, Any]:
            from labeltune.core.inference import predict_project

            return predict_project(folder, run_id, run_dir, progress=progress, stop_event=stop)

        self._checking, self._checking_folder = run_id, folder
        self.details_view.check_label.setText("Checking the images…")
        self.check_controller.start(FunctionWorker(check))

    def shutdown(self) -> None:
        """Stop a running check and wait for it (the window is closing)."""
        self.check_controller.stop()
        self.check_controller.shutdown()

    def _on_check_button_clicked(self) -> None:
        if self.check_controller.is_running():
            self.check_controller.stop()
        else:
            self.check_images()

    def _on_check_controller_running_changed(self, running: bool) -> None:
        self.details_view.check_button.setText("Stop checking" if running else "C&heck all images")

    def _shows_checked_project(self) -> bool:
        project = self.session.project
        return project is not None and project.folder == self._checking_folder

    def _on_check_controller_progressed(self, progress: Any) -> None:
        if progress.total and self._shows_checked_project():
            self.details_view.check_label.setText(f"Checking the images… {progress.done} of {progress.total}")

    def _on_check_controller_stopped(self) -> None:
        if self._shows_checked_project():  # (not when its project was closed meanwhile)
            self.details_view.check_label.setText("Stopped; nothing was stored.")

    def _on_check_controller_finished(self, result: dict[str, Any]) -> None:
        if not self._shows_checked_project():  # its project was closed meanwhile
            return
        unfamiliar = int(result["unfamiliar"])
        text = f"Checked {result['predicted']} images."
        if unfamiliar:
            text += (
                f" <b>{unfamiliar} look unlike the training images</b>: see them in the Label tab "
                "(Show: Unfamiliar to the model)."
            )
        else:
            text += " None looks unlike the training images. The Label tab shows what the model says."
        self.details_view.check_label.setText(text)
        self.session.notify_predictions_changed()

    def _on_check_controller_failed(self, message: str, details: str) -> None:
        if self._shows_checked_project():
            self.details_view.check_label.setText("The check failed.")
        show_error(self, "Cannot check the images", message, details)

    def _on_session_project_opened(self, _project: object) -> None:
        self.runs_list.set_runs([])
        self.details_view.check_label.clear()
        self.refresh()

    def _on_session_project_closed(self) -> None:
        self.check_controller.stop()  # its answers belong to the project being closed
        self.details_view.check_label.clear()
        self.runs_list.set_runs([])
        self._show_selection([])

    def _on_session_runs_changed(self) -> None:
        self.refresh(select_new=True)

    def _on_runs_list_selection_changed(self, runs: list[dict[str, Any]]) -> None:
        self._show_selection(runs)

    def _show_selection(self, runs: list[dict[str, Any]]) -> None:
        self.hint_label.setText(HINT if len(runs) <= 2 else "Comparing the two newest of the selected runs.")
        if not runs:
            has_runs = bool(self.runs_list.runs())
            self.placeholder.setText(
                "Select a run to see its results."
                if has_runs
                else "No training runs yet: train a model in the Train tab."
            )
            self.stack.setCurrentWidget(self.placeholder)
        elif len(runs) == 1:
            self.details_view.show_run(load_run_details(runs[0]))
            self.stack.setCurrentWidget(self.details_view)
        else:
            newer, older = sorted(runs, key=lambda r: (r.get("created") or 0, str(r["id"])), reverse=True)[:2]
            self.comparison_view.show_runs(load_run_details(older), load_run_details(newer))
            self.stack.setCurrentWidget(self.comparison_view)
