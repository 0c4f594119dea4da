"""The XRD page's labeling: ticks in the phase list, undo, labels from file names, the audit, the model.

The current pattern's label from the phase list, undo and redo, labels from file names, the label audit's
suggestion (ADR 36) and the model's answer taken as the label. The base class of
:class:`~labeltune.ui.xrd_page.XrdPage`, which lays out the panels these methods use and follows the
session. A label is committed to the project (``labels.csv``) the moment a phase is ticked; a label that
cannot be saved is said in a message, and the phase list shows the label on disk again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDialog, QWidget

from labeltune.core.audit_store import AuditFindings, load_findings
from labeltune.core.errors import LabelTuneError
from labeltune.core.xrd.results import XrdPrediction
from labeltune.core.xrd.xrd_project import XrdLabel, XrdProject
from labeltune.ui.errors import show_error
from labeltune.ui.session import ProjectSession
from labeltune.ui.xrd_audit import XrdAuditPanel
from labeltune.ui.xrd_identify import XrdIdentifyController
from labeltune.ui.xrd_patterns import LABEL_ERROR_ORDER, PatternListPanel
from labeltune.ui.xrd_phases import PhasePanel
from labeltune.ui.xrd_train import XrdTrainPanel


class XrdPageLabels(QWidget):
    """Labeling the pattern an :class:`~labeltune.ui.xrd_page.XrdPage` shows."""

    session: ProjectSession
    project: XrdProject | None
    _current: Path | None
    findings: AuditFindings | None
    name_labels_dialog: QDialog | None
    patterns_panel: PatternListPanel
    phase_panel: PhasePanel
    audit_panel: XrdAuditPanel
    train_panel: XrdTrainPanel
    identifier: XrdIdentifyController

    if TYPE_CHECKING:  # XrdPage's

        def _fill_list(self, select: Path | None = None) -> None:
            """Fill the pattern list and show ``select`` (or the first pattern)."""

        def _update_count(self) -> None:
            """Say how many patterns are labeled."""

        def show_neighbour(self, step: int) -> None:
            """Show the previous (-1) or next (+1) pattern."""

        def prediction(self) -> XrdPrediction | None:
            """The model's prediction for the current pattern, if it has one."""

    # -- labels -------------------------------------------------------------------------------------
    def _on_phase_panel_label_edited(self, label: XrdLabel) -> None:
        if self.project is None or self._current is None:
            return
        fractions = label.fractions
        if fractions is not None and abs(sum(fractions) - 1.0) > 0.02:
            fractions = None  # phases are saved at once; fractions once they add up to 100 %
        try:
            self.project.set_label(self._current, label.phases, fractions)
        except Exception as error:  # not saved: show the label as it is on disk
            show_error(self, "Cannot save the label", str(error))
            self.phase_panel.set_label(self.project.labels(self._current))
        self._after_label_change(self._current)

    def _on_session_labels_changed(self, _ids: list[int]) -> None:
        """Labels changed outside this page (File ▸ Import labels): show them."""
        if self.project is not None and self.project is self.session.current_project:
            self._fill_list(self._current)
            self.train_panel.refresh()

    def _after_label_change(self, path: Path) -> None:
        self.patterns_panel.refresh(path)
        self._show_audit_finding()
        self._update_count()
        self.train_panel.refresh()
        self.identifier.update_overlay()

    def set_label(self, phases: list[str], fractions: list[float] | None = None) -> None:
        """Label the current pattern (as ticking would)."""
        if self.project is not None and self._current is not None:
            try:
                self.project.set_label(self._current, phases, fractions)
            except (LabelTuneError, OSError) as error:  # not saved (disk full...): say so, show the disk's
                show_error(self, "Cannot save the label", str(error))
            self.phase_panel.set_label(self.project.labels(self._current))
            self._after_label_change(self._current)

    def undo(self) -> None:
        """Undo the last label change and show the pattern it touched."""
        self._history_step(undo=True)

    def redo(self) -> None:
        """Redo the last undone label change and show the pattern it touched."""
        self._history_step(undo=False)

    def _history_step(self, undo: bool) -> None:
        if self.project is None:
            return
        try:
            change = self.project.undo() if undo else self.project.redo()
        except Exception as error:
            show_error(self, "Cannot undo" if undo else "Cannot redo", str(error))
            return
        if change is None:
            return
        path = change.path
        if path != self._current:
            self.patterns_panel.select(path)  # shows the pattern and its label
        else:
            self.phase_panel.set_label(self.project.labels(path))
        self._after_label_change(path)

    def label_from_file_names(self) -> None:
        """Preview the labels the pattern file names state, then apply them (ui/xrd_name_labels.py)."""
        if self.project is None:
            return
        from labeltune.ui.xrd_name_labels import XrdNameLabelsDialog

        library = None
        try:
            library = self.project.library()
        except Exception:  # the dialog shows every phase as unknown; labels still work
            library = None
        dialog = XrdNameLabelsDialog(self.project, library, self)
        dialog.applied.connect(self._on_name_labels_dialog_applied)
        self.name_labels_dialog = dialog
        dialog.open()

    def _on_name_labels_dialog_applied(self, _keys: list[str]) -> None:
        self._fill_list(self._current)
        self.train_panel.refresh()

    # -- label audit (ui/xrd_audit.py, ADR 36) ------------------------------------------------------
    def _show_audit_finding(self) -> None:
        path, findings = self._current, self.findings
        if path is None or findings is None:
            self.audit_panel.show_finding("", False)
            return
        label = self._label_text(path)
        self.audit_panel.show_finding(
            findings.describe(str(path), label), findings.keeps("label_errors", str(path), label)
        )

    def _on_audit_controller_finished(self, _result: object) -> None:
        if self.project is not None and self.project.folder == self.audit_panel.job.project_folder():
            self.findings = load_findings(self.project.folder)
            self._fill_list(self._current)

    def take_audit_suggestion(self) -> None:
        """Label the current pattern with the phase set the audit suggests (undoable).

        Under the order *Likely label errors* the next one is shown.
        """
        path, findings = self._current, self.findings
        if (
            path is None
            or findings is None
            or not findings.keeps("label_errors", str(path), self._label_text(path))
        ):
            return
        suggestion = findings.suggestion(str(path))
        if not suggestion:
            return
        self.set_label([p for p in suggestion.split(";") if p])
        if self.patterns_panel.order_box.currentIndex() == LABEL_ERROR_ORDER:
            self.show_neighbour(1)

    def _label_text(self, path: Path) -> str:
        """A pattern's phases as the audit writes a label (library names, ";"-joined)."""
        if self.project is None:
            return ""
        phases = self.project.labels(path).phases
        try:
            from labeltune.core.audit_run import xrd_label_text

            return xrd_label_text(phases, self.project.library())  # formulas: the phases they stand for
        except Exception:  # no library: the phases as written
            return ";".join(phases)

    # -- the model's answer as label ----------------------------------------------------------------
    def use_prediction_as_label(self) -> None:
        """Make the model's phases the label of the current pattern."""
        prediction = self.prediction()
        if prediction is not None and prediction.phases:
            fractions = [c.fraction for c in prediction.phases]
            known = all(f is not None for f in fractions) and len(prediction.phases) > 1
            self.set_label(
                [c.name for c in prediction.phases],
                [round(float(f or 0.0), 4) for f in fractions] if known else None,
            )

    def use_alternative_as_label(self, row: int) -> None:
        """Label the current pattern with competing phase set ``row`` of its prediction (undoable)."""
        prediction = self.prediction()
        if prediction is None or not 0 <= row < len(prediction.alternatives):
            return
        alternative = prediction.alternatives[row]
        fractions = [round(float(f), 4) for f in alternative.fractions]
        known = len(alternative.phases) > 1 and len(fractions) == len(alternative.phases)
        self.set_label(list(alternative.phases), fractions if known else None)
