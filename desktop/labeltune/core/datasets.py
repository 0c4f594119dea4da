"""Finding labeled and unlabeled images: class folders, ``path,label`` CSV files and project folders.

Scanning decodes every image (JPEGs in draft mode, which still reads all their data), so a truncated file
is caught here, not later in the gallery or in training: a file that cannot be used is reported in
``skipped`` with its path and the specific reason :mod:`labeltune.core.file_problems` gives, never dropped
silently. Several files are checked at once (Pillow decodes without holding the GIL).
"""

from __future__ import annotations

import csv
import os
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from labeltune.core.errors import UnusableInputError
from labeltune.core.file_problems import (
    MISSING,
    MISSING_SINCE_IMPORT,
    OUTSIDE_CSV_FOLDER,
    name_problem,
    not_image_type_reason,
    shown_path,
)
from labeltune.core.imaging import MAX_PIXELS, check_pixels, file_problem, is_image_file
from labeltune.core.progress import Progress, ProgressCallback, no_progress
from labeltune.core.project import PROJECT_FILE, Project
from labeltune.core.sample import Sample
from labeltune.core.untrusted import resolves_inside


@dataclass(frozen=True)
class SkippedFile:
    """A file that was left out, and why."""

    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        """Return ``{"path": ..., "reason": ...}``."""
        return {"path": self.path, "reason": self.reason}


def describe_skipped(skipped: Sequence[SkippedFile], limit: int = 3) -> str:
    """``"cut.jpg: truncated JPEG (image data ends early); ... and 4 more"``: files named, with reasons."""
    named = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in skipped[:limit])
    return named + (f"; and {len(skipped) - limit} more" if len(skipped) > limit else "")


@dataclass
class Dataset:
    """What a scan found."""

    root: Path
    kind: str  # "folder", "csv", "project" or "files" (picked one by one)
    samples: list[Sample]
    skipped: list[SkippedFile] = field(default_factory=list)
    class_order: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        """Class names: the declared order first, then any other label, sorted."""
        seen = {s.label for s in self.samples if s.label is not None}
        ordered = [c for c in self.class_order if c in seen]
        return ordered + sorted(seen.difference(ordered))

    @property
    def labeled(self) -> list[Sample]:
        """Samples with a label."""
        return [s for s in self.samples if s.label is not None]

    @property
    def unlabeled(self) -> list[Sample]:
        """Samples without a label."""
        return [s for s in self.samples if s.label is None]

    def counts(self) -> dict[str, int]:
        """Number of samples per class, in class order."""
        counter = Counter(s.label for s in self.samples if s.label is not None)
        return {c: counter[c] for c in self.classes}

    def summary(self) -> dict[str, object]:
        """Return the JSON summary ``scan --json`` prints."""
        return {
            "root": str(self.root),
            "kind": self.kind,
            "classes": self.counts(),
            "labeled": len(self.labeled),
            "unlabeled": len(self.unlabeled),
            "skipped": [s.to_json() for s in self.skipped],
        }


def _walk_images(folder: Path) -> Iterable[Path]:
    # Symlinked folders are followed (data is often linked in from shared storage); a folder already
    # visited (a link to a parent, two links to one place) is not read again, so links cannot loop.
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


#: Files checked per step: progress (and the import dialog's Cancel) between steps.
_CHECK_CHUNK = 64


#: An image whose check decodes more pixels than this (a 30-megapixel PNG or TIFF: ~120 MB in memory) is
#: checked while no other such image is: eight of them at once (or eight small PNGs of zeros that unpack
#: to 190 megapixels each) would take gigabytes.
LARGE_CHECK_PIXELS = 30_000_000
_large_check = threading.Lock()


def _problem(path: Path, check: bool, max_pixels: int) -> str | None:
    # The name is checked even unchecked: a name that is not text cannot be stored, written or shown.
    problem = name_problem(path)
    if problem or not check:
        return problem
    if check_pixels(path, max_pixels) > LARGE_CHECK_PIXELS:
        with _large_check:
            return file_problem(path, max_pixels)
    return file_problem(path, max_pixels)


def _check(
    paths: list[tuple[Path, str | None, str | None]], check: bool, progress: ProgressCallback, max_pixels: int
) -> tuple[list[Sample], list[SkippedFile]]:
    samples: list[Sample] = []
    skipped: list[SkippedFile] = []
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="scan") as pool:
        for start in range(0, len(paths), _CHECK_CHUNK):
            chunk = paths[start : start + _CHECK_CHUNK]
            problems = list(pool.map(lambda item: _problem(item[0], check, max_pixels), chunk))
            for (path, label, group), problem in zip(chunk, problems, strict=True):
                if problem is None:
                    samples.append(Sample(path, label, group))
                else:
                    skipped.append(SkippedFile(shown_path(path), problem))
            progress(Progress("scan", start + len(chunk), len(paths)))
    return samples, skipped


