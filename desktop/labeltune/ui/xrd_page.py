"""The XRD project page: pattern list | pattern plot with "Model says" and "Fine-tune" | phases present.

Labels are committed to the project (``labels.csv``) the moment a phase is ticked. Identifying phases,
training, importing and the label audit run in workers; the GUI thread only reads the one pattern it
shows. Keys: Up/Down (in the pattern list or over the plot) move between patterns; Ctrl+Z / Ctrl+Shift+Z
undo and redo; T takes the phase set the audit suggests for a likely label error (ADR 36). Labeling (ticks,
undo, labels from file names, the audit's suggestion, the model's answer) is ui/xrd_page_labels.py's base
class.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.audit_store import AuditFindings, load_findings
from labeltune.core.domain import LabelProject
from labeltune.core.settings import Settings
from labeltune.core.xrd.pattern import Pattern, PatternReadError
from labeltune.core.xrd.results import XrdPrediction
from labeltune.core.xrd.xrd_project import XrdProject, xrd_run_problem
from labeltune.ui.errors import show_error
from labeltune.ui.session import ProjectSession
from labeltune.ui.xrd_audit import XrdAuditPanel
from labeltune.ui.xrd_identify import XrdIdentifyController
from labeltune.ui.xrd_models import XrdModelsPanel
from labeltune.ui.xrd_page_labels import XrdPageLabels
from labeltune.ui.xrd_patterns import PatternListPanel
from labeltune.ui.xrd_phases import WARNING_COLOUR, PhasePanel
from labeltune.ui.xrd_plot import PatternPlot
from labeltune.ui.xrd_project_bar import XrdProjectBar
from labeltune.ui.xrd_results import PredictionPanel
from labeltune.ui.xrd_train import XrdTrainPanel

NO_MODEL_TEXT = (
    "<b>No model yet</b>: fine-tune or choose one. Train one in the Fine-tune tab, or pick one in the "
    "Models tab (<i>Models…</i> above)."
)


class XrdPage(XrdPageLabels):
    """Label, identify and fine-tune on one XRD project (a :class:`~labeltune.ui.project_page.ProjectPage`).

    It shows the session's project whenever that is an XRD project; without a session of the window's
    it keeps one of its own (a page tried on its own).
    """

    project_changed = Signal()  # opened, closed or renamed: the window title follows
    import_text = "&Import patterns…"

    def __init__(self, session: ProjectSession | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session if session is not None else ProjectSession(Settings(), self)
        self.project: XrdProject | None = None
        self._current: Path | None = None
        self._pattern: Pattern | None = None
        self.findings: AuditFindings | None = None  # the project's stored audit (ui/xrd_audit.py)
        self.name_labels_dialog: QDialog | None = None  # Labels from file names… (ui/xrd_name_labels.py)

        self.project_bar = XrdProjectBar()

        self.patterns_panel = PatternListPanel()
        self.pattern_list = self.patterns_panel.list
        self.import_controller = self.patterns_panel.import_controller

        # -- centre: plot, model, fine-tune ------------------------------------------------------------
        self.pattern_info = QLabel()
        self.pattern_info.setObjectName("patternInfo")
        self.pattern_info.setWordWrap(True)
        self.audit_panel = XrdAuditPanel(self.session, lambda: self.project)
        self.audit_controller = self.audit_panel.controller  # tests wait on its signals
        self.plot = PatternPlot()
        self.prediction_panel = PredictionPanel()
        self.train_panel = XrdTrainPanel()
        self.models_panel = XrdModelsPanel()
        self.identifier = XrdIdentifyController(
            self.prediction_panel, self.plot, lambda: (self._current, self._pattern), self
        )
        self.predict_controller = self.identifier.controller  # tests and the window wait on its signals
        self.train_panel.library_problem = self.identifier.library_problem  # ADR 0048
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.prediction_panel, "Model says")
        self.tabs.addTab(self.train_panel, "Fine-tune")
        self.tabs.addTab(self.models_panel, "Models")
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.pattern_info)
        top_layout.addWidget(self.audit_panel)
        top_layout.addWidget(self.plot, 1)
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(top)
        centre.addWidget(self.tabs)
        centre.setStretchFactor(0, 4)
        centre.setStretchFactor(1, 3)
        centre.setSizes([490, 410])  # the tabs below: the model's phases (ADR 0057), fine-tune, models

        # -- right: phases present ---------------------------------------------------------------------
        self.phase_panel = PhasePanel()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.patterns_panel)
        splitter.addWidget(centre)
        splitter.addWidget(self.phase_panel)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([230, 800, 330])
        layout = QVBoxLayout(self)
        layout.addWidget(self.project_bar)
        layout.addWidget(splitter, 1)

        self.patterns_panel.current_changed.connect(self._show_current)
        self.patterns_panel.imported.connect(self._on_patterns_panel_imported)
        self.patterns_panel.name_labels_requested.connect(self.label_from_file_names)
        self.plot.plot.installEventFilter(self)
        self.plot.installEventFilter(self)
        self.project_bar.wavelength_set.connect(self.set_wavelength)
        self.project_bar.models_requested.connect(self._on_project_bar_models_requested)
        self.models_panel.model_chosen.connect(self.set_model)
        self.train_panel.use_requested.connect(self.set_model)
        self.phase_panel.label_edited.connect(self._on_phase_panel_label_edited)
        self.phase_panel.phase_previewed.connect(self.identifier.preview)
        self.prediction_panel.identify_requested.connect(self.identify)
        self.prediction_panel.use_as_label_requested.connect(self.use_prediction_as_label)
        self.prediction_panel.alternative_chosen.connect(self.use_alternative_as_label)
        self.prediction_panel.model_label.linkActivated.connect(self._on_model_label_link_activated)
        self.patterns_panel.set_doubt(self._doubt)
        self.identifier.identified.connect(self._on_identifier_identified)
        self.train_panel.run_finished.connect(self._on_train_panel_run_finished)
        self.audit_panel.take_requested.connect(self.take_audit_suggestion)
        self.audit_controller.finished.connect(self._on_audit_controller_finished)
        self.take_shortcut = QShortcut(QKeySequence(Qt.Key.Key_T), self)
        self.take_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.take_shortcut.activated.connect(self.take_audit_suggestion)
        self.session.project_opened.connect(self._on_session_project_opened)
        self.session.project_closed.connect(self._on_session_project_closed)
        self.session.labels_changed.connect(self._on_session_labels_changed)
        self.set_project(None)

    # -- project ------------------------------------------------------------------------------------
    def open(self, folder: Path | str) -> XrdProject:
        """Open the XRD project in ``folder`` in the session (raises XrdProjectError): this page shows it."""
        project = XrdProject.open(folder)
        self.session.adopt(project)
        return project

    def _on_session_project_opened(self, project: LabelProject) -> None:
        if isinstance(project, XrdProject):  # an image project is the image page's
            self.set_project(project)
            self.pattern_list.setFocus()

    def _on_session_project_closed(self) -> None:
        if self.project is not None:
            self.identifier.stop()  # its answers belong to the project being closed
            self.audit_panel.stop()
            self.set_project(None)

    def set_project(self, project: XrdProject | None) -> None:
        """Show ``project`` (``None``: nothing)."""
        self.project = project
        self._current, self._pattern = None, None
        self.identifier.set_project(project)
        self.train_panel.set_project(project)
        self.models_panel.set_project(project)
        self.patterns_panel.project = project
        self.findings = None if project is None else load_findings(project.folder)
        self.patterns_panel.findings = self.findings
        self.phase_panel.set_library(None)
        if project is not None:
            try:
                self.phase_panel.set_library(project.library())
            except Exception as error:  # the labels still work; the phase list stays empty
                show_error(self, "Cannot read the phase library", str(error))
        self._update_project_bar()
        self._fill_list()
        self.identifier.update_state()
        self.project_changed.emit()

    def shutdown(self) -> None:
        """Stop background work and wait for it (the window is closing)."""
        self.identifier.shutdown()
        self.audit_panel.shutdown()
        self.patterns_panel.shutdown()
        self.train_panel.shutdown()
        if self.models_panel.predict_dialog is not None:  # Predict a folder… (ui/predict_dialog.py)
            self.models_panel.predict_dialog.controller.shutdown()

    def current_path(self) -> Path | None:
        """The pattern shown."""
        return self._current

    # -- pattern list -------------------------------------------------------------------------------
    def _fill_list(self, select: Path | None = None) -> None:
        paths = [] if self.project is None else self.project.patterns()
        self.patterns_panel.set_findings(self.findings, self._label_text)
        current = self.patterns_panel.fill(paths, self._describe, select)
        self._update_count()
        self._show_current(current)

    def _describe(self, path: Path) -> tuple[str, str]:
        """A pattern's row in the list: mark, name, label; the tooltip adds what the model said."""
        if self.project is None:
            return path.name, ""
        label = self.project.labels(path)
        mark = "✓" if label.is_labeled else "·"
        text = f"{mark} {path.name}\n    {label.summary() if label.is_labeled else 'not labeled'}"
        prediction = self.identifier.prediction(path)
        said = ""
        if prediction is not None:
            said = "\nModel says: " + (" + ".join(c.name for c in prediction.phases) or "no phase")
            said += f" (unsure: {prediction.uncertainty * 100:.0f} %)"
        return text, f"{path.name}\nLabel: {label.summary() or 'none'}{said}"

    def _doubt(self, path: Path) -> float | None:
        prediction = self.identifier.prediction(path)
        return None if prediction is None else prediction.uncertainty

    def _update_count(self) -> None:
        project = self.project
        total = len(self.patterns_panel.paths())
        self.patterns_panel.set_count_text(
            "" if project is None else f"{project.labeled_count()} of {total} labeled"
        )

    def show_neighbour(self, step: int) -> None:
        """Show the previous (-1) or next (+1) pattern."""
        self.patterns_panel.show_neighbour(step)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Up/Down over the plot move between patterns (the list handles them itself)."""
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down)
            and not event.modifiers()
        ):
            self.show_neighbour(-1 if event.key() == Qt.Key.Key_Up else 1)
            return True
        return super().eventFilter(watched, event)

    def _show_current(self, path: Path | None) -> None:
        self._current, self._pattern = path, None
        if self.project is None or path is None:
            self.plot.clear()
            empty = ""
            if self.project is not None:
                empty = (
                    "No pattern in this order." if self.project.patterns() else "Import patterns to start."
                )
            self.pattern_info.setText(empty)
            self.phase_panel.set_label(None)
            self._show_audit_finding()
            self.identifier.show_prediction()
            return
        try:
            self._pattern = self.project.read(path)
        except (PatternReadError, OSError) as error:
            self.plot.clear()
            self.pattern_info.setText(f"<span style='color:{WARNING_COLOUR}'>{error}</span>")
        else:
            pattern = self._pattern
            self.plot.set_pattern(pattern.two_theta, pattern.intensity, pattern.wavelength)
            source = {"file": "stated in the file", "setting": "the project setting: the file does not say"}
            wavelength = (
                f"λ {pattern.wavelength:.5g} Å ({source.get(pattern.wavelength_source, 'unknown')})"
                if pattern.wavelength is not None
                else "wavelength unknown"
            )
            self.pattern_info.setText(
                f"<b>{path.name}</b> · {len(pattern)} points, 2θ {pattern.two_theta[0]:.2f}–"
                f"{pattern.two_theta[-1]:.2f}° · {wavelength}"
            )
        self.phase_panel.set_label(self.project.labels(path))
        self._show_audit_finding()
        self.identifier.show_prediction()

    # -- import -------------------------------------------------------------------------------------
    def choose_import(self) -> None:
        """Ask for pattern files and import them."""
        self.patterns_panel.choose_and_import()

    def import_files(self, paths: list[Path]) -> None:
        """Check and copy pattern files (or folders of them) into the project, in the background."""
        self.patterns_panel.import_patterns(paths)

    import_patterns = import_files  # the name this page's callers and tests know

    def _on_patterns_panel_imported(self, added: list[Path]) -> None:
        self._fill_list(select=added[0] if added else self._current)

    # -- settings: wavelength and model -------------------------------------------------------------
    def _update_project_bar(self) -> None:
        project = self.project
        self.setEnabled(project is not None)
        self.project_bar.show_project(project)
        model = None if project is None else project.model_dir
        problem = self.identifier.library_problem()
        text = NO_MODEL_TEXT if model is None else f"Model <b>{model.name}</b> identifies the phases."
        if problem is not None:  # ADR 0048: say so before Identify is pressed, and offer the way out
            text = (
                f"<span style='color:{WARNING_COLOUR}'>⚠ {html.escape(problem)}</span> "
                "<a href='train'>Train a model for this library…</a>"
            )
        self.prediction_panel.set_model_text(text)

    def set_wavelength(self, value: float) -> None:
        """Set and confirm the wavelength for files that do not state theirs; re-read the pattern."""
        if self.project is None:
            return
        try:
            self.project.set_wavelength(value, confirmed=True)
        except Exception as error:
            show_error(self, "Cannot set the wavelength", str(error))
        self.identifier.forget()  # they were computed with the old wavelength
        self._update_project_bar()
        self._show_current(self._current)

    def set_model(self, run_dir: Path | None) -> bool:
        """Use the model in ``run_dir`` if it is an XRD run (else say why; ``None``: no model).

        Returns whether the project's model changed to it.
        """
        if self.project is None:
            return False
        problem = None if run_dir is None else xrd_run_problem(run_dir)
        if problem is not None:
            show_error(self, "Not an XRD model", problem)
            return False
        try:
            self.project.set_model(run_dir)
        except Exception as error:
            show_error(self, "Cannot use the model", str(error))
            return False
        self.identifier.forget()
        self._update_project_bar()
        self.train_panel.refresh()
        self.models_panel.refresh()
        self.identifier.show_prediction()
        self.identifier.update_state()
        return True

    def _on_model_label_link_activated(self, _link: str) -> None:
        self.tabs.setCurrentWidget(self.train_panel)

    def _on_project_bar_models_requested(self) -> None:
        self.tabs.setCurrentWidget(self.models_panel)

    def _on_train_panel_run_finished(self, run_dir: Path) -> None:
        self.models_panel.refresh()  # the new run is listed, adopted or not
        if self.project is not None and self.project.model_dir == run_dir:
            self.identifier.forget()
            self._update_project_bar()
            self.identifier.show_prediction()
            self.identifier.update_state()

    # -- identification (XrdIdentifyController) ----------------------------------------------------
    def identify(self, all_patterns: bool = False) -> None:
        """Identify the phases in the current pattern (or all) with the project's model, in the background."""
        self.identifier.identify(all_patterns)

    def _on_identifier_identified(self) -> None:
        self.patterns_panel.refresh()  # the tooltips say what the model said
        self.patterns_panel.reorder()  # "least sure first" follows the new answers

    def prediction(self) -> XrdPrediction | None:
        """The model's prediction for the current pattern, if it has one."""
        return self.identifier.prediction()


__all__ = ["XrdPage"]
