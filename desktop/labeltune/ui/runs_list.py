"""The list of a project's training runs, newest first; one selected run is shown, two are compared."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTreeWidget, QTreeWidgetItem, QWidget

from labeltune.core.backbones import BACKBONES
from labeltune.core.run_schema import run_schema_problem
from labeltune.core.run_state import run_in_progress, stopped_run
from labeltune.core.trainer import EpochRecord

ID_ROLE = Qt.ItemDataRole.UserRole


def run_title(run: dict[str, Any]) -> str:
    """A short name for a run: its date and time, backbone and strategy."""
    backbone = backbone_title(str(run.get("backbone", "")))
    return f"{created_text(run)} {backbone} {run.get('strategy', '')}".strip()


def created_text(run: dict[str, Any]) -> str:
    """When the run was recorded, in local time (``2025-05-02 14:03``)."""
    created = run.get("created")
    if isinstance(created, (int, float)):
        return dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M")
    return str(run.get("id", ""))


def backbone_title(name: str) -> str:
    """The display title of a backbone (its name when unknown)."""
    spec = BACKBONES.get(name)
    return spec.title if spec is not None else name


def grouping_line(summary: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    """How a run's split was grouped, in words ("" for runs made before LabelTune recorded it)."""
    from labeltune.core.grouping import grouping_text

    record = summary.get("grouping") or (config or {}).get("grouping")
    return grouping_text(record) if isinstance(record, dict) else ""


def run_status(run: dict[str, Any]) -> str:
    """``finished``, ``stopped``, ``stopped early`` or ``no metrics`` for a recorded run."""
    summary = run.get("metrics") or {}
    if summary.get("interrupted") and run.get("path") and run_in_progress(str(run["path"])):
        return "training now"  # listed as it started (trained outside the project by the CLI)
    if summary.get("val_accuracy") is None:
        return "no metrics"
    if summary.get("stopped"):
        return "stopped"
    if summary.get("stopped_early"):
        return "stopped early"
    return "finished"


@dataclass
class RunDetails:
    """What the results panel shows of one run, read from its folder (small files: fine in the GUI thread)."""

    run: dict[str, Any]
    metrics: dict[str, Any] | None = None  # metrics.json (with "summary"), or None when missing/unreadable
    history: list[EpochRecord] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # config.json ("train", "model", "device", ...)
    problem: str = ""  # why there are no metrics, in words

    @property
    def summary(self) -> dict[str, Any]:
        """The run's summary (``RunResult.to_json()``): from metrics.json, else from the project store."""
        if self.metrics is not None and isinstance(self.metrics.get("summary"), dict):
            return dict(self.metrics["summary"])
        return dict(self.run.get("metrics") or {})

    @property
    def has_evaluation(self) -> bool:
        """Whether per-class scores and a confusion matrix are available."""
        return self.metrics is not None and "confusion_matrix" in self.metrics


def load_run_details(run: dict[str, Any]) -> RunDetails:
    """Read a run's ``metrics.json`` and ``history.csv``; missing or damaged files become a ``problem``."""
    folder = Path(str(run.get("path", "")))
    details = RunDetails(run)
    if not folder.is_dir():
        details.problem = f"The run folder {folder} is missing (moved or deleted)."
        return details
    try:
        details.history = read_history(folder / "history.csv")
    except (OSError, ValueError, KeyError, TypeError, csv.Error):
        details.history = []
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        details.config = config if isinstance(config, dict) else {}
    except (OSError, ValueError):
        details.config = {}
    newer = run_schema_problem(folder, details.config)
    if newer is not None:
        details.problem = newer + "."
        return details
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        holder = run_in_progress(folder)
        if holder:
            details.problem = f"This run is training now ({holder}): its results come when it ends."
            return details
        interrupted = stopped_run(folder)
        details.problem = (
            f"This run was {interrupted.describe()} (the app or the computer stopped). To finish it: "
            "Train tab ▸ Continue stopped run, or right-click the run ▸ Continue training."
            if interrupted is not None and interrupted.interrupted
            else "This run has no evaluation: it stopped or failed before its first epoch finished."
        )
        return details
    except (OSError, ValueError) as exc:
        details.problem = f"The run's metrics.json cannot be read ({exc})."
        return details
    if not isinstance(metrics, dict):
        details.problem = "The run's metrics.json is damaged."
        return details
    details.metrics = metrics
    if "confusion_matrix" not in metrics:
        details.problem = str(metrics.get("note") or "This run has no validation results.")
    return details


def read_history(path: Path) -> list[EpochRecord]:
    """Read a run's ``history.csv`` (one :class:`EpochRecord` per row); a missing file gives []."""
    if not path.is_file():
        return []
    names = {f.name for f in fields(EpochRecord)}
    records = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            values: dict[str, Any] = {k: float(v) for k, v in row.items() if k in names}
            for name in ("epoch", "batch_size", "micro_batch"):
                if name in values:
                    values[name] = int(values[name])
            records.append(EpochRecord(**values))
    return records


