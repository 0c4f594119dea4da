"""Import summary: scan a folder in the background, show what was found, commit only on OK.

The dialog scans at once (a :class:`FunctionWorker`, with a progress bar and Cancel), then shows the
images per class, the unlabeled ones and every skipped file with its reason.  Nothing is written until
OK: then a new project is created (or the images are added to the open one), again in a worker.  Cancel
at any point before that leaves no trace.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.datasets import Dataset
from labeltune.core.progress import Progress
from labeltune.core.project import Project, new_project_problem
from labeltune.core.settings import Settings, project_folder_name
from labeltune.ui.errors import show_error
from labeltune.ui.import_jobs import add_to_project_job, create_project_job, scan_job
from labeltune.ui.session import ProjectSession
from labeltune.ui.start_page import project_title
from labeltune.workers.tasks import FunctionWorker, TaskController

log = logging.getLogger(__name__)

LOCATION_TIP = (
    "Where the project is saved: a folder named after the project is made here, and its labels, runs "
    "and cache are written inside it.\nThe default is LabelTune in your documents folder. Your images "
    "are never changed, moved or copied: the project refers to them where they are."
)


class ImportDialog(QDialog):
    """Summary of a folder (or CSV) before it becomes a project or is added to the open one."""

    scanned = Signal(object)  # Dataset: the summary is shown
    committed = Signal(object)  # Project: created (or extended); the dialog accepts next

    def __init__(
        self,
        folder: Path | Sequence[Path],
        session: ProjectSession | None,
        parent: QWidget | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(parent)
        # a folder or CSV; or files picked one by one (dropped), which are all that is added
        self.files: list[Path] | None = None
        if isinstance(folder, Path):
            self.folder = folder
        else:
            self.files = [Path(p) for p in folder]
            self.folder = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in self.files]))
        self.session = session
        self.settings = settings if settings is not None else Settings.load()
        self.project: Project | None = None
        self.dataset: Dataset | None = None
        self._phase = "scan"  # scan -> summary -> commit (or "failed")
        self._cancel_pending = False
        into = session.project if session is not None else None
        self.setWindowTitle(f"Add images to {into.name}" if into is not None else "New project from folder")
        self.setObjectName("importDialog")
        self.setMinimumWidth(560)
        self.resize(680, 560)

        if self.files is not None and len(self.files) == 1:
            what = f"{self.files[0].name} in {self.folder}"
        elif self.files is not None:
            what = f"{len(self.files)} dropped items in {self.folder}"
        else:
            what = str(self.folder)
        heading = QLabel(f"<b>{'Add' if into is not None else 'Images:'}</b> {html.escape(what)}")
        heading.setTextFormat(Qt.TextFormat.RichText)
        heading.setWordWrap(True)
        heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("Looking for images…")
        self.status.setObjectName("importStatus")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(True)

        self.counts_table = QTableWidget(0, 3)
        self.counts_table.setObjectName("countsTable")
        self.counts_table.setHorizontalHeaderLabels(["Class", "Images", ""])
        self.counts_table.verticalHeader().hide()
        self.counts_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.counts_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.counts_table.setToolTip("Sub-folders are classes; images directly in the folder are unlabeled")
        rows = self.counts_table.verticalHeader()
        rows.setDefaultSectionSize(self.fontMetrics().height() + 8)
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.counts_table.setColumnHidden(2, not self.into_project)
        header = self.counts_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)

        self.skipped_button = QToolButton()
        self.skipped_button.setObjectName("skippedButton")
        self.skipped_button.setCheckable(True)
        self.skipped_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.skipped_button.setArrowType(Qt.ArrowType.RightArrow)
        self.skipped_button.setAutoRaise(True)
        self.skipped_button.setToolTip("Files that are not used, and why (they are left as they are)")
        self.skipped_tree = QTreeWidget()
        self.skipped_tree.setObjectName("skippedTree")
        self.skipped_tree.setHeaderLabels(["File", "Reason"])
        self.skipped_tree.setRootIsDecorated(False)
        self.skipped_tree.setVisible(False)

        is_csv = self.folder.suffix.lower() == ".csv"
        self.name_edit = QLineEdit(self.folder.stem if is_csv else self.folder.name)
        self.name_edit.setPlaceholderText(self.name_edit.text())
        self.name_edit.setObjectName("nameEdit")
        self.name_edit.setToolTip("The project's name, shown in the window title and recent projects")
        self.location_edit = QLineEdit(str(self.settings.new_projects_folder()))
        self.location_edit.setObjectName("locationEdit")
        self.location_edit.setToolTip(LOCATION_TIP)
        browse = QPushButton("&Browse…")
        browse.setToolTip("Choose the folder the project is saved in")
        location_row = QHBoxLayout()
        location_row.addWidget(self.location_edit, 1)
        location_row.addWidget(browse)
        self.location_note = QLabel()
        self.location_note.setObjectName("locationNote")
        self.location_note.setWordWrap(True)
        self.location_note.setToolTip(LOCATION_TIP)
        self.form = QWidget()
        form = QFormLayout(self.form)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Project &name:", self.name_edit)
        location_label = QLabel("Save &in:")
        location_label.setBuddy(self.location_edit)
        location_label.setToolTip(LOCATION_TIP)
        form.addRow(location_label, location_row)
        form.addRow("", self.location_note)
        self.form.setVisible(False)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setEnabled(False)
        self.ok_button.setText("Add to project" if into is not None else "Create project")
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setToolTip("Close without saving anything")

        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addWidget(self.counts_table, 1)
        layout.addWidget(self.skipped_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.skipped_tree, 1)
        layout.addStretch(0)  # takes the room only while the table and list are hidden
        layout.addWidget(self.form)
        layout.addWidget(self.buttons)
        self.counts_table.setVisible(False)
        self.skipped_button.setVisible(False)

        self.controller = TaskController(self)
        self.controller.progressed.connect(self._on_task_progressed)
        self.controller.finished.connect(self._on_task_finished)
        self.controller.stopped.connect(self._on_task_stopped)
        self.controller.failed.connect(self._on_task_failed)
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        self.skipped_button.toggled.connect(self._on_skipped_button_toggled)
        self.location_edit.textChanged.connect(self._update_location_state)
        self.name_edit.textChanged.connect(self._update_location_state)
        browse.clicked.connect(self._on_browse_clicked)
        self.controller.start(FunctionWorker(scan_job(self.folder if self.files is None else self.files)))

    # -- state --------------------------------------------------------------------------------------
    @property
    def into_project(self) -> bool:
        """Whether the images go into the session's open project (rather than a new one)."""
        return self.session is not None

    def is_busy(self) -> bool:
        """Whether a scan or a commit is running."""
        return self.controller.is_running()

    def save_in(self) -> Path:
        """The folder the new project's own folder is made in ("Save in")."""
        return Path(os.path.expanduser(self.location_edit.text().strip()))

    def project_name(self) -> str:
        """The new project's name (the image folder's name when left empty)."""
        return self.name_edit.text().strip() or self.name_edit.placeholderText() or self.folder.name

    def location(self) -> Path:
        """The project's own folder: ``<Save in>/<project name>``, or the existing project offered."""
        existing = self._existing_project_folder()
        if existing is not None:
            return existing
        return self.save_in() / project_folder_name(self.project_name())

    def _existing_project_folder(self) -> Path | None:
        """A project the user more likely wants to open: the scanned folder or "Save in" itself."""
        if self.into_project:
            return None
        candidates = [self.folder] if self.folder.is_dir() and self.files is None else []
        if self.location_edit.text().strip():
            candidates.append(self.save_in())
        return next((c for c in candidates if project_title(c) is not None), None)

    def _existing_project(self) -> str | None:
        folder = self._existing_project_folder()
        return project_title(folder) if folder is not None else None

    def _update_location_state(self) -> None:
        if self.into_project or self._phase != "summary":
            return
        has_samples = self.dataset is not None and bool(self.dataset.samples)
        existing = self._existing_project()
        self.name_edit.setEnabled(True)
        if not self.location_edit.text().strip():
            self.location_note.setText("Choose the folder the project is saved in.")
            self.ok_button.setEnabled(False)
        elif existing is not None:
            self.location_note.setText(
                f"⚠ This folder already holds the LabelTune project “{existing}”. Open it as it is, or "
                "choose another folder for a new project."
            )
            self.ok_button.setText("Open existing project")
            self.ok_button.setEnabled(True)
            self.name_edit.setEnabled(False)
            return
        else:
            where = self.location()
            problem = new_project_problem(where)
            self.ok_button.setText("Create project")
            if problem is not None:  # an existing, non-empty folder: never scatter files into it
                self.location_note.setText(
                    f"⚠ {where} already exists and holds other files. Choose another project name or "
                    "another place to save in: a project gets a folder of its own."
                )
                self.ok_button.setEnabled(False)
                return
            exists = where.is_dir()
            self.location_note.setText(
                f"{'Uses the empty folder' if exists else 'Creates the folder'} {where} for the project's "
                "labels, runs and cache. Your images stay where they are."
            )
            self.ok_button.setEnabled(has_samples)

    def _show_summary(self, data: Dataset) -> None:
        self.dataset = data
        self._phase = "summary"
        self.progress.setVisible(False)
        counts = data.counts()
        known = set(self.session.require().classes) if self.session is not None else set()
        rows = [*counts.items(), *([("(unlabeled)", len(data.unlabeled))] if data.unlabeled else [])]
        self.counts_table.setRowCount(len(rows))
        for row, (name, count) in enumerate(rows):
            name_item = QTableWidgetItem(name)
            count_item = QTableWidgetItem(f"{count:,}")
            count_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            note = ""
            if name == "(unlabeled)" and row == len(counts):
                font = name_item.font()
                font.setItalic(True)
                name_item.setFont(font)
                name_item.setToolTip("Images directly in the folder: label them in the Label tab")
            elif self.into_project and name not in known:
                note = "new class"
            self.counts_table.setItem(row, 0, name_item)
            self.counts_table.setItem(row, 1, count_item)
            self.counts_table.setItem(row, 2, QTableWidgetItem(note))
        self.counts_table.setVisible(bool(rows))

        skipped = data.skipped
        self.skipped_tree.clear()
        for item in skipped:
            shown = item.path
            with contextlib.suppress(ValueError):
                shown = Path(item.path).relative_to(data.root).as_posix()
            tree_item = QTreeWidgetItem([shown, item.reason])
            tree_item.setToolTip(0, item.path)
            tree_item.setToolTip(1, item.reason)
            self.skipped_tree.addTopLevelItem(tree_item)
        self.skipped_tree.resizeColumnToContents(0)
        self.skipped_button.setText(
            f"{len(skipped)} file{'s' if len(skipped) != 1 else ''} skipped (not readable as images)"
        )
        self.skipped_button.setVisible(bool(skipped))
        self.skipped_button.setChecked(bool(skipped) and not data.samples)

        self.form.setVisible(not self.into_project and bool(data.samples))
        self.ok_button.setEnabled(bool(data.samples))
        self._update_location_state()
        self.ok_button.setDefault(True)
        labeled, unlabeled = len(data.labeled), len(data.unlabeled)
        if not data.samples:
            self.status.setText(
                "⚠ No images found here. Pick a folder whose sub-folders hold the images of each class "
                "(or a CSV with path and label columns)."
            )
        else:
            found = labeled + unlabeled
            if labeled and unlabeled:
                what = (
                    f": {labeled:,} in {len(counts)} class{'es' if len(counts) != 1 else ''}, "
                    f"{unlabeled:,} unlabeled"
                )
            elif labeled:
                what = f" in {len(counts)} class{'es' if len(counts) != 1 else ''}"
            else:
                what = ", unlabeled" if found != 1 else ", not labeled yet"
            self.status.setText(
                f"Found {found:,} image{'s' if found != 1 else ''}{what}. Nothing is saved yet."
            )
        self.scanned.emit(data)

    def _set_busy(self, text: str) -> None:
        self.status.setText(text)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.ok_button.setEnabled(False)
        self.form.setEnabled(False)

    # -- slots --------------------------------------------------------------------------------------
    def _on_buttons_accepted(self) -> None:
        if self._phase != "summary" or self.dataset is None:
            return
        existing = self._existing_project()
        if existing is not None:
            try:
                self.project = Project.open(self.location())
            except Exception as error:  # a damaged project: say so, keep the dialog open
                show_error(self, "Cannot open the project", str(error))
                return
            self.committed.emit(self.project)
            super().accept()
            return
        self._phase = "commit"
        self.cancel_button.setEnabled(False)
        self._set_busy("Adding the images to the project…" if self.into_project else "Creating the project…")
        if self.session is not None:
            job = add_to_project_job(self.dataset, self.session.require())
        else:
            job = create_project_job(self.dataset, self.location(), self.project_name())
        self.controller.start(FunctionWorker(job))

    def _on_task_progressed(self, progress: Progress) -> None:
        if self._cancel_pending:
            return
        if progress.total:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(progress.done)
            self.status.setText(f"Checking images: {progress.done:,} of {progress.total:,}…")

    def _on_task_finished(self, result: object) -> None:
        if self._phase == "commit":
            assert isinstance(result, Project)
            self.project = result
            if not self.into_project:  # the next new project is proposed beside this one
                self.settings.projects_folder = str(result.folder.parent)
                with contextlib.suppress(OSError):
                    self.settings.save()
            self.committed.emit(result)
            super().accept()
        elif self._cancel_pending:
            super().reject()
        else:
            assert isinstance(result, Dataset)
            self._show_summary(result)

    def _on_task_stopped(self) -> None:
        super().reject()  # only Cancel stops a task: the scan, which the commit never is

    def _on_task_failed(self, message: str, details: str) -> None:
        if self._cancel_pending:
            super().reject()
            return
        if self._phase == "commit":
            self._phase = "summary"
            self.progress.setVisible(False)
            self.cancel_button.setEnabled(True)
            self.form.setEnabled(True)
            self.status.setText(f"⚠ Nothing was saved: {message}")
            self._update_location_state()
            if self.into_project:
                self.ok_button.setEnabled(True)
            show_error(self, "Cannot save the project", message, details)
            return
        self._phase = "failed"
        self.progress.setVisible(False)
        self.status.setText(f"⚠ Cannot read {self.folder}: {message}")
        self.cancel_button.setText("Close")
        show_error(self, "Cannot read the folder", message, details)

    def _on_skipped_button_toggled(self, shown: bool) -> None:
        self.skipped_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.skipped_tree.setVisible(shown and self.skipped_tree.topLevelItemCount() > 0)

    def _on_browse_clicked(self) -> None:
        start = self.location_edit.text()
        if not Path(start).is_dir():
            start = str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Save the project in", start)
        if folder:
            self.location_edit.setText(folder)

    # -- closing ------------------------------------------------------------------------------------
    def reject(self) -> None:
        """Cancel: stop a running scan first (the dialog closes when it has stopped); never mid-commit."""
        if self._phase == "commit":
            return
        if self.controller.is_running():
            self._cancel_pending = True
            self.status.setText("Cancelling…")
            self.cancel_button.setEnabled(False)
            self.controller.stop()
            return
        super().reject()
