"""The main window: composes the start page, the project pages, menus and actions. No logic of its own."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QStackedWidget, QTabWidget

from labeltune.core.project import Project
from labeltune.core.project_lock import ProjectLock, other_holder
from labeltune.core.settings import Settings
from labeltune.core.xrd.xrd_project import is_xrd_project
from labeltune.ui.about import show_about
from labeltune.ui.demo_opener import DemoOpener
from labeltune.ui.errors import show_error
from labeltune.ui.import_dialog import ImportDialog
from labeltune.ui.label_page import LabelPage
from labeltune.ui.results_panel import ResultsPanel
from labeltune.ui.session import ProjectSession
from labeltune.ui.start_page import StartPage, project_title
from labeltune.ui.train_panel import TrainPanel
from labeltune.ui.xrd_new_dialog import XrdNewProjectDialog
from labeltune.ui.xrd_page import XrdPage

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Start page, the open image project's Label / Train / Results tabs, or the open XRD project's page."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings.load()
        self.session = ProjectSession(self.settings, self)
        self._lock: ProjectLock | None = None  # of the open project, image or XRD
        self.setAcceptDrops(True)
        self.resize(1280, 820)

        self.start_page = StartPage(self.settings)
        self.label_page = LabelPage(self.session)
        self.train_panel = TrainPanel(self.session)
        self.results_panel = ResultsPanel(self.session)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.label_page, "&Label")
        self.tabs.addTab(self.train_panel, "&Train")
        self.tabs.addTab(self.results_panel, "&Results")
        self.xrd_page = XrdPage()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.start_page)
        self.stack.addWidget(self.tabs)
        self.stack.addWidget(self.xrd_page)
        self.setCentralWidget(self.stack)
        self._build_menus()

        self.start_page.new_project_requested.connect(self.new_project)
        self.start_page.new_xrd_project_requested.connect(self.new_xrd_project)
        self.start_page.open_project_requested.connect(self.open_project)
        self.start_page.demo_requested.connect(self.open_demo)
        self.session.project_opened.connect(self._on_session_project_opened)
        self.session.project_closed.connect(self._on_session_project_closed)
        self.xrd_page.project_changed.connect(self._update_title)
        self.results_panel.continue_requested.connect(self._on_results_panel_continue_requested)
        self._update_title()
        self._restore_geometry()

    def _on_results_panel_continue_requested(self, run_dir: Path) -> None:
        """Continue a stopped run chosen in the runs list: the Train tab shows it training."""
        if self.train_panel.resume_run(Path(run_dir)):
            self.tabs.setCurrentWidget(self.train_panel)

    # -- menus --------------------------------------------------------------------------------------
    def _action(
        self,
        text: str,
        slot: object,
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip or text.replace("&", ""))
        action.triggered.connect(slot)  # type: ignore[arg-type]
        return action

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(
            self._action(
                "&New project from folder…",
                self.new_project,
                QKeySequence.StandardKey.New,
                "Create a project from a folder of images (sub-folders are classes)",
            )
        )
        file_menu.addAction(
            self._action(
                "New &XRD project…",
                self.new_xrd_project,
                tip="Create a project of powder X-ray diffraction patterns, with a phase library",
            )
        )
        file_menu.addAction(
            self._action("&Open project…", self.choose_project, QKeySequence.StandardKey.Open)
        )
        self.import_action = self._action(
            "&Import images…",
            self.import_into_project,
            "Ctrl+I",
            "Add images from a folder or CSV to the open project",
        )
        file_menu.addAction(self.import_action)
        self.close_action = self._action("&Close project", self.close_project, "Ctrl+W")
        file_menu.addAction(self.close_action)
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))
        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_action = self._action("&Undo label", self.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action("&Redo label", self.redo, "Ctrl+Shift+Z")
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._action("&About LabelTune", lambda: show_about(self)))
        self._set_project_actions_enabled(False)

    def _set_project_actions_enabled(self, enabled: bool) -> None:
        for action in (self.import_action, self.close_action, self.undo_action, self.redo_action):
            action.setEnabled(enabled)

    # -- project life cycle -------------------------------------------------------------------------
    def new_project(self) -> None:
        """Pick a folder of images and create a project from it (with an import summary first)."""
        folder = QFileDialog.getExistingDirectory(self, "Folder of images (sub-folders are classes)")
        if folder:
            self.import_folder(Path(folder))

    def import_folder(self, folder: Path | list[Path], into_project: bool = False) -> None:
        """Show the import summary for ``folder`` (or dropped files); on OK create or extend the project."""
        dialog = ImportDialog(folder, self.session if into_project else None, self, self.settings)
        if dialog.exec() and dialog.project is not None:
            if into_project:
                self.session.notify_samples_added()
            else:
                self.session.adopt(dialog.project)

    def import_into_project(self) -> None:
        """Add a folder of images to the open project (or pattern files to the open XRD project)."""
        if self.xrd_page.project is not None:
            self.xrd_page.choose_patterns()
            return
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to add")
        if folder:
            self.import_folder(Path(folder), into_project=True)

    def new_xrd_project(self) -> None:
        """Ask for a folder, a phase library and optionally a model; create the XRD project and open it."""
        dialog = XrdNewProjectDialog(self, self.settings)
        if dialog.exec() and dialog.project is not None:
            self._show_xrd_project(dialog.project.folder)

    def undo(self) -> None:
        """Undo the last label change of the open project."""
        (self.xrd_page if self.xrd_page.project is not None else self.label_page).undo()

    def redo(self) -> None:
        """Redo the last undone label change of the open project."""
        (self.xrd_page if self.xrd_page.project is not None else self.label_page).redo()

    def close_project(self) -> None:
        """Close the open project, image or XRD."""
        if self.xrd_page.project is not None:
            self.xrd_page.close_project()
            self._on_session_project_closed()
        self.session.close()

    def choose_project(self) -> None:
        """Pick an existing project folder."""
        folder = QFileDialog.getExistingDirectory(self, "Open a LabelTune project folder")
        if folder:
            self.open_project(folder)

    def open_project(self, folder: str | Path) -> None:
        """Open a project folder (image or XRD), reporting problems instead of failing.

        A project that another LabelTune has open (its lock file names a live process, or another
        computer) is opened only when the user says so.
        """
        holder = other_holder(folder) if self._held_folder() != Path(folder) else None
        if holder is not None:
            answer = QMessageBox.question(
                self,
                "Project already open",
                f"“{project_title(Path(folder)) or Path(folder).name}” seems to be open in LabelTune "
                f"{holder.describe()}.\n\n"
                "Labeling it in two windows at once can lose labels: close it there first. If LabelTune "
                "is no longer running there (the computer was switched off, say), open it anyway.",
                QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Open:
                return
        try:
            if is_xrd_project(folder):
                self._show_xrd_project(Path(folder))
            else:
                self.session.open(Path(folder))
        except Exception as error:  # a damaged or foreign folder must not take the app down
            show_error(self, "Cannot open project", str(error))

    def _show_xrd_project(self, folder: Path) -> None:
        """Open an XRD project in the XRD page (closing any open project first)."""
        self.session.close()
        self.xrd_page.open(folder)
        self._hold(self.xrd_page.project.folder if self.xrd_page.project is not None else None)
        self.settings.add_recent(folder)
        self.settings.save()
        self.stack.setCurrentWidget(self.xrd_page)
        self._set_project_actions_enabled(True)
        self.import_action.setText("&Import patterns…")
        self._update_title()

    def open_demo(self, name: str) -> None:
        """Open a shipped demo, writing it first (once, in a worker, with progress and Stop)."""
        DemoOpener.of(self, self.open_project).open(name)

    def _held_folder(self) -> Path | None:
        return self._lock.folder if self._lock is not None else None

    def _hold(self, folder: Path | None) -> None:
        """Hold the lock of the project now open (``None``: of none), releasing the previous one."""
        if self._lock is not None and (folder is None or self._lock.folder != folder):
            self._lock.release()
            self._lock = None
        if folder is not None and self._lock is None:
            self._lock = ProjectLock(folder)

    def _on_session_project_opened(self, project: object) -> None:
        assert isinstance(project, Project)
        self._hold(project.folder)
        if self.xrd_page.project is not None:
            self.xrd_page.close_project()
        self.import_action.setText("&Import images…")
        self.stack.setCurrentWidget(self.tabs)
        self.tabs.setCurrentWidget(self.label_page)
        self._set_project_actions_enabled(True)
        self._update_title()

    def _on_session_project_closed(self) -> None:
        if self.xrd_page.project is None:
            self._hold(None)
        self.start_page.refresh()
        self.stack.setCurrentWidget(self.start_page)
        self._set_project_actions_enabled(False)
        self._update_title()

    def _update_title(self) -> None:
        project = self.session.project or self.xrd_page.project
        self.setWindowTitle(f"{project.name} — LabelTune" if project is not None else "LabelTune")

    # -- drag and drop ------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept folders and files dropped from a file manager."""
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Dropped folders or files become a new project, or are added to the open one: only they."""
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths and is_xrd_project(paths[0]):
            event.acceptProposedAction()
            self.open_project(paths[0])
            return
        if paths and self.xrd_page.project is not None:  # pattern files (or folders) for the XRD project
            event.acceptProposedAction()
            self.xrd_page.import_patterns(paths)
            return
        if not paths:
            return
        event.acceptProposedAction()
        into = self.session.project is not None
        if len(paths) == 1 and (paths[0].is_dir() or paths[0].suffix.lower() == ".csv"):
            self.import_folder(paths[0], into_project=into)  # a class folder, a CSV or a project
        else:
            self.import_folder(paths, into_project=into)  # what was dropped, and only that

    # -- window state -------------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        qsettings = QSettings("LabelTune", "LabelTune")
        geometry = qsettings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop background work, close the project and remember the window geometry."""
        self.train_panel.shutdown()
        self.results_panel.shutdown()
        self.label_page.shutdown()
        self.xrd_page.shutdown()
        QSettings("LabelTune", "LabelTune").setValue("window/geometry", self.saveGeometry())
        self.session.close()
        self._hold(None)
        self.settings.save()
        super().closeEvent(event)


__all__ = ["MainWindow", "Qt"]