def scan_folder(
    root: Path, check: bool = True, progress: ProgressCallback = no_progress, max_pixels: int = MAX_PIXELS
) -> Dataset:
    """Scan a folder: each sub-folder is a class (with any nesting), top-level files are unlabeled."""
    found: list[tuple[Path, str | None, str | None]] = []
    skipped: list[SkippedFile] = []
    for path in _walk_images(root):
        relative = path.relative_to(root)
        label = relative.parts[0] if len(relative.parts) > 1 else None
        if is_image_file(path):
            found.append((path, label, None))
        elif path.suffix.lower() not in {".txt", ".csv", ".json", ".md", ".db", ".ini", ".sqlite"}:
            skipped.append(SkippedFile(shown_path(path), not_image_type_reason(path)))
    samples, bad = _check(found, check, progress, max_pixels)
    return Dataset(root, "folder", samples, skipped + bad)


def scan_csv(
    csv_path: Path, check: bool = True, progress: ProgressCallback = no_progress, max_pixels: int = MAX_PIXELS
) -> Dataset:
    """Read a CSV with ``path`` and ``label`` columns (paths relative to the CSV; optional ``group``).

    Only files under the CSV's folder are read: a row naming one outside it is skipped unread.
    """
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            # "Path", " label" (Excel, hand-written headers) mean the same columns.
            columns = [(name or "").strip().lower() for name in reader.fieldnames or []]
            reader.fieldnames = columns
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UnusableInputError(f"cannot read {csv_path}: {exc}") from None
    if "path" not in columns:
        raise UnusableInputError(f"{csv_path} needs a header with at least a 'path' column (and 'label')")
    found: list[tuple[Path, str | None, str | None]] = []
    skipped: list[SkippedFile] = []
    for row in rows:
        raw = (row.get("path") or "").strip()
        if not raw:
            continue
        path = Path(raw) if Path(raw).is_absolute() else (csv_path.parent / raw)
        label = (row.get("label") or "").strip() or None
        group = (row.get("group") or "").strip() or None
        if not resolves_inside(path, csv_path.parent):  # checked before the file is touched
            skipped.append(SkippedFile(raw, OUTSIDE_CSV_FOLDER))
            continue
        if not path.exists():
            skipped.append(SkippedFile(str(path), MISSING))
            continue
        found.append((path.resolve(), label, group))
    samples, bad = _check(found, check, progress, max_pixels)
    return Dataset(csv_path, "csv", samples, skipped + bad)


def scan_project(folder: Path) -> Dataset:
    """Read the samples and current labels of a LabelTune project (not those excluded from training)."""
    with Project.open(folder) as project:
        samples = project.samples(include_excluded=False)
        classes = list(project.classes)
    missing = [s for s in samples if not s.path.exists()]
    present = [s for s in samples if s.path.exists()]
    skipped = [SkippedFile(str(s.path), MISSING_SINCE_IMPORT) for s in missing]
    return Dataset(folder, "project", present, skipped, class_order=classes)


def scan_files(
    paths: Sequence[Path | str], check: bool = True, progress: ProgressCallback = no_progress
) -> Dataset:
    """Scan files picked one by one (dropped on the window): each is an unlabeled sample, nothing else.

    A folder among them is scanned as a class folder; the dataset's root is the folder they share.
    """
    resolved = [Path(p).expanduser().resolve() for p in paths]
    if not resolved:
        raise UnusableInputError("no files were given")
    found: list[tuple[Path, str | None, str | None]] = []
    skipped: list[SkippedFile] = []
    folders: list[Dataset] = []
    for path in resolved:
        if path.is_dir():
            folders.append(scan_folder(path, check, progress))
        elif not path.exists():
            skipped.append(SkippedFile(str(path), "file not found"))
        elif is_image_file(path):
            found.append((path, None, None))
        else:
            skipped.append(
                SkippedFile(str(path), f"not an image file type ({path.suffix or 'no extension'})")
            )
    samples, bad = _check(found, check, progress, MAX_PIXELS)
    for data in folders:
        samples += data.samples
        skipped += data.skipped
    root = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in resolved]))
    return Dataset(root, "files", samples, skipped + bad)


def scan(source: Path | str, check: bool = True, progress: ProgressCallback = no_progress) -> Dataset:
    """Scan a class folder, a CSV file or a project folder."""
    source = Path(source).expanduser()
    if not source.exists():
        raise UnusableInputError(f"{source} does not exist")
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise UnusableInputError(f"{source} is a file; give a folder of images, a .csv or a project")
        return scan_csv(source.resolve(), check, progress)
    if (source / PROJECT_FILE).is_file():
        return scan_project(source.resolve())
    return scan_folder(source.resolve(), check, progress)
