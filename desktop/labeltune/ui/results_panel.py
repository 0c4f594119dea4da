"""The Results tab: the project's runs; one run's scores, per-class table and confusion matrix; two compared.

Only small files are read here (metrics.json, history.csv, config.json): fine in the GUI thread. The run's
view is :mod:`labeltune.ui.run_details`, two runs compared :mod:`labeltune.ui.run_comparison`; *Check all
images* (:mod:`labeltune.ui.image_check`) predicts the project's images with the selected run in a worker
thread and stores the predictions, which the Label tab then shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from labeltune.ui.image_check import ImageCheck
from labeltune.ui.label_audit import LabelAudit
from labeltune.ui.run_comparison import RunComparisonView
from labeltune.ui.run_details import RunDetailsView
from labeltune.ui.runs_list import RunsListView, load_run_details
from labeltune.ui.session import ProjectSession

HINT = "Select a run to see its results; select two (Ctrl+click) to compare them."


class ResultsPanel(QWidget):
    """Runs of the open project on the left; the selected run (or two compared) on the right."""

    continue_requested = Signal(object)  # Path of a stopped run to continue (the Train tab does it)
    add_classes_requested = Signal(object)  # Path of a run to add the project's new classes to
    distill_requested = Signal(object)  # Path of a run to distill (with others) into a smaller model
    #: A confusion-matrix cell was activated: run folder (Path), true class, predicted class (drill-down)
    cell_requested = Signal(object, str, str)

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

        self.image_check = ImageCheck(
            session, self.details_view.check_button, self.details_view.check_label, self
        )
        self.check_controller = self.image_check.controller  # tests and the window wait on its signals
        self.label_audit = LabelAudit(
            session, self.details_view.audit_button, self.details_view.audit_label, self
        )
        self.details_view.audit_button.clicked.connect(self._on_audit_button_clicked)
        self.runs_list.selection_changed.connect(self._on_runs_list_selection_changed)
        self.runs_list.continue_requested.connect(self.continue_requested)
        self.runs_list.add_classes_requested.connect(self.add_classes_requested)
        self.runs_list.distill_requested.connect(self.distill_requested)
        self.details_view.check_button.clicked.connect(self._on_check_button_clicked)
        self.details_view.confusion.cell_activated.connect(self._on_confusion_cell_activated)
        session.project_opened.connect(self._on_session_project_opened)
        session.project_closed.connect(self._on_session_project_closed)
        session.runs_changed.connect(self._on_session_runs_changed)
        self.refresh()

    def refresh(self, select_new: bool = False) -> None:
        """Re-read the project's runs; with ``select_new``, a run that was not listed before is selected."""
        project = self.session.project
        before = {str(run["id"]) for run in self.runs_list.runs()}
        runs = project.runs() if project is not None else []
        self.runs_list.project_classes = list(project.classes) if project is not None else []
        self.runs_list.set_runs(runs)
        new = [run for run in self.runs_list.runs() if str(run["id"]) not in before]
        if select_new and new:
            self.runs_list.select_ids([str(new[0]["id"])])
        elif not self.runs_list.selected_runs() and runs:
            self.runs_list.select_ids([str(self.runs_list.runs()[0]["id"])])
        self._show_selection(self.runs_list.selected_runs())

    def check_images(self) -> None:
        """Predict all the project's images with the shown run, in a worker thread."""
        self.image_check.start(self.details_view.details)

    def shutdown(self) -> None:
        """Stop a running check, prediction or export and wait for it (the window is closing)."""
        self.image_check.shutdown()
        self.label_audit.shutdown()
        self.details_view.use_bar.shutdown()

    def _on_check_button_clicked(self) -> None:
        self.image_check.toggle(self.details_view.details)

    def _on_audit_button_clicked(self) -> None:
        self.label_audit.toggle(self.details_view.details)

    def _on_confusion_cell_activated(self, row: int, column: int) -> None:
        details = self.details_view.details
        classes = self.details_view.confusion.classes()
        if details is None or not (0 <= row < len(classes) and 0 <= column < len(classes)):
            return
        self.cell_requested.emit(Path(str(details.run.get("path", ""))), classes[row], classes[column])

    def _on_session_project_opened(self, _project: object) -> None:
        self.runs_list.set_runs([])
        self.details_view.check_label.clear()
        self.details_view.audit_label.clear()
        self.refresh()

    def _on_session_project_closed(self) -> None:
        self.image_check.stop()  # its answers belong to the project being closed
        self.label_audit.stop()
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
            self.image_check.describe(self.details_view.details)  # the check line is this run's
            self.stack.setCurrentWidget(self.details_view)
        else:
            newer, older = sorted(runs, key=lambda r: (r.get("created") or 0, str(r["id"])), reverse=True)[:2]
            self.comparison_view.show_runs(load_run_details(older), load_run_details(newer))
            self.stack.setCurrentWidget(self.comparison_view)
