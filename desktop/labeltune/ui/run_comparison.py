"""Two runs side by side in the Results tab: summary values and per-class F1, with B − A differences."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from labeltune.ui.metrics_table import ComparisonTable, compare_rows
from labeltune.ui.runs_list import RunDetails, grouping_line, run_title

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
