"""An XRD project: a folder of measured powder patterns and their multi-label phase labels.

Layout (every file is plain text, so a project can be read, diffed and trained on without the app)::

    xrd_project.json   {"version": 1, "kind": "xrd", "name", "library", "model", "models" (every model
                        used), "wavelength", "wavelength_confirmed"}; paths inside the project are
                        stored relative to it
    patterns/          imported pattern files, copied here (names made unique)
    labels.csv         path,phases,fractions: path relative to the project, phases joined by ";",
                       weight fractions (0..1) ";"-joined in the same order, or empty

``labels.csv`` is the CLI's labeled-dataset format, so ``labeltune train PROJECT --domain xrd`` trains on
a project folder as it is. Every label change rewrites it at once (temporary file + ``os.replace``), so a
crash a moment later loses nothing. Only labeled patterns have a row.

A label's phases are library phase names, or plain formulas (``TiO2``) where the user knows only the
composition; both are kept exactly as given.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import shutil
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress
from labeltune.core.run_schema import run_schema_problem

if TYPE_CHECKING:
    from labeltune.core.xrd.library import Library
    from labeltune.core.xrd.pattern import Pattern

__all__ = [
    "CU_KA1",
    "LABELS_FILE",
    "PATTERNS_DIR",
    "PROJECT_FILE",
    "XrdLabel",
    "XrdProject",
    "XrdProjectError",
    "is_xrd_project",
    "xrd_run_problem",
]

PROJECT_FILE = "xrd_project.json"
LABELS_FILE = "labels.csv"
PATTERNS_DIR = "patterns"
PREDICTIONS_FILE = "predictions.json"
RUNS_DIR = "runs"
VERSION = 1
CU_KA1 = 1.5406
"""Cu Kα1 wavelength (Å): the default for files that do not state theirs."""
UNDO_LIMIT = 200
LABEL_HEADER = ("path", "phases", "fractions")


class XrdProjectError(UnusableInputError):
    """An XRD project folder cannot be created or read; the message says why."""


@dataclass(frozen=True)
class XrdLabel:
    """The phases a person says are present in one pattern, optionally with their weight fractions."""

    phases: tuple[str, ...] = ()
    fractions: tuple[float, ...] | None = None

    @property
    def is_labeled(self) -> bool:
        """Whether at least one phase is given."""
        return bool(self.phases)

    def summary(self) -> str:
        """``Mn2O3 + LiF`` or ``Mn2O3 60 % + LiF 40 %`` (empty when unlabeled)."""
        if self.fractions is None:
            return " + ".join(self.phases)
        return " + ".join(f"{p} {f * 100:.0f} %" for p, f in zip(self.phases, self.fractions, strict=True))


@dataclass(frozen=True)
class LabelChange:
    """One label change, for undo/redo: the pattern (project-relative POSIX path) and both labels."""

    key: str
    before: XrdLabel
    after: XrdLabel


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


def _check_label(phases: Iterable[str], fractions: Iterable[float] | None) -> XrdLabel:
    names: list[str] = []
    for phase in phases:
        name = str(phase).strip()
        if not name:
            continue
        if any(c in name for c in ';,\n\r"') or name != name.strip():
            raise XrdProjectError(f"phase name {name!r} may not contain ';', ',', quotes or line breaks")
        if name not in names:
            names.append(name)
    if fractions is None:
        return XrdLabel(tuple(names), None)
    values = tuple(float(f) for f in fractions)
    if len(values) != len(names):
        raise XrdProjectError(f"{len(values)} fractions for {len(names)} phases; give one per phase or none")
    if any(not math.isfinite(v) or v < 0 or v > 1 for v in values):
        raise XrdProjectError(f"weight fractions must lie between 0 and 1, got {list(values)}")
    return XrdLabel(tuple(names), values if names else None)


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a crash) sees the old file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _supported_extensions() -> tuple[str, ...]:
    from labeltune.core.xrd.readers import SUPPORTED_EXTENSIONS

    return SUPPORTED_EXTENSIONS


class XrdProject:
    """An open XRD project folder (see the module docstring for the layout)."""

    def __init__(self, folder: Path, meta: dict[str, Any], labels: dict[str, XrdLabel]) -> None:
        self.folder = folder
        self._meta = meta
        self._labels = labels
        self._undo: deque[LabelChange] = deque(maxlen=UNDO_LIMIT)
        self._redo: deque[LabelChange] = deque(maxlen=UNDO_LIMIT)
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
        return cls(root, meta, cls._read_labels(root / LABELS_FILE))

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

    def save_predictions(self, predictions: Iterable[Any]) -> None:
        """Keep the model's latest identifications (``XrdPrediction``s) in ``predictions.json``.

        Keyed by pattern and tagged with the model, so reopening the project shows them again.
        """
        path = self.folder / PREDICTIONS_FILE
        model = self.model_dir
        stored: dict[str, Any] = {"model": None if model is None else str(model), "patterns": {}}
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(old, dict) and old.get("model") == stored["model"]:
                stored["patterns"] = dict(old.get("patterns") or {})
        except (OSError, ValueError):
            pass
        for prediction in predictions:
            data = prediction.to_json()
            data["path"] = self.key(prediction.path)
            stored["patterns"][data["path"]] = data
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(stored, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def load_predictions(self) -> dict[str, Any]:
        """The saved identifications of the current model: pattern key -> ``XrdPrediction``.

        Empty when there are none, they belong to another model, or the file is damaged.
        """
        from labeltune.core.xrd.results import XrdPrediction

        try:
            stored = json.loads((self.folder / PREDICTIONS_FILE).read_text(encoding="utf-8"))
            model = self.model_dir
            if not isinstance(stored, dict) or stored.get("model") != (None if model is None else str(model)):
                return {}
            out = {}
            for key, data in (stored.get("patterns") or {}).items():
                prediction = XrdPrediction.from_json({**data, "path": str(self.folder / key)})
                out[str(key)] = prediction
            return out
        except (OSError, ValueError, KeyError, TypeError):
            return {}

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
        _write_atomic(self.folder / PROJECT_FILE, json.dumps(self._meta, indent=1) + "\n")

    # -- patterns -----------------------------------------------------------------------------------
    def patterns(self) -> list[Path]:
        """The pattern files in ``patterns/``, sorted by name (case-insensitive)."""
        extensions = _supported_extensions()
        if not self.patterns_dir.is_dir():
            return []
        files = [
            p
            for p in self.patterns_dir.iterdir()
            if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith(".")
        ]
        return sorted(files, key=lambda p: (p.name.casefold(), p.name))

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

        Returns (copied files, skipped (path, reason)). Unreadable files, unsupported types and exact
        copies of a pattern already in the project (whatever their name) are skipped with the reason;
        nothing is fatal. A name already taken gets a suffix: ``a.xy`` → ``a_2.xy``.
        """
        from labeltune.core.xrd.pattern import PatternReadError
        from labeltune.core.xrd.readers import read_pattern

        report = progress or no_progress
        extensions = _supported_extensions()
        files: list[Path] = []
        skipped: list[tuple[str, str]] = []
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
                if not found:
                    skipped.append((str(path), "the folder holds no pattern files"))
                files.extend(found)
            elif path.suffix.lower() not in extensions:
                skipped.append((str(path), f"not a pattern file type ({', '.join(extensions)})"))
            else:
                files.append(path)
        self.patterns_dir.mkdir(parents=True, exist_ok=True)
        by_size: dict[int, list[Path]] = {}  # exact copies of a project pattern are not imported twice
        for existing in self.patterns():
            by_size.setdefault(existing.stat().st_size, []).append(existing)
        added: list[Path] = []
        for done, source in enumerate(files):
            check_stop(stop_event)
            report(Progress("import", done, len(files), source.name))
            try:
                read_pattern(source, default_wavelength=self.wavelength)
            except PatternReadError as exc:
                skipped.append((str(source), str(exc)))
                continue
            try:
                data = source.read_bytes()
                duplicate = self._same_content(data, by_size)
                if duplicate is not None:
                    skipped.append((str(source), f"already in the project as {duplicate.name}"))
                    continue
                target = self._free_name(source.name)
                shutil.copyfile(source, target)
                by_size.setdefault(len(data), []).append(target)
            except OSError as exc:
                skipped.append((str(source), f"cannot be copied ({exc.strerror or exc})"))
                continue
            added.append(target)
        report(Progress("import", len(files), len(files)))
        return added, skipped

    def _free_name(self, name: str) -> Path:
        """A free file name in ``patterns/``: ``name``, else ``stem_2.ext``, ``stem_3.ext``..."""
        stem, suffix = Path(name).stem, Path(name).suffix
        candidate, n = self.patterns_dir / name, 1
        while candidate.exists():
            n += 1
            candidate = self.patterns_dir / f"{stem}_{n}{suffix}"
        return candidate

    @staticmethod
    def _same_content(data: bytes, by_size: dict[int, list[Path]]) -> Path | None:
        """A file of the same size and bytes as ``data`` among ``by_size`` (project files by size)."""
        for path in by_size.get(len(data), []):
            try:
                if path.read_bytes() == data:
                    return path
            except OSError:
                continue
        return None

    # -- labels -------------------------------------------------------------------------------------
    def labels(self, path: str | os.PathLike[str]) -> XrdLabel:
        """The label of one pattern (an empty label when it has none)."""
        return self._labels.get(self.key(path), XrdLabel())

    def labeled_count(self) -> int:
        """How many patterns in ``patterns/`` have a label."""
        return sum(1 for p in self.patterns() if self.labels(p).is_labeled)

    def set_label(
        self,
        path: str | os.PathLike[str],
        phases: Sequence[str],
        fractions: Sequence[float] | None = None,
    ) -> XrdLabel:
        """Label one pattern (no phases = unlabeled); written to ``labels.csv`` before returning."""
        label = _check_label(phases, fractions)
        key = self.key(path)
        before = self.labels(key)
        if label == before:
            return label
        self._apply(key, label)
        self._undo.append(LabelChange(key, before, label))
        self._redo.clear()
        return label

    def undo(self) -> Path | None:
        """Undo the last label change; returns the pattern it touched (``None``: nothing to undo)."""
        if not self._undo:
            return None
        change = self._undo.pop()
        self._apply(change.key, change.before)
        self._redo.append(change)
        return self.path_of(change.key)

    def redo(self) -> Path | None:
        """Redo the last undone label change; returns the pattern it touched."""
        if not self._redo:
            return None
        change = self._redo.pop()
        self._apply(change.key, change.after)
        self._undo.append(change)
        return self.path_of(change.key)

    def can_undo(self) -> bool:
        """Whether there is a change to undo."""
        return bool(self._undo)

    def can_redo(self) -> bool:
        """Whether there is an undone change to redo."""
        return bool(self._redo)

    def _apply(self, key: str, label: XrdLabel) -> None:
        previous = self._labels.get(key)
        if label.is_labeled:
            self._labels[key] = label
        else:
            self._labels.pop(key, None)
        try:
            self._save_labels()
        except BaseException:
            if previous is None:
                self._labels.pop(key, None)
            else:
                self._labels[key] = previous
            raise

    def _save_labels(self) -> None:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(LABEL_HEADER)
        for key in sorted(self._labels):
            label = self._labels[key]
            fractions = "" if label.fractions is None else ";".join(f"{f:.6g}" for f in label.fractions)
            writer.writerow([key, ";".join(label.phases), fractions])
        _write_atomic(self.labels_file, out.getvalue())

    @staticmethod
    def _read_labels(path: Path) -> dict[str, XrdLabel]:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise XrdProjectError(f"{path}: cannot be read ({exc})") from exc
        rows = csv.reader(io.StringIO(text))
        header = next(rows, None)
        if header is None:
            return {}
        if [h.strip().lower() for h in header[:2]] != ["path", "phases"]:
            raise XrdProjectError(f"{path}: expected the header path,phases,fractions, found {header}")
        labels: dict[str, XrdLabel] = {}
        for line, row in enumerate(rows, start=2):
            if not row or not row[0].strip():
                continue
            phases = [p for p in (row[1] if len(row) > 1 else "").split(";") if p.strip()]
            raw = row[2].strip() if len(row) > 2 else ""
            try:
                fractions = [float(v) for v in raw.split(";")] if raw else None
                label = _check_label(phases, fractions)
            except (ValueError, XrdProjectError) as exc:
                raise XrdProjectError(f"{path}, line {line}: {exc}") from None
            if label.is_labeled:
                labels[PurePosixPath(*Path(row[0].strip()).parts).as_posix()] = label
        return labels
