"""An XRD project: a folder of measured powder patterns and their multi-label phase labels.

Layout (every file is plain text, so a project can be read, diffed and trained on without the app)::

    xrd_project.json   {"version": 1, "kind": "xrd", "name", "library", "model", "models" (every model
                        used), "wavelength", "wavelength_confirmed"}; paths inside the project are
                        stored relative to it
    patterns/          imported pattern files, copied here (names made unique)
    labels.csv         path,phases,fractions: path relative to the project, phases joined by ";",
                       weight fractions (0..1) ";"-joined in the same order, or empty

    label_history.jsonl  every label change, appended (one JSON object a line: time, path, phases,
                       fractions, source, note), written when the first change is made

``labels.csv`` is the CLI's labeled-dataset format, so ``labeltune train PROJECT --domain xrd`` trains on
a project folder as it is. Every label change rewrites it at once (temporary file, fsync, ``os.replace``),
so a crash a moment later loses nothing, and then appends a line to the history (fsynced), so a project
remembers who changed which label when, as an image project does (docs/adr/0021). Only labeled patterns
have a row in ``labels.csv``.

A label's phases are library phase names, or plain formulas (``TiO2``) where the user knows only the
composition; both are kept exactly as given.

:class:`XrdProject` is its folder's life cycle, paths, settings and patterns; setting labels, their history
and undo are core/xrd/xrd_project_labels.py's mixin, the saved identifications (``predictions.json``)
core/xrd/xrd_project_predictions.py's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from labeltune.core.atomic import remove_stale_temporaries, write_text_atomic
from labeltune.core.progress import ProgressCallback
from labeltune.core.run_schema import run_schema_problem
from labeltune.core.undo import UndoStack
from labeltune.core.untrusted import inside
from labeltune.core.xrd.pattern_import import import_pattern_files, pattern_files
from labeltune.core.xrd.xrd_labels import (
    HISTORY_FILE,
    LABELS_FILE,
    LabelHistory,
    XrdLabel,
    XrdProjectError,
    labels_csv_text,
    read_labels,
)
from labeltune.core.xrd.xrd_project_labels import XrdLabelBatch, XrdLabelChange, XrdLabelsMixin
from labeltune.core.xrd.xrd_project_predictions import PREDICTIONS_FILE, XrdPredictionsMixin

if TYPE_CHECKING:
    from labeltune.core.xrd.library import Library
    from labeltune.core.xrd.pattern import Pattern

__all__ = [
    "CU_KA1",
    "HISTORY_FILE",
    "LABELS_FILE",
    "PATTERNS_DIR",
    "PROJECT_FILE",
    "XrdLabel",
    "XrdLabelChange",
    "XrdProject",
    "XrdProjectError",
    "is_xrd_project",
    "xrd_run_problem",
]

PROJECT_FILE = "xrd_project.json"
PATTERNS_DIR = "patterns"
RUNS_DIR = "runs"
VERSION = 1
CU_KA1 = 1.5406
"""Cu Kα1 wavelength (Å): the default for files that do not state theirs."""
UNDO_LIMIT = 200


def is_xrd_project(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds an XRD project (an ``xrd_project.json`` of kind ``xrd``)."""
    try:
        data = json.loads((Path(folder) / PROJECT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("kind") == "xrd"


def xrd_run_problem(run_dir: str | os.PathLike[str]) -> str | None:
    """Why ``run_dir`` is not a usable XRD model run folder, or ``None`` when it is one (no torch needed)."""
    folder = Path(run_dir)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{folder} is not a model run folder (no config.json)"
    except (OSError, ValueError) as exc:
        return f"{folder}/config.json cannot be read ({exc})"
    if not isinstance(config, dict) or config.get("domain") != "xrd":
        return f"{folder} holds an image model, not an XRD model"
    newer = run_schema_problem(folder, config)
    if newer is not None:
        return newer
    if not (folder / "model.safetensors").is_file():
        return f"{folder} has no trained weights (model.safetensors)"
    return None


class XrdProject(XrdLabelsMixin, XrdPredictionsMixin):
    """An open XRD project folder (see the module docstring for the layout)."""

    def __init__(self, folder: Path, meta: dict[str, Any], labels: dict[str, XrdLabel]) -> None:
        self.folder = folder
        self._meta = meta
        self._labels = labels
        self._undo_stack: UndoStack[XrdLabelChange | XrdLabelBatch] = UndoStack(UNDO_LIMIT)
        self._history = LabelHistory(folder / HISTORY_FILE, folder / LABELS_FILE)
        self._library: Library | None = None

    # -- life cycle ---------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: str | os.PathLike[str],
        name: str,
        library_dir: str | os.PathLike[str],
        model_dir: str | os.PathLike[str] | None = None,
        wavelength: float = CU_KA1,
        wavelength_confirmed: bool = False,
        prepared: Iterable[str] = (),
    ) -> XrdProject:
        """Make ``folder`` (new or empty) an XRD project using the library ``library_dir``.

        ``prepared`` names entries already written into ``folder`` for this project (a demo's patterns
        and references); a library built inside it counts as prepared too.

        Raises :class:`XrdProjectError` when the folder already holds a project or other files (only a
        library built into it for this project may be there), the library cannot be read or the
        wavelength is not plausible.
        """
        from labeltune.core.project import new_project_problem
        from labeltune.core.xrd.library import LibraryError, load_library
        from labeltune.core.xrd.pattern import valid_wavelength

        root = Path(os.path.abspath(folder))
        if (root / PROJECT_FILE).exists() or (root / "project.json").exists():
            raise XrdProjectError(f"{root} already holds a LabelTune project; open it instead")
        if root.exists() and not root.is_dir():
            raise XrdProjectError(f"{root} exists and is not a folder")
        library_path = Path(os.path.abspath(library_dir))
        built_inside = [library_path.name] if library_path.parent == root else []  # built for this project
        problem = new_project_problem(root, allowed=[*built_inside, *prepared])
        if problem is not None:
            raise XrdProjectError(problem)
        checked = valid_wavelength(wavelength)
        if checked is None:
            raise XrdProjectError(f"not a usable wavelength: {wavelength!r} Å (expected 0.01-10)")
        try:
            library = load_library(Path(library_dir))
        except LibraryError as exc:
            raise XrdProjectError(str(exc)) from exc
        try:
            (root / PATTERNS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise XrdProjectError(f"cannot create {root}: {exc}") from exc
        meta: dict[str, Any] = {
            "version": VERSION,
            "kind": "xrd",
            "name": str(name).strip() or root.name,
            "library": None,
            "model": None,
            "wavelength": checked,
            "wavelength_confirmed": bool(wavelength_confirmed),
        }
        project = cls(root, meta, {})
        meta["library"] = project._stored(Path(library_dir))
        meta["model"] = None if model_dir is None else project._stored(Path(model_dir))
        project._library = library
        project._save_meta()
        if not (root / LABELS_FILE).exists():
            project._save_labels()
        return project

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> XrdProject:
        """Open an existing XRD project (raises :class:`XrdProjectError` when it is not one or is damaged)."""
        root = Path(os.path.abspath(folder))
        path = root / PROJECT_FILE
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise XrdProjectError(f"{root} is not an XRD project (no {PROJECT_FILE})") from None
        except (OSError, ValueError) as exc:
            raise XrdProjectError(f"{path}: cannot be read ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("kind") != "xrd":
            raise XrdProjectError(f"{path}: not an XRD project file")
        if meta.get("version") != VERSION:
            raise XrdProjectError(f"{path}: unsupported version {meta.get('version')!r} (expected {VERSION})")
        from labeltune.core.xrd.pattern import valid_wavelength

        meta["wavelength"] = valid_wavelength(meta.get("wavelength")) or CU_KA1
        meta["wavelength_confirmed"] = bool(meta.get("wavelength_confirmed", False))
        meta.setdefault("name", root.name)
        meta.setdefault("model", None)
        if not isinstance(meta.get("library"), str):
            raise XrdProjectError(f"{path}: no library folder given")
        (root / PATTERNS_DIR).mkdir(exist_ok=True)
        for name in (PROJECT_FILE, LABELS_FILE, PREDICTIONS_FILE):  # what a kill mid-write left (ADR 40)
            remove_stale_temporaries(root / name)
        return cls(root, meta, read_labels(root / LABELS_FILE))

    # -- paths --------------------------------------------------------------------------------------
    def _stored(self, path: Path) -> str:
        """``path`` as written to the project file: relative (POSIX) inside the project, else absolute."""
        absolute = Path(os.path.abspath(path))
        try:
            return absolute.relative_to(self.folder).as_posix()
        except ValueError:
            return str(absolute)

    def _resolve(self, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else self.folder.joinpath(*PurePosixPath(stored).parts)

    def key(self, path: str | os.PathLike[str]) -> str:
        """The project-relative POSIX path used in ``labels.csv`` for a pattern file."""
        candidate = Path(path)
        if not candidate.is_absolute():
            return PurePosixPath(*candidate.parts).as_posix()
        absolute = Path(os.path.abspath(candidate))
        try:
            return absolute.relative_to(self.folder).as_posix()
        except ValueError:
            return str(absolute)

    def path_of(self, key: str) -> Path:
        """The file behind a ``labels.csv`` path."""
        return self._resolve(key)

    @property
    def patterns_dir(self) -> Path:
        """Where imported patterns are copied."""
        return self.folder / PATTERNS_DIR

    @property
    def labels_file(self) -> Path:
        """The ``labels.csv`` file."""
        return self.folder / LABELS_FILE

    @property
    def history_file(self) -> Path:
        """The label history (``label_history.jsonl``; missing until the first label change)."""
        return self.folder / HISTORY_FILE

    @property
    def runs_dir(self) -> Path:
        """Where fine-tuning runs made from this project go."""
        return self.folder / RUNS_DIR

    def new_run_dir(self) -> Path:
        """A fresh ``runs/xrd-<timestamp>-<id>`` path (not created)."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return self.runs_dir / f"xrd-{stamp}-{uuid.uuid4().hex[:6]}"

    @property
    def domain(self) -> str:
        """Always ``"xrd"`` (see :class:`labeltune.core.domain.LabelProject`)."""
        return "xrd"

    def close(self) -> None:
        """Nothing to release: every label is written to ``labels.csv`` as it is set."""

    # -- settings -----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The project's display name."""
        return str(self._meta["name"])

    @property
    def library_dir(self) -> Path:
        """The reference library folder (phase names and stick patterns)."""
        return self._resolve(str(self._meta["library"]))

    @property
    def model_dir(self) -> Path | None:
        """The XRD model run folder used to identify phases, or ``None``."""
        model = self._meta.get("model")
        return None if not model else self._resolve(str(model))

    @property
    def wavelength(self) -> float:
        """The X-ray wavelength (Å) used for files that do not state theirs."""
        return float(self._meta["wavelength"])

    @property
    def wavelength_confirmed(self) -> bool:
        """Whether a person confirmed :attr:`wavelength` (the default is only assumed until then)."""
        return bool(self._meta["wavelength_confirmed"])

    def set_wavelength(self, wavelength: float, confirmed: bool = True) -> None:
        """Set (and by default confirm) the project wavelength; written at once."""
        from labeltune.core.xrd.pattern import valid_wavelength

        checked = valid_wavelength(wavelength)
        if checked is None:
            raise XrdProjectError(f"not a usable wavelength: {wavelength!r} Å (expected 0.01-10)")
        self._meta["wavelength"] = checked
        self._meta["wavelength_confirmed"] = bool(confirmed)
        self._save_meta()

    def set_model(self, run_dir: str | os.PathLike[str] | None) -> None:
        """Use the model in ``run_dir`` (or none); written at once.

        The project remembers every model it used (:meth:`used_models`), so one added from another folder
        stays in its list of models.
        """
        stored = None if run_dir is None else self._stored(Path(run_dir))
        self._meta["model"] = stored
        used = [str(m) for m in self._meta.get("models") or [] if isinstance(m, str)]
        if stored is not None and stored not in used:
            self._meta["models"] = [*used, stored]
        self._save_meta()

    def used_models(self) -> list[Path]:
        """Every model folder this project has used, oldest first (they may since have been deleted)."""
        return [self._resolve(m) for m in self._meta.get("models") or [] if isinstance(m, str)]

    def set_library(self, library_dir: str | os.PathLike[str]) -> None:
        """Use another reference library (checked first); written at once."""
        from labeltune.core.xrd.library import LibraryError, load_library

        try:
            library = load_library(Path(library_dir))
        except LibraryError as exc:
            raise XrdProjectError(str(exc)) from exc
        self._meta["library"] = self._stored(Path(library_dir))
        self._library = library
        self._save_meta()

    def library(self) -> Library:
        """The reference library (read once, then kept); raises :class:`XrdProjectError`."""
        if self._library is None:
            from labeltune.core.xrd.library import LibraryError, load_library

            try:
                self._library = load_library(self.library_dir)
            except LibraryError as exc:
                raise XrdProjectError(str(exc)) from exc
        return self._library

    def _save_meta(self) -> None:
        write_text_atomic(self.folder / PROJECT_FILE, json.dumps(self._meta, indent=1) + "\n")

    # -- patterns -----------------------------------------------------------------------------------
    def patterns(self) -> list[Path]:
        """The pattern files in ``patterns/``, sorted by name (case-insensitive).

        A symlink there that leads out of the project folder is left out (ADR 0043): a project that came
        by e-mail cannot make the app read the user's other files.
        """
        real = os.path.realpath(self.folder)
        found = pattern_files(self.patterns_dir)
        return [p for p in found if not p.is_symlink() or inside(os.path.realpath(p), real)]

    def read(self, path: str | os.PathLike[str]) -> Pattern:
        """Read a pattern; the project wavelength fills in for files that do not state theirs."""
        from labeltune.core.xrd.readers import read_pattern

        return read_pattern(self._resolve(self.key(path)), default_wavelength=self.wavelength)

    def import_patterns(
        self,
        paths: Iterable[str | os.PathLike[str]],
        progress: ProgressCallback | None = None,
        stop_event: threading.Event | None = None,
    ) -> tuple[list[Path], list[tuple[str, str]]]:
        """Check and copy pattern files (folders: their pattern files, recursively) into ``patterns/``.

        Returns (copied files, skipped (path, reason)): unreadable files, unsupported types and exact
        copies of a pattern already in the project are skipped with the reason; a name already taken
        gets a suffix (``a.xy`` → ``a_2.xy``). See core/xrd/pattern_import.py.
        """
        return import_pattern_files(paths, self.patterns_dir, self.wavelength, progress, stop_event)

    def _save_labels(self) -> None:
        write_text_atomic(self.labels_file, labels_csv_text(self._labels))
