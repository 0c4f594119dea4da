"""One run in the Results tab: headline scores, how it ended, per-class table, confusion matrix, curves.

The text helpers (:func:`status_text`, :func:`facts_text`, :func:`headline_details`,
:func:`reliability_text`) turn a :class:`~labeltune.ui.runs_list.RunDetails` into words; the view only
lays them out. The *Check all images* button and its line live here; :mod:`labeltune.ui.image_check` runs
the check.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.run_state import run_in_progress
from labeltune.ui.confusion_view import ConfusionMatrixView, top_confusions
from labeltune.ui.curves import TrainingCurvesView
from labeltune.ui.metrics_table import PerClassTable, percent
from labeltune.ui.model_use import UseModelBar
from labeltune.ui.runs_list import RunDetails, backbone_title, created_text, grouping_line

CHECK_TEXT = "C&heck all images"  # the button's text while no check runs
AUDIT_TEXT = "Find li&kely label errors…"  # the button's text while no audit runs (ui/label_audit.py)
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
    if summary.get("interrupted") and details.metrics is None:  # killed, or listed as it started
        ran = len(details.history)
        path = str(details.run.get("path") or "")
        if path and run_in_progress(path):
            return f"Training now: epoch {ran}{of} done so far."
        return f"Interrupted after epoch {ran}{of}: no results yet."
    if summary.get("stopped"):
        kept = f"the best model (epoch {best}) was kept" if best is not None else "no model was kept"
        return f"Stopped by you after {ran}{of} epochs; {kept}."
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


def _job_row(text: str, name: str, tooltip: str) -> tuple[QPushButton, QLabel, QHBoxLayout]:
    """A button that starts (and stops) a job of the run, and the line beside it that says how it goes."""
    button = QPushButton(text)
    button.setObjectName(f"{name}Button")
    button.setToolTip(tooltip)
    label = QLabel()
    label.setObjectName(f"{name}Label")
    label.setWordWrap(True)
    row = QHBoxLayout()
    row.addWidget(button)
    row.addWidget(label, 1)
    return button, label, row


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
        self.check_button, self.check_label, check = _job_row(
            CHECK_TEXT,
            "check",
            "Predict every image of the project with this model: the Label tab then shows what it says about "
            "each image, how sure it is, and marks the images unlike anything it was trained on",
        )
        self.audit_button, self.audit_label, audit = _job_row(
            AUDIT_TEXT,
            "audit",
            "Look for labeled images whose label this model doubts (out-of-fold predictions) and for "
            "near-duplicate images; the Label tab then lists them",
        )
        self.use_bar = UseModelBar()  # Predict a folder…, Export… (ui/model_use.py)
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
        layout.addLayout(audit)
        layout.addWidget(self.use_bar)
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
        self.audit_button.setEnabled(details.has_evaluation)
        self.use_bar.set_run(run.get("path"), backbone)
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
