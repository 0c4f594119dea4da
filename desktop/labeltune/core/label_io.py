"""Labels in and out of a project of either kind: CSV files, class folders, and labeling by path.

Everything here works on a :class:`LabelTarget`: what one project offers (its labeled items, finding an
item by path, checking and setting a label). ``core/label_targets.py`` adapts an image project and an XRD
project to it, so the CSV reader, the matching by path or content hash, the class-folder export and the
import report exist once (docs/adr/0029).

A label is text: a class name (images), or phases joined by ``;`` (XRD, with the weight fractions in
``extra``). The empty text means *unlabeled*.

CSV files are UTF-8 with or without a BOM; the header names the columns (``path`` and ``label`` or
``phases``; optionally ``source`` and ``fractions``), in any order. Paths are written relative to the
CSV's folder when the file lies under it (so the CSV travels with the data), else absolute; on import a
relative path is looked up against the CSV's folder, then the project folder. A row whose path names no
item, but a file whose content some item has, is matched by content hash (core/hashing.py).
"""

from __future__ import annotations

import csv
import functools
import io
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from labeltune.core.atomic import write_atomic, write_text_atomic
from labeltune.core.errors import StorageError, UnusableInputError
from labeltune.core.file_problems import OUTSIDE_CSV_FOLDER, name_problem, shown_path, storage_error
from labeltune.core.hashing import file_sha256
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress
from labeltune.core.untrusted import resolves_inside

__all__ = [
    "ImportReport",
    "LabelRow",
    "LabelTarget",
    "LabeledItem",
    "UnknownClassError",
    "export_csv",
    "export_folders",
    "import_labels",
    "label_paths",
    "read_class_folders",
    "read_label_csv",
]

LABEL_COLUMNS = ("label", "phases")


@dataclass(frozen=True)
class LabeledItem:
    """One item of a project with its label: its key, its file, the label text, who gave it, extras."""

    key: Any
    file: Path
    label: str
    source: str = "human"
    extra: str = ""


@dataclass(frozen=True)
class LabelRow:
    """One label read from a CSV or a class folder: a path as written, its label text and source."""

    path: str
    label: str
    source: str | None = None
    extra: str = ""
    line: int = 0


class LabelTarget(Protocol):
    """What a project offers the label import and export (core/label_targets.py has both kinds)."""

    label_header: str
    """The CSV column of the label: ``label`` (images) or ``phases`` (XRD)."""
    extra_header: str | None
    """A column written after the label (``fractions`` for XRD), or ``None``."""

    def labeled(self) -> list[LabeledItem]:
        """Every labeled item, in the project's order."""
        ...

    def find(self, path: str) -> Any | None:
        """The key of the item stored under ``path`` (absolute, or relative to the project), or ``None``."""
        ...

    def files(self) -> list[tuple[Any, Path]]:
        """Every item's key and file (for matching by content)."""
        ...

    def unknown_names(self, label: str) -> list[str]:
        """The class or phase names in ``label`` the project does not know (empty: all known)."""
        ...

    def apply(self, key: Any, label: str, source: str, extra: str, allow_new: bool) -> bool:
        """Commit ``label`` (empty: none) to item ``key`` as the app does; whether it changed."""
        ...

    def apply_many(self, keys: Sequence[Any], label: str, allow_new: bool) -> int:
        """Commit ``label`` to every item in ``keys`` as a person: one transaction, one undo step; changed."""
        ...


class UnknownClassError(UnusableInputError):
    """A label names classes (XRD: phases) the project does not know; :attr:`names` are they."""

    def __init__(self, names: Sequence[str], what: str = "class") -> None:
        super().__init__(f"unknown {what} {', '.join(repr(n) for n in names)} in this project")
        self.names = list(names)


@dataclass
class ImportReport:
    """What an import did: labels changed, rows already as they were, and the rows it could not use."""

    rows: int = 0
    changed: int = 0
    unchanged: int = 0
    matched_by_content: int = 0
    unmatched: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Rows naming an item whose label cannot be used (``path, line N: why``)."""
    unknown: dict[str, int] = field(default_factory=dict)
    """Unknown class (or phase) name -> how many rows were skipped for it (not fatal: listed)."""

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` summary."""
        return {
            "rows": self.rows,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "matched_by_content": self.matched_by_content,
            "unmatched": list(self.unmatched),
            "problems": list(self.problems),
            "unknown_classes": dict(self.unknown),
        }

    def summary(self) -> str:
        """A few lines for people (the CLI's text output and the app's message)."""
        lines = [f"{self.changed} label(s) changed, {self.unchanged} already as given ({self.rows} rows)"]
        if self.matched_by_content:
            lines.append(f"{self.matched_by_content} file(s) matched by content, not by path")
        if self.unmatched:
            shown = ", ".join(self.unmatched[:5]) + (", …" if len(self.unmatched) > 5 else "")
            lines.append(f"{len(self.unmatched)} row(s) name no item of the project: {shown}")
        if self.problems:
            shown = "; ".join(self.problems[:3]) + ("; …" if len(self.problems) > 3 else "")
            lines.append(f"{len(self.problems)} row(s) not usable: {shown}")
        if self.unknown:
            shown = ", ".join(f"{name} ({count})" for name, count in self.unknown.items())
            lines.append(f"rows skipped for unknown classes: {shown} (allow new classes to add them)")
        return "\n".join(lines)


