"""The image project's page: the Label, Train and Results tabs, and the verbs the window asks of it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QTabWidget, QWidget

from labeltune.core.domain import LabelProject
from labeltune.core.train_config import TrainConfig
from labeltune.ui.data_map import DataMapPanel
from labeltune.ui.distill_dialog import DistillDialog
from labeltune.ui.errors import show_error
from labeltune.ui.heatmap_panel import predicted_run_dir
from labeltune.ui.import_dialog import ImportDialog
from labeltune.ui.label_page import LabelPage
from labeltune.ui.results_panel import ResultsPanel
from labeltune.ui.runs_list import RunDetails
from labeltune.ui.session import ProjectSession
from labeltune.ui.train_panel import TrainPanel


def import_source(paths: list[Path]) -> Path | list[Path]:
    """What the import dialog scans for dropped ``paths``: one folder or CSV as such, else just the files."""
    if len(paths) == 1 and (paths[0].is_dir() or paths[0].suffix.lower() == ".csv"):
        return paths[0]  # a class folder, a CSV or a project
    return list(paths)  # what was dropped, and only that


class ImagePage(QTabWidget):
    """The Label / Train / Results tabs of the open image project (the image domain's ProjectPage)."""

    import_text = "&Import images…"

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.label_page = LabelPage(session)
        self.train_panel = TrainPanel(session)
        self.results_panel = ResultsPanel(session)
        self.map_panel = DataMapPanel(session, self.map_run_dir)
        self.setDocumentMode(True)
        self.addTab(self.label_page, "&Label")
        self.addTab(self.train_panel, "&Train")
        self.addTab(self.results_panel, "&Results")
        self.addTab(self.map_panel, "&Map")
        self.map_panel.sample_clicked.connect(self._on_map_panel_sample_clicked)
        self.map_panel.paths_selected.connect(self._on_map_panel_paths_selected)
        session.project_opened.connect(self._on_session_project_opened)
        self.results_panel.continue_requested.connect(self._on_results_panel_continue_requested)
        self.results_panel.add_classes_requested.connect(self._on_results_panel_add_classes_requested)
        self.results_panel.distill_requested.connect(self._on_results_panel_distill_requested)
        self.distill_dialog: DistillDialog | None = None
        self.results_panel.cell_requested.connect(self._on_results_panel_cell_requested)
        label_next = self.label_page.label_next  # Label ▸ Retrain trains through the Train tab's panel
        label_next.retrain_requested.connect(self._on_label_next_retrain_requested)
        self.train_panel.run_finished.connect(label_next.retrain_ended)
        self.train_panel.controller.stopped.connect(lambda: label_next.retrain_ended(None))
        self.train_panel.controller.failed.connect(lambda *_: label_next.retrain_ended(None))
        session.predictions_changed.connect(self._on_session_predictions_changed)
        self._awaited_run: str | None = None  # the drill-down's run, being checked

    def _on_session_project_opened(self, _project: LabelProject) -> None:
        if self.session.project is not None:  # an image project: labeling comes first
            self.setCurrentWidget(self.label_page)

    def _on_results_panel_continue_requested(self, run_dir: Path) -> None:
        """Continue a stopped run chosen in the runs list: the Train tab shows it training."""
        if self.train_panel.resume_run(Path(run_dir)):
            self.setCurrentWidget(self.train_panel)

    def _on_results_panel_add_classes_requested(self, run_dir: Path) -> None:
        """Add the project's new classes to a run (core/add_classes.py): the Train tab shows it training."""
        from labeltune.core.add_classes import inherited_config
        from labeltune.core.errors import UnusableInputError

        try:
            config = inherited_config(Path(run_dir), {})
        except UnusableInputError as error:
            show_error(self, "Cannot add the new classes", str(error))
            return
        self._start_on_train_tab(config, "Cannot add the new classes")

    def _on_results_panel_distill_requested(self, run_dir: Path) -> None:
        """Ask for the teachers and the student's network, then train the student on the Train tab."""
        project = self.session.project
        if project is None or project.closed:
            return
        self.distill_dialog = DistillDialog(project.runs(), Path(run_dir), self)
        self.distill_dialog.accepted.connect(self._on_distill_dialog_accepted)
        self.distill_dialog.open()

    def _on_distill_dialog_accepted(self) -> None:
        dialog = self.distill_dialog
        if dialog is None:
            return
        if not dialog.teachers():
            show_error(self, "Cannot distill", "Check at least one teacher run.")
            return
        self._start_on_train_tab(dialog.config(), "Cannot distill")

    def _start_on_train_tab(self, config: TrainConfig, title: str) -> None:
        reason = self.train_panel.start_config(config)
        if reason:
            show_error(self, title, f"The run cannot start: {reason}.")
        else:
            self.setCurrentWidget(self.train_panel)

    def _on_results_panel_cell_requested(self, run_dir: Path, true: str, predicted: str) -> None:
        """Confusion-matrix drill-down: the Label tab shows the validation images behind the cell."""
        self.label_page.show_cell(run_dir, true, predicted)
        self.setCurrentWidget(self.label_page)
        self.show_predictions_of(Path(run_dir))

    def show_predictions_of(self, run_dir: Path) -> None:
        """Make the Label tab show the answers of the run in ``run_dir`` (bars, Space, Why, Retrain's base).

        A run never checked is checked first (Results ▸ Check all images, in a worker): its cell's images
        are in view meanwhile, and its answers appear when the check ends.
        """
        project = self.session.project
        if project is None or project.closed:
            return
        run = next((r for r in project.runs() if Path(r["path"]) == run_dir), None)
        if run is None:
            return
        run_id = str(run["id"])
        if project.has_predictions(run_id):
            if self.label_page.model.predicted_run != run_id:
                self.session.notify_predictions_changed(run_id)
        elif self.results_panel.image_check.start(RunDetails(run)):
            self._awaited_run = run_id
            self.label_page.say(
                f"Predicting every image with {run_id}: its answers (bars, Space, Why) appear here when done…"
            )
        else:
            self.label_page.say("A check is running (Results tab): the answers shown are of another run")

    def _on_session_predictions_changed(self) -> None:
        awaited, self._awaited_run = self._awaited_run, None
        if awaited is not None and awaited == self.session.shown_run:  # the "Predicting…" line is over
            self.label_page.say(
                f"The answers of {awaited} are shown: Space accepts one, a digit corrects, "
                "Why shows the evidence"
            )

    def map_run_dir(self) -> Path | None:
        """The run the map uses: the one whose predictions the gallery shows, else the newest run."""
        project = self.session.project
        if project is None or project.closed:
            return None
        shown = predicted_run_dir(project, self.label_page.model.predicted_run)
        runs = project.runs()
        return shown if shown is not None else (Path(runs[-1]["path"]) if runs else None)

    def _on_map_panel_sample_clicked(self, sample_id: int) -> None:
        """A point clicked on the map: the Label tab shows that image."""
        self.label_page.show_sample(sample_id)
        self.setCurrentWidget(self.label_page)

    def _on_map_panel_paths_selected(self, paths: frozenset[str]) -> None:
        """A lasso on the map: the gallery shows exactly those images, all selected (a digit labels all)."""
        self.label_page.show_map_selection(paths)
        self.setCurrentWidget(self.label_page)

    def _on_label_next_retrain_requested(self, config: TrainConfig) -> None:
        """Label ▸ Retrain: the Train tab's panel trains the run (its progress and curves show there)."""
        panel, label_next = self.train_panel, self.label_page.label_next
        refused = panel.start_config(config)
        if refused:
            label_next.retrain_refused(refused)
        elif panel.weights_dialog is not None and not panel.is_running():  # asked for ImageNet weights
            panel.weights_dialog.finished.connect(
                lambda _code: None if panel.is_running() else label_next.retrain_refused("no weights chosen")
            )

    def undo(self) -> None:
        """Undo the last label change (the Label tab says which image it touched)."""
        self.label_page.undo()

    def redo(self) -> None:
        """Redo the last undone label change."""
        self.label_page.redo()

    def choose_import(self) -> None:
        """Ask for a folder of images and add it to the open project (with an import summary first)."""
        folder = QFileDialog.getExistingDirectory(self.window(), "Folder of images to add")
        if folder:
            self.import_files([Path(folder)])

    def import_files(self, paths: list[Path]) -> None:
        """Show the import summary for ``paths``; on OK add them to the open project."""
        dialog = ImportDialog(import_source(paths), self.session, self.window(), self.session.settings)
        if dialog.exec() and dialog.project is not None:
            self.session.notify_samples_added()

    def shutdown(self) -> None:
        """Stop the tabs' background work and wait for it (the window is closing)."""
        self.train_panel.shutdown()
        self.results_panel.shutdown()
        self.map_panel.shutdown()
        self.label_page.shutdown()


__all__ = ["ImagePage", "import_source"]
