"""File ▸ New XRD project…: a project folder, a phase library, optionally a model, and the wavelength."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.progress import Progress
from labeltune.core.project import new_project_problem
from labeltune.core.settings import Settings, project_folder_name
from labeltune.core.xrd.demo import shipped_model
from labeltune.core.xrd.xrd_project import CU_KA1, XrdProject, xrd_run_problem
from labeltune.ui.path_row import path_row
from labeltune.ui.xrd_project_bar import WARNING_COLOUR, WAVELENGTH_HELP
from labeltune.ui.xrd_references import ReferencePatternsPanel, build_project_library
from labeltune.workers.tasks import FunctionWorker, TaskController


class XrdNewProjectDialog(QDialog):
    """Creates an :class:`XrdProject`; ``project`` holds it after the dialog is accepted."""

    def __init__(self, parent: QWidget | None = None, settings: Settings | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New XRD project")
        self.setObjectName("xrdNewProjectDialog")
        self.resize(620, 0)
        self.project: XrdProject | None = None
        self.settings = settings if settings is not None else Settings.load()
        model = shipped_model()
        self.name_edit = QLineEdit("XRD project")
        self.name_edit.setToolTip("The project's name; its folder is named after it")
        self.save_in_edit = QLineEdit(str(self.settings.new_projects_folder()))
        self.save_in_edit.setToolTip(
            "A folder named after the project is made here; pattern files are copied into it"
        )
        self.where_label = QLabel()
        self.where_label.setObjectName("xrdNewProjectWhere")
        self.where_label.setWordWrap(True)
        self.library_edit = QLineEdit(str(model / "library") if model is not None else "")
        self.library_edit.setPlaceholderText(
            "a library folder (library.json), or a folder of CIF files to build one from"
        )
        self._default_model = str(model) if model is not None else ""
        self.model_edit = QLineEdit(self._default_model)
        self.model_edit.setPlaceholderText(
            "optional: an XRD model run folder; train one later if you have none"
        )
        self.references_panel = ReferencePatternsPanel()  # measured references (ui/xrd_references.py)
        self.references_panel.changed.connect(self._on_references_panel_changed)
        self.wavelength_spin = QDoubleSpinBox()
        self.wavelength_spin.setRange(0.1, 5.0)
        self.wavelength_spin.setDecimals(5)
        self.wavelength_spin.setValue(CU_KA1)
        self.wavelength_spin.setSuffix(" Å")
        self.wavelength_spin.setToolTip(WAVELENGTH_HELP)
        buttons = {}
        for key, title in (
            ("folder", "Save the project in"),
            ("library", "Phase library"),
            ("model", "Model"),
        ):
            button = QPushButton("Browse…")
            button.clicked.connect(lambda _checked=False, k=key, t=title: self._browse(k, t))
            buttons[key] = button
        self.error_label = QLabel()
        self.error_label.setObjectName("xrdNewProjectError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {WARNING_COLOUR};")
        form = QFormLayout()
        rows: list[tuple[str, QWidget, QWidget | QHBoxLayout]] = [
            ("Project &name:", self.name_edit, self.name_edit),
            ("Save &in:", self.save_in_edit, path_row(self.save_in_edit, buttons["folder"])),
            ("", self.where_label, self.where_label),
            ("Phase &library:", self.library_edit, path_row(self.library_edit, buttons["library"])),
            ("Measured references\n(optional):", self.references_panel.list, self.references_panel),
            ("&Model (optional):", self.model_edit, path_row(self.model_edit, buttons["model"])),
            ("X-ray &wavelength:", self.wavelength_spin, self.wavelength_spin),
        ]
        for text, buddy, field in rows:  # a QLabel with a buddy: the & becomes a mnemonic, not a character
            label = QLabel(text)
            label.setBuddy(buddy)
            form.addRow(label, field)
        note = QLabel(
            "The wavelength is used only for pattern files that do not state their own; you can change it "
            "later. Phases are ticked from the library; the model identifies them."
        )
        note.setWordWrap(True)
        self.button_box = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.button_box.accepted.connect(self.accept)
        self.button_box.rejected.connect(self.reject)
        # a folder of CIFs is built into a library in a worker (about 15 ms per CIF; hundreds add up)
        self.build_controller = TaskController(self)
        self._building: tuple[Path, int, list[Path]] | None = None  # library folder, CIFs, references
        self._made_folder = False  # the project folder was made by the build (removed if it fails)
        self.build_controller.progressed.connect(self._on_build_controller_progressed)
        self.build_controller.finished.connect(self._on_build_controller_finished)
        self.build_controller.failed.connect(self._on_build_controller_failed)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error_label)
        layout.addWidget(self.button_box)
        self.name_edit.textChanged.connect(self._update_where)
        self.save_in_edit.textChanged.connect(self._update_where)
        self._update_where()

    def project_folder(self) -> Path | None:
        """``<Save in>/<project name>``, or ``None`` while either is empty."""
        name, save_in = self.name_edit.text().strip(), self.save_in_edit.text().strip()
        if not name or not save_in:
            return None
        return Path(save_in).expanduser() / project_folder_name(name)

    def _update_where(self) -> None:
        folder = self.project_folder()
        ok_button = self.button_box.button(QDialogButtonBox.StandardButton.Ok)
        problem = (
            new_project_problem(folder) if folder is not None else "Give the project a name and a place."
        )
        if problem is None:
            self.where_label.setText(f"The project is created in {folder}.")
        elif folder is not None:
            self.where_label.setText(
                f"⚠ {folder} already exists and holds other files: choose another name or place."
            )
        else:
            self.where_label.setText(problem)
        self.where_label.setStyleSheet("" if problem is None else f"color: {WARNING_COLOUR};")
        ok_button.setEnabled(problem is None)

    def _to_build(self, source: Path) -> tuple[list[Path], list[Path]]:
        """(CIFs, reference patterns) to build the library from: a folder's, and the references added.

        Nothing when ``source`` is a library and no reference was added: the project uses it as it is.
        """
        cifs: list[Path] = []
        references: list[Path] = []
        if source.is_dir() and not (source / "library.json").is_file():
            from labeltune.core.xrd.reference_build import library_inputs

            cifs, references = library_inputs([source])  # patterns with a sidecar: references (ADR 0047)
        return cifs, references + [p for p in self.references_panel.paths() if p not in references]

    def _build_library(self, source: Path, cifs: list[Path], references: list[Path], target: Path) -> None:
        """Build the library into ``target`` in a worker; the project is made when it finishes.

        The same core code as ``labeltune xrd library`` (:func:`build_project_library`).
        """
        wavelength = self.wavelength_spin.value()

        def build(progress: Callable[[Progress], None], _stop: threading.Event) -> Any:
            return build_project_library(source, cifs, references, target, wavelength, progress)

        self.error_label.setText(f"Computing the peak lists of {len(cifs)} CIF files…")
        if references:
            self.error_label.setText(
                f"Computing the peak lists of {len(cifs)} CIF files and {len(references)} reference patterns…"
            )
        self.button_box.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self._building = (target, len(cifs), references)
        self._made_folder = not target.parent.exists()
        self.build_controller.start(FunctionWorker(build))

    def _on_build_controller_progressed(self, progress: Progress) -> None:
        if progress.total and progress.stage.startswith("Reading reference"):
            self.error_label.setText(f"Reading {progress.total} reference patterns…")
        elif progress.total:
            self.error_label.setText(
                f"Computing the peak lists of {progress.total} CIF files… {progress.done} done"
            )

    def _on_build_controller_finished(self, library: Any) -> None:
        if self._building is None:
            return  # cancelled meanwhile (reject removed what was built)
        target, count, references = self._building
        self._building = None
        failed = [reason for path, reason in library.skipped if Path(path) in references]
        if failed:  # a reference the user chose cannot be used: say why, build nothing, stay open
            self._discard_built(target)
            self._update_where()
            self.error_label.setText("\n".join(f"⚠ {reason}" for reason in failed))
            return
        if not library.phases:
            reasons = "; ".join(reason for _path, reason in library.skipped[:3])
            self._discard_built(target)
            self._update_where()
            self.error_label.setText(f"none of the {count} CIF files could be used: {reasons}")
            return
        self._create(target.parent, target, built=True)

    def _on_build_controller_failed(self, message: str, _details: str) -> None:
        if self._building is None:
            return
        target = self._building[0]
        self._building = None
        self._discard_built(target)
        self._update_where()
        self.error_label.setText(message)

    def reject(self) -> None:
        """Close without a project; a library being built for it is waited for and removed."""
        if self.build_controller.is_running():
            self.build_controller.shutdown()
            target = self._building[0] if self._building is not None else Path()
            self._building = None
            self._discard_built(target)
        super().reject()

    def _discard_built(self, target: Path) -> None:
        """Remove a library built for a project that was not made, so OK can be pressed again."""
        if target.name:
            shutil.rmtree(target, ignore_errors=True)
            if self._made_folder:
                with contextlib.suppress(OSError):
                    target.parent.rmdir()

    @staticmethod
    def _model_problem(model: Path, library_dir: Path) -> str | None:
        """Why the model in ``model`` cannot identify the phases of ``library_dir`` (ADR 0048)."""
        from labeltune.core.xrd.library import LibraryError, load_library
        from labeltune.core.xrd.library_match import model_library_problem

        try:
            model_library, library = load_library(model / "library"), load_library(library_dir)
        except LibraryError:
            return None  # XrdProject.create says what is wrong with the library
        return model_library_problem(model_library, library, f"The model {model.name}")

    def _on_references_panel_changed(self) -> None:
        problems = self.references_panel.problems()
        self.error_label.setText("\n".join(f"⚠ {problem}" for problem in problems))

    def _browse(self, key: str, title: str) -> None:
        edit = {"folder": self.save_in_edit, "library": self.library_edit, "model": self.model_edit}[key]
        folder = QFileDialog.getExistingDirectory(self, title, edit.text())
        if folder:
            edit.setText(folder)

    def accept(self) -> None:
        """Create the project; on a problem, say what is wrong and stay open."""
        if self.build_controller.is_running():
            return  # OK again while the library is computed: it goes on by itself
        folder, library = self.project_folder(), self.library_edit.text().strip()
        model = self.model_edit.text().strip()
        if folder is None or not library:
            self.error_label.setText("Give the project a name, a place to save it in and a phase library.")
            return
        if (problem := new_project_problem(folder)) is not None:
            self.error_label.setText(problem)
            return
        if model and (problem := xrd_run_problem(model)) is not None:
            self.error_label.setText(problem)
            return
        if problems := self.references_panel.problems():
            self.error_label.setText("\n".join(f"⚠ {problem}" for problem in problems))
            return
        cifs, references = self._to_build(Path(library).expanduser())
        if cifs or references:
            self._build_library(Path(library).expanduser(), cifs, references, folder / "library")
            return
        self._create(folder, Path(library), built=False)

    def _create(self, folder: Path, library_dir: Path, built: bool) -> None:
        """Make the project ``folder`` on ``library_dir`` (``built``: built from CIFs for it) and close."""
        model = self.model_edit.text().strip()
        try:
            if model and (problem := self._model_problem(Path(model), library_dir)) is not None:
                if built and model == self._default_model:
                    model = ""  # the demo's model, prefilled, on the lab's own phases: no model yet
                else:
                    if built:  # leave the folder as it was
                        self._discard_built(library_dir)
                        self._update_where()
                    self.error_label.setText(problem)
                    return
            self.project = XrdProject.create(
                folder,
                self.name_edit.text().strip(),
                library_dir,
                Path(model) if model else None,
                self.wavelength_spin.value(),
                wavelength_confirmed=True,  # a person chose it here
            )
        except Exception as error:  # a bad folder or library: say so, let the user fix it
            if built:
                self._discard_built(library_dir)
                self._update_where()
            self.error_label.setText(str(error))
            return
        self.settings.projects_folder = str(folder.parent)
        with contextlib.suppress(OSError):
            self.settings.save()
        super().accept()
