"""The open project, shared by all panels: every change goes through here and is announced by a signal.

The session holds the open project of either kind (:class:`~labeltune.core.domain.LabelProject`: images or
XRD patterns) and announces its opening and closing to every listener. Image-only operations (labels by
sample id, classes) go through :attr:`ProjectSession.project`, which is the open *image* project (``None``
while an XRD project is open), so the image panels stay typed. See docs/adr/0024.

Each image label is committed to the project's SQLite store (one short transaction) before the signal goes
out, so the next key press already sees it and a crash a moment later loses nothing. A selection of many
images is one transaction and one undo step; above a few hundred it is written by a worker
(ui/label_batch.py), which tells the session when it is done (docs/adr/0039).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from labeltune.core.domain import LabelChange, LabelProject
from labeltune.core.project import LabelSource, Project
from labeltune.core.run_state import record_interrupted_runs
from labeltune.core.settings import Settings
from labeltune.core.xrd.xrd_project import XrdProject, is_xrd_project

log = logging.getLogger(__name__)


def list_killed_runs(project: Project) -> None:
    """Record the runs a crash or kill left unlisted, so the runs list offers to continue them (ADR 0041)."""
    try:
        for run in record_interrupted_runs(project):
            log.info("run %s was interrupted (%s): listed to continue", run.run_dir, run.describe())
    except Exception:  # a read-only or damaged store: the project still opens, the folders stay as they are
        log.exception("cannot list the interrupted runs of %s", project.folder)


class ProjectSession(QObject):
    """Holds the open project (image or XRD) and tells panels what changed."""

    project_opened = Signal(object)  # LabelProject, of either kind
    project_closing = Signal(object)  # LabelProject, still open: last chance to store what belongs to it
    project_closed = Signal()
    labels_changed = Signal(list)  # sample ids whose label changed
    classes_changed = Signal()
    samples_changed = Signal()  # samples added (import)
    runs_changed = Signal()
    predictions_changed = Signal()  # a run's predictions of the project's images were stored
    current_changed = Signal(int)  # sample id shown in the large view

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.current_project: LabelProject | None = None
        self.current_id: int | None = None
        #: The run whose stored predictions the Label tab shows: the one checked or drilled into last
        #: (``None``: the newest checked run).
        self.shown_run: str | None = None

    # -- project ------------------------------------------------------------------------------------
    @property
    def project(self) -> Project | None:
        """The open image project (``None`` when none is open, or the open one holds XRD patterns)."""
        project = self.current_project
        return project if isinstance(project, Project) else None

    def open(self, folder: Path | str) -> LabelProject:
        """Open the project in ``folder``, of whichever kind it is (closing any open one)."""
        folder = Path(folder)
        project: LabelProject = XrdProject.open(folder) if is_xrd_project(folder) else Project.open(folder)
        if isinstance(project, Project):
            list_killed_runs(project)
        self.adopt(project)
        return project

    def adopt(self, project: LabelProject) -> None:
        """Make an already opened project (e.g. just created by a dialog) the open one."""
        self.close()
        self.current_project = project
        self.current_id = None
        self.shown_run = None
        self.project_opened.emit(project)

    def close(self) -> None:
        """Close the open project, if any."""
        project = self.current_project
        if project is not None:
            self.project_closing.emit(project)
            project.close()
            self.current_project = None
            self.current_id = None
            self.shown_run = None
            self.project_closed.emit()

    def require(self) -> Project:
        """The open image project (raises if none is: a programming error in the caller)."""
        project = self.project
        if project is None:
            raise RuntimeError("no image project is open")
        return project

    # -- labels -------------------------------------------------------------------------------------
    def set_label(self, sample_ids: Sequence[int], label: str | None, source: LabelSource = "human") -> None:
        """Label (or unlabel) samples as a person's decision; committed before the signal is emitted.

        ``source`` ``accepted``: the person confirmed the model's suggestion (Space on the Label page).
        Several samples are one transaction and one undo step (docs/adr/0039).
        """
        self.assign_labels(dict.fromkeys(sample_ids, label), source)

    def assign_labels(self, labels: Mapping[int, str | None], source: LabelSource = "human") -> None:
        """Give each sample its label (one transaction, one undo step), then tell the panels."""
        self.require().assign_labels(labels, source)
        self.labels_changed.emit(list(labels))

    def notify_labels_changed(self, sample_ids: Sequence[int]) -> None:
        """Tell panels that a worker changed these samples' labels (a big batch: ui/label_batch.py)."""
        self.labels_changed.emit(list(sample_ids))

    def undo(self) -> int | None:
        """Undo the last human label change; return the sample it touched (a batch: its first)."""
        return self.announce_change(self.require().undo())

    def redo(self) -> int | None:
        """Redo the last undone label change; return the sample it touched."""
        return self.announce_change(self.require().redo())

    def announce_change(self, change: LabelChange[int, str | None] | None) -> int | None:
        """Tell panels what an undo or redo changed (maybe done in a worker); the sample to show."""
        if change is None:
            return None
        self.labels_changed.emit(list(change.items))
        return change.sample_id

    def set_current(self, sample_id: int | None) -> None:
        """Show ``sample_id`` in the large view (and select it in the gallery)."""
        if sample_id is not None and sample_id != self.current_id:
            self.current_id = sample_id
            self.current_changed.emit(sample_id)

    # -- classes ------------------------------------------------------------------------------------
    def add_class(self, name: str) -> None:
        """Add a class (it gets the next free hotkey)."""
        self.require().add_class(name)
        self.classes_changed.emit()

    def rename_class(self, old: str, new: str) -> None:
        """Rename a class, relabeling its samples."""
        self.require().rename_class(old, new)
        self.classes_changed.emit()
        self.labels_changed.emit([])

    def merge_classes(self, sources: Sequence[str], target: str) -> None:
        """Merge classes into ``target``."""
        self.require().merge_classes(list(sources), target)
        self.classes_changed.emit()
        self.labels_changed.emit([])

    def delete_class(self, name: str) -> None:
        """Delete a class; its samples become unlabeled."""
        self.require().delete_class(name)
        self.classes_changed.emit()
        self.labels_changed.emit([])

    def reorder_classes(self, order: Sequence[str]) -> None:
        """Change the class order (and so the 1-9 hotkeys)."""
        self.require().reorder_classes(list(order))
        self.classes_changed.emit()

    def notify_samples_added(self) -> None:
        """Tell panels that an import added samples."""
        self.samples_changed.emit()
        self.classes_changed.emit()

    def notify_runs_changed(self) -> None:
        """Tell panels that a run was recorded."""
        self.runs_changed.emit()

    def notify_predictions_changed(self, run_id: str | None = None) -> None:
        """Tell panels that a run's predictions of the project's images were stored, or are to be shown.

        ``run_id``: that run's predictions are shown from now on (the run checked or drilled into).
        """
        if run_id is not None:
            self.shown_run = run_id
        self.predictions_changed.emit()
