"""Measured reference patterns in the New XRD project dialog (ADR 0047, ADR 0057).

A lab adds pattern files of its disordered phases (clays, glass, poorly ordered hydrates), each with a
sidecar of the same stem that gives name, formula and an RIR or a weighed mixture with corundum. The
sidecars are read when the files are added (their problems show at once); the patterns themselves are read
and, for a mixture, fitted in the dialog's worker by :func:`build_project_library`, the same core code as
``labeltune xrd library``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.reference_build import find_sidecar, read_sidecar

PATH_ROLE = Qt.ItemDataRole.UserRole
PROBLEM_ROLE = Qt.ItemDataRole.UserRole + 1


def sidecar_summary(pattern: Path) -> tuple[str, str | None]:
    """(What the sidecar of ``pattern`` says, its problem or ``None``): reads only the small sidecar."""
    sidecar_path = find_sidecar(pattern)
    if sidecar_path is None:
        return "", (
            f"{pattern.name}: a reference pattern needs a sidecar {pattern.stem}.json or .toml "
            "(name, formula and rir or a mixture with corundum)"
        )
    try:
        sidecar = read_sidecar(sidecar_path)
    except UnusableInputError as error:
        return "", str(error)
    if sidecar.rir is not None:
        source = f"RIR {sidecar.rir:g}"
    else:
        mixture = sidecar.mixture_pattern.name if sidecar.mixture_pattern is not None else "?"
        source = f"RIR from {mixture} ({sidecar.corundum_wt_percent:g} % corundum)"
    return f"{sidecar.name} ({sidecar.formula}), {source}", None


class ReferencePatternsPanel(QWidget):
    """The reference pattern files chosen for the library being built, each with its sidecar's summary."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setObjectName("referencePatterns")
        self.list.setToolTip(
            "Measured patterns of phases CIFs cannot describe (clays, poorly ordered phases), added to the "
            "library beside the CIF phases. Each needs a sidecar NAME.json or .toml next to it: name, "
            "formula and rir (against corundum) or a mixture with corundum at a known weight %"
        )
        self.list.setWordWrap(True)  # a sidecar's problem is read whole, not cut at the dialog's edge
        self.list.setFixedHeight(5 * self.list.fontMetrics().lineSpacing() + 12)
        self.add_button = QPushButton("Add reference &patterns…")
        self.remove_button = QPushButton("Remove")
        self.add_button.clicked.connect(self._on_add_button_clicked)
        self.remove_button.clicked.connect(self._on_remove_button_clicked)
        self.list.itemSelectionChanged.connect(self._update_buttons)
        buttons = QVBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self._update_buttons()

    def add_files(self, paths: list[Path]) -> None:
        """List ``paths`` (once each) with what their sidecars say, or why they cannot be used."""
        known = set(self.paths())
        for path in (Path(p).expanduser() for p in paths):
            if path in known:
                continue
            known.add(path)
            summary, problem = sidecar_summary(path)
            item = QListWidgetItem(f"⚠ {problem}" if problem else f"{path.name}: {summary}")
            item.setData(PATH_ROLE, str(path))
            item.setData(PROBLEM_ROLE, problem or "")
            item.setToolTip(f"{item.text()}\n{path}")
            self.list.addItem(item)
        self._update_buttons()
        self.changed.emit()

    def paths(self) -> list[Path]:
        """The reference pattern files listed."""
        return [Path(str(self.list.item(i).data(PATH_ROLE))) for i in range(self.list.count())]

    def problems(self) -> list[str]:
        """Why listed files cannot be used (their sidecars are missing or wrong)."""
        items = (self.list.item(i) for i in range(self.list.count()))
        return [str(item.data(PROBLEM_ROLE)) for item in items if item.data(PROBLEM_ROLE)]

    def _on_add_button_clicked(self) -> None:
        files, _filter = QFileDialog.getOpenFileNames(self, "Reference patterns (each with its sidecar)")
        if files:
            self.add_files([Path(f) for f in files])

    def _on_remove_button_clicked(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self._update_buttons()
        self.changed.emit()

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(bool(self.list.selectedItems()))


def build_project_library(
    source: Path,
    cifs: list[Path],
    references: list[Path],
    target: Path,
    wavelength: float,
    progress: Callable[[Progress], None],
) -> Library:
    """The project's library in ``target``: ``cifs`` (or the library ``source``) plus measured ``references``.

    As ``labeltune xrd library`` makes it; files that cannot be used go to ``skipped`` with the reason.
    """
    from labeltune.core.xrd.library import build_library, load_library, save_library
    from labeltune.core.xrd.reference_build import add_measured_references

    def report(done: int, total: int, name: str) -> None:
        progress(Progress("Computing peak lists", done, total, name))

    if cifs or not (source / "library.json").is_file():
        # phases named from the CIFs' mineral names and formulas, not COD numbers (ADR 0048)
        library = build_library(cifs, target, wavelength, progress=report, naming="cif")
    else:  # an existing library: the project's copy gains the references, the original stays as it is
        library = load_library(source)
    if references:
        progress(Progress("Reading reference patterns", 0, len(references), references[0].name))
        add_measured_references(library, references)
        save_library(library, target)
    return library


__all__ = ["ReferencePatternsPanel", "build_project_library", "sidecar_summary"]