# -- reading ----------------------------------------------------------------------------------------
def read_label_csv(file: Path) -> list[LabelRow]:
    """The rows of a label CSV (see the module doc); raises :class:`UnusableInputError` when unusable."""
    try:
        text = Path(file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnusableInputError(f"cannot read {file}: {exc}") from None
    try:
        table = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise UnusableInputError(f"cannot read {file}: {exc}") from None
    if not table:
        raise UnusableInputError(f"{file} is empty; expected a header path,label")
    header = [name.strip().lower() for name in table[0]]
    label_column = next((header.index(name) for name in LABEL_COLUMNS if name in header), None)
    if "path" not in header or label_column is None:
        raise UnusableInputError(
            f"{file} needs a header with a 'path' and a 'label' (or 'phases') column; found {table[0]}"
        )
    columns = {name: header.index(name) for name in ("path", "source", "fractions") if name in header}

    def cell(row: list[str], index: int | None) -> str:
        return row[index].strip() if index is not None and index < len(row) else ""

    rows = []
    for line, row in enumerate(table[1:], start=2):
        path = cell(row, columns["path"])
        if path:
            source = cell(row, columns.get("source")) or None
            extra = cell(row, columns.get("fractions"))
            rows.append(LabelRow(path, cell(row, label_column), source, extra, line))
    return rows


def read_class_folders(root: Path) -> list[LabelRow]:
    """A row for every file under ``root/<class>/`` (any depth), labeled with the class folder's name."""
    root = Path(os.path.abspath(root))  # rows name files as the project stores them: absolute
    if not root.is_dir():
        raise UnusableInputError(f"{root} is not a folder of class folders")
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    rows.append(LabelRow(str(Path(dirpath, name)), folder.name))
    return rows


# -- writing ----------------------------------------------------------------------------------------
def _written_path(file: Path, base: Path) -> str:
    """``file`` relative to ``base`` (POSIX) when it lies under it, else absolute."""
    absolute = Path(os.path.abspath(file))
    try:
        return absolute.relative_to(os.path.abspath(base)).as_posix()
    except ValueError:
        return str(absolute)


def export_csv(target: LabelTarget, out: Path) -> int:
    """Write the labeled items of ``target`` to the CSV ``out`` (written whole or not at all); the count."""
    out = Path(out)
    items = target.labeled()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    extra = [target.extra_header] if target.extra_header else []
    writer.writerow(["path", target.label_header, *extra, "source"])
    for item in items:
        extras = [item.extra] if target.extra_header else []
        writer.writerow([_written_path(item.file, out.parent), item.label, *extras, item.source])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # disk full, read-only, folder gone: one line naming it (ADR 0042)
        raise storage_error(exc, out.parent, "create") from None
    write_text_atomic(out, text.getvalue())  # a StorageError naming ``out``
    return len(items)


def export_folders(
    target: LabelTarget,
    out: Path,
    link: bool = False,
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> int:
    """Copy (or with ``link`` symlink) each labeled item's file into ``out/<label>/``; the count.

    A name already taken in a class folder gets a suffix (``a.png`` → ``a_2.png``); a label that is not
    a usable folder name (``/``) raises :class:`UnusableInputError` before anything is written.
    """
    out = Path(out)
    items = target.labeled()
    for item in items:
        if "/" in item.label or "\\" in item.label or item.label in (".", ".."):
            raise UnusableInputError(f"the label {item.label!r} cannot be a folder name")
    for done, item in enumerate(items):
        check_stop(stop_event)
        folder = out / item.label
        destination = _free_name(folder / item.file.name)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if link:
                destination.symlink_to(os.path.abspath(item.file))
            else:  # a full disk leaves no half copy that looks like a labeled image
                write_atomic(destination, functools.partial(shutil.copy2, item.file))
        except OSError as exc:
            if isinstance(exc, StorageError):
                raise
            raise storage_error(exc, destination) from None
        progress(Progress("export labels", done + 1, len(items)))
    return len(items)


def _free_name(path: Path) -> Path:
    number = 2
    candidate = path
    while candidate.exists() or candidate.is_symlink():
        candidate = path.with_name(f"{path.stem}_{number}{path.suffix}")
        number += 1
    return candidate


# -- importing --------------------------------------------------------------------------------------
class _Matcher:
    """Finds the item a path names: by the path (several readings), else by the file's content."""

    def __init__(self, target: LabelTarget, bases: Sequence[Path], confined: bool = False) -> None:
        self._target = target
        self._bases = [Path(os.path.abspath(base)) for base in bases]  # a relative base: from here
        self._confined = confined  # rows of a file: read only files under the bases
        self._by_hash: dict[str, Any] | None = None

    def find(self, path: str) -> tuple[Any | None, bool]:
        """``(key, by_content)`` of the item ``path`` names; key ``None`` when none does."""
        if name_problem(path):  # not text: no item is stored under it (the scan skips such files)
            return None, False
        candidates = [path] if os.path.isabs(path) else [str(b / path) for b in self._bases] + [path]
        for candidate in candidates:
            key = self._target.find(candidate)
            if key is None and os.path.islink(candidate):  # a tree exported with --link
                key = self._target.find(os.path.realpath(candidate))
            if key is not None:
                return key, False
        for candidate in candidates:
            if self.readable(candidate) and os.path.isfile(candidate):
                try:
                    digest = file_sha256(candidate)
                except OSError:  # unreadable: it matches nothing
                    return None, False
                return self._hashes().get(digest), True
        return None, False

    def readable(self, path: str) -> bool:
        """Whether the file ``path`` may be read (to match by content): when confined, under a base."""
        return not self._confined or any(resolves_inside(path, base) for base in self._bases)

    def _hashes(self) -> dict[str, Any]:
        if self._by_hash is None:
            self._by_hash = {}
            for key, file in self._target.files():
                try:
                    digest = file_sha256(file)
                except OSError:
                    continue  # a missing file matches nothing
                # the same content under two items (a photo filed under two classes) names neither
                self._by_hash[digest] = None if digest in self._by_hash else key
        return self._by_hash


def import_labels(
    target: LabelTarget,
    rows: Iterable[LabelRow],
    bases: Sequence[Path],
    allow_new: bool = False,
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> ImportReport:
    """Commit each row's label to the item it names (relative paths: against ``bases`` in turn).

    A row's ``source`` is kept when it is one the project knows, else the label counts as ``import``.
    Rows naming no item and rows with unknown classes (unless ``allow_new``) are skipped and listed in
    the report; a file outside ``bases`` is never read (to match by content): its row is a problem.
    Everything else is committed row by row, so a stop keeps what was done.
    """
    rows = list(rows)
    report = ImportReport(rows=len(rows))
    matcher = _Matcher(target, bases, confined=True)
    for done, row in enumerate(rows):
        check_stop(stop_event)
        where = f"{shown_path(row.path)}{f', line {row.line}' if row.line else ''}"
        problem = name_problem(row.path)
        if problem:
            report.problems.append(f"{where}: {problem}")
            continue
        key, by_content = matcher.find(row.path)
        if key is None and not matcher.readable(row.path):
            report.problems.append(f"{where}: {OUTSIDE_CSV_FOLDER}")
            continue
        if key is None:
            report.unmatched.append(row.path)
            continue
        unknown = [] if allow_new else target.unknown_names(row.label)
        for name in unknown:
            report.unknown[name] = report.unknown.get(name, 0) + 1
        if unknown:
            continue
        source = row.source if row.source in ("human", "import", "model") else "import"
        try:
            changed = target.apply(key, row.label, source, row.extra, allow_new)
        except UnusableInputError as exc:
            report.problems.append(f"{where}: {exc}")
            continue
        if changed:
            report.changed += 1
        else:
            report.unchanged += 1
        report.matched_by_content += by_content
        progress(Progress("import labels", done + 1, len(rows)))
    return report


def label_paths(
    target: LabelTarget,
    paths: Sequence[str],
    label: str,
    bases: Sequence[Path],
    allow_new: bool = False,
) -> int:
    """Give every item in ``paths`` the label ``label`` (empty: clear it) as a person; how many changed.

    All or nothing up front: a path naming no item, or an unknown class (unless ``allow_new``), raises
    :class:`UnusableInputError` before any label is set.
    """
    matcher = _Matcher(target, bases)
    keys = []
    for path in paths:
        key, _by_content = matcher.find(path)
        if key is None:
            problem = name_problem(path)
            raise UnusableInputError(
                f"{shown_path(path)}: {problem}" if problem else f"{path} is not an item of this project"
            )
        keys.append(key)
    unknown = [] if allow_new or not label else target.unknown_names(label)
    if unknown:
        raise UnknownClassError(unknown, "phase" if target.label_header == "phases" else "class")
    return target.apply_many(keys, label, allow_new)  # one transaction, one undo step (ADR 0039)