class RunsListView(QTreeWidget):
    """Recorded runs with their headline scores; multi-selection (Ctrl+click) for comparison."""

    selection_changed = Signal(list)  # the selected runs (dicts from Project.runs()), in list order
    continue_requested = Signal(object)  # Path of a stopped run whose "Continue training" was chosen
    add_classes_requested = Signal(object)  # Path of a run to add the project's new classes to (ADR 0053)
    distill_requested = Signal(object)  # Path of a run chosen for "Distill into a smaller model…" (ADR 0054)

    COLUMNS = ("Run", "Model", "Accuracy", "Macro-F1", "Status")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runs: dict[str, dict[str, Any]] = {}
        #: The project's classes (the results panel sets them): a run that lacks some offers to add them.
        self.project_classes: list[str] = []
        self.setColumnCount(len(self.COLUMNS))
        self.setHeaderLabels(list(self.COLUMNS))
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # The model's name gives way (elided) when the list is narrow, so that the status stays readable
        # ("stopped early" must not be cut to "stopped").
        self.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.header().setStretchLastSection(False)
        self.setToolTip(
            "Training runs of this project, newest first. Select one to see its results, "
            "or two (Ctrl+click) to compare them"
        )
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_self_context_menu)
        self.itemSelectionChanged.connect(self._on_self_selection_changed)

    def set_runs(self, runs: Sequence[dict[str, Any]]) -> None:
        """Show ``runs`` (from ``Project.runs()``), keeping the selection where the runs still exist."""
        selected = [run["id"] for run in self.selected_runs()]
        self.blockSignals(True)
        try:
            self.clear()
            self._runs = {str(run["id"]): run for run in runs}
            for run in sorted(runs, key=lambda r: (r.get("created") or 0, str(r["id"])), reverse=True):
                summary = run.get("metrics") or {}
                accuracy, f1 = summary.get("val_accuracy"), summary.get("val_macro_f1")
                stopped = stopped_run(Path(str(run.get("path", "")))) if summary.get("stopped") else None
                item = QTreeWidgetItem(
                    [
                        created_text(run),
                        f"{backbone_title(str(run.get('backbone', '')))} · {run.get('strategy', '')}",
                        f"{accuracy:.3f}" if isinstance(accuracy, (int, float)) else "–",
                        f"{f1:.3f}" if isinstance(f1, (int, float)) else "–",
                        stopped.describe() if stopped is not None else run_status(run),
                    ]
                )
                item.setData(0, ID_ROLE, str(run["id"]))
                grouping = grouping_line(summary)
                tip = f"{run['id']}\n{run.get('path', '')}" + (f"\nsplit {grouping}" if grouping else "")
                if stopped is not None:
                    tip += "\nRight-click ▸ Continue training to train its remaining epochs"
                for column in range(self.columnCount()):
                    item.setToolTip(column, tip)
                self.addTopLevelItem(item)
                if str(run["id"]) in selected:
                    item.setSelected(True)
        finally:
            self.blockSignals(False)
        if selected != [run["id"] for run in self.selected_runs()]:
            self._on_self_selection_changed()

    def _items(self) -> list[QTreeWidgetItem]:
        items = (self.topLevelItem(i) for i in range(self.topLevelItemCount()))
        return [item for item in items if item is not None]

    def runs(self) -> list[dict[str, Any]]:
        """The runs in list order (newest first)."""
        return [self._runs[str(item.data(0, ID_ROLE))] for item in self._items()]

    def selected_runs(self) -> list[dict[str, Any]]:
        """The selected runs, in list order."""
        return [self._runs[str(item.data(0, ID_ROLE))] for item in self._items() if item.isSelected()]

    def select_ids(self, ids: Sequence[str]) -> None:
        """Select exactly the runs with these ids (the first becomes current)."""
        self.blockSignals(True)
        try:
            self.clearSelection()
            for item in self._items():
                if str(item.data(0, ID_ROLE)) in ids:
                    item.setSelected(True)
                    if str(item.data(0, ID_ROLE)) == ids[0]:
                        self.setCurrentItem(item, 0, self.selectionModel().SelectionFlag.NoUpdate)
        finally:
            self.blockSignals(False)
        self._on_self_selection_changed()

    def _on_self_selection_changed(self) -> None:
        self.selection_changed.emit(self.selected_runs())

    def _on_self_context_menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        self.menu_for(self._runs[str(item.data(0, ID_ROLE))]).popup(self.viewport().mapToGlobal(pos))

    def menu_for(self, run: dict[str, Any]) -> QMenu:
        """The context menu of ``run``: Continue training (a stopped run), Open run folder."""
        menu = QMenu(self)
        stopped = (
            stopped_run(Path(str(run.get("path", "")))) if (run.get("metrics") or {}).get("stopped") else None
        )
        if stopped is not None:
            resume = menu.addAction(f"Continue training ({stopped.describe()})")
            resume.setObjectName("continueRun")
            resume.setToolTip("Train the remaining epochs of this run from where it stopped (Train tab)")
            resume.triggered.connect(lambda: self.continue_requested.emit(stopped.run_dir))
        self._add_model_actions(menu, run)
        action = menu.addAction("Open run folder")
        action.setToolTip("Show the run's files (model, metrics, history) in the file manager")
        path = Path(str(run.get("path", "")))
        action.setEnabled(path.is_dir())
        action.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))))
        return menu

    def _add_model_actions(self, menu: QMenu, run: dict[str, Any]) -> None:
        """A finished image run: "Add the new classes to <run>" (classes it lacks), "Distill…"."""
        summary = run.get("metrics") or {}
        path = Path(str(run.get("path", "")))
        if summary.get("stopped") or not summary.get("classes") or not (path / "model.safetensors").is_file():
            return
        new = [c for c in self.project_classes if c not in summary["classes"]]
        if new:
            add = menu.addAction(f"Add the new classes to {run['id']}")
            add.setObjectName("addClassesToRun")
            add.setToolTip(
                f"Teach this run {', '.join(new)} without forgetting what it knows: its network is kept "
                "and only what its strategy trained learns (Train tab)"
            )
            add.triggered.connect(lambda: self.add_classes_requested.emit(path))
        distill = menu.addAction("Distill into a smaller model…")
        distill.setObjectName("distillRun")
        distill.setToolTip("Train a small, fast student on the answers of this run and others (Train tab)")
        distill.triggered.connect(lambda: self.distill_requested.emit(path))
