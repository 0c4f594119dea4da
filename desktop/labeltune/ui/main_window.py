"""The main window: composes the start page, the project pages, menus and actions. No logic of its own.

It holds the open project only through the session (:class:`~labeltune.core.domain.LabelProject`) and shows
it on the page of its domain (:class:`~labeltune.ui.project_page.ProjectPage`): it never asks which kind
of project is open (docs/adr/0024).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QStackedWidget, QWidget

from labeltune.core.domain import LabelProject
from labeltune.core.project_lock import ProjectLock, other_holder
from labeltune.core.settings import Settings
from labeltune.core.untrusted import ForeignRowsError
from labeltune.core.xrd.xrd_project import is_xrd_project
from labeltune.ui.about import show_about
from labeltune.ui.demo_opener import DemoOpener
from labeltune.ui.errors import show_error
from labeltune.ui.image_page import ImagePage, import_source
from labeltune.ui.import_dialog import ImportDialog
from labeltune.ui.label_transfer import LabelTransfer
from labeltune.ui.project_page import ProjectPage
from labeltune.ui.session import ProjectSession
from labeltune.ui.start_page import StartPage, project_title
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
        self.tabs = ImagePage(self.session)  # Label / Train / Results
        self.label_page = self.tabs.label_page
        self.train_panel = self.tabs.train_panel
        self.results_panel = self.tabs.results_panel
        self.xrd_page = XrdPage(self.session)
        self.pages: dict[str, ProjectPage] = {"image": self.tabs, "xrd": self.xrd_page}  # by domain
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
        self._update_title()
        self._restore_geometry()

    def _page(self) -> ProjectPage | None:
        """The page showing the open project (``None``: none is open)."""
        project = self.session.current_project
        return None if project is None else self.pages[project.domain]

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
        self.label_transfer = LabelTransfer(self.session, self)  # File ▸ Export/Import labels (issue 12)
        self.export_labels_action = self._action(
            "&Export labels…", self.label_transfer.export_labels, tip="Write the labels to a CSV file"
        )
        self.import_labels_action = self._action(
            "Import &labels…", self.label_transfer.import_labels, tip="Read labels from a CSV file"
        )
        file_menu.addActions([self.export_labels_action, self.import_labels_action])
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
        self.export_labels_action.setEnabled(enabled)
        self.import_labels_action.setEnabled(enabled)

    # -- project life cycle -------------------------------------------------------------------------
    def new_project(self) -> None:
        """Pick a folder of images and create a project from it (with an import summary first)."""
        folder = QFileDialog.getExistingDirectory(self, "Folder of images (sub-folders are classes)")
        if folder:
            self.import_folder(Path(folder))

    def import_folder(self, folder: Path | list[Path]) -> None:
        """Show the import summary for ``folder`` (or dropped files); on OK create the project and open it."""
        dialog = ImportDialog(folder, None, self, self.settings)
        if dialog.exec() and dialog.project is not None:
            self.session.adopt(dialog.project)

    def import_into_project(self) -> None:
        """Add files to the open project: its page asks for them (images, or XRD pattern files)."""
        page = self._page()
        if page is not None:
            page.choose_import()

    def new_xrd_project(self) -> None:
        """Ask for a folder, a phase library and optionally a model; create the XRD project and open it."""
        dialog = XrdNewProjectDialog(self, self.settings)
        if dialog.exec() and dialog.project is not None:
            self.session.adopt(dialog.project)

    def undo(self) -> None:
        """Undo the last label change of the open project."""
        page = self._page()
        if page is not None:
            page.undo()

    def redo(self) -> None:
        """Redo the last undone label change of the open project."""
        page = self._page()
        if page is not None:
            page.redo()

    def close_project(self) -> None:
        """Close the open project, of whichever kind."""
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
            self.session.open(Path(folder))
        except ForeignRowsError as error:  # a project from elsewhere naming files outside it (ADR 0043)
            if self._trust(error):
                try:
                    self.session.open(Path(folder))
                except Exception as again:  # the trust could not be recorded, or another problem
                    show_error(self, "Cannot open project", str(again))
        except Exception as error:  # a damaged or foreign folder must not take the app down
            show_error(self, "Cannot open project", str(error))

    def _trust(self, error: ForeignRowsError) -> bool:
        """Ask whether the project may read its files outside its folder; remember the answer Yes."""
        from labeltune.core.untrusted import remember_roots

        shown = "\n".join(f"   {name}" for name in error.folders[:8])
        more = f"\n   … and {len(error.folders) - 8} more folders" if len(error.folders) > 8 else ""
        answer = QMessageBox.question(
            self,
            "Read files outside the project?",
            f"“{error.project_folder.name}” names {error.count} image file{'s' if error.count != 1 else ''} "
            f"outside its folder, in:\n\n{shown}{more}\n\nLabelTune reads such files only from folders "
            "you imported or trusted on this computer, so that a project someone sends cannot make it "
            "read your other files.\n\nTrust these folders and open the project? Yes only if you know "
            "where it comes from; Cancel opens nothing and changes nothing.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        remember_roots(error.folders)
        return True

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

    def _on_session_project_opened(self, project: LabelProject) -> None:
        self._hold(project.folder)
        self.settings.add_recent(project.folder)
        try:
            self.settings.save()
        except OSError as error:  # the project opens all the same; only the recent list is not kept
            show_error(self, "Cannot save settings", str(error))
        page = self.pages[project.domain]
        self.import_action.setText(page.import_text)
        self.stack.setCurrentWidget(cast(QWidget, page))  # every page is a widget of the stack
        self._set_project_actions_enabled(True)
        self._update_title()

    def _on_session_project_closed(self) -> None:
        self._hold(None)
        self.start_page.refresh()
        self.stack.setCurrentWidget(self.start_page)
        self._set_project_actions_enabled(False)
        self._update_title()

    def _update_title(self) -> None:
        project = self.session.current_project
        self.setWindowTitle(f"{project.name} — LabelTune" if project is not None else "LabelTune")

    # -- drag and drop ------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept folders and files dropped from a file manager."""
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Dropped folders or files become a new project, or are added to the open one: only they."""
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        page = self._page()
        # an XRD project's folder opens; an image project's reaches the import summary, which offers it
        if is_xrd_project(paths[0]):
            self.open_project(paths[0])
        elif page is not None:
            page.import_files(paths)
        else:
            self.import_folder(import_source(paths))

    # -- window state -------------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        qsettings = QSettings("LabelTune", "LabelTune")
        geometry = qsettings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop background work, close the project and remember the window geometry."""
        for page in self.pages.values():
            page.shutdown()
        self.label_transfer.shutdown()
        QSettings("LabelTune", "LabelTune").setValue("window/geometry", self.saveGeometry())
        self.session.close()
        self._hold(None)
        try:
            self.settings.save()
        except OSError as error:  # closing goes on: nothing is left to show a message in
            log.warning("%s", error)
        super().closeEvent(event)


__all__ = ["MainWindow", "Qt"]
