"""Bringing measured pattern files into an XRD project's ``patterns/`` folder, checked and without copies.

Every file is read first (a file that cannot be read is reported with the reason, never copied), exact
copies of a pattern already there are skipped whatever their name, and a name already taken gets a
suffix. Nothing is fatal: what is left out comes back with the reason.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress

__all__ = ["import_pattern_files", "pattern_files"]


def _supported_extensions() -> tuple[str, ...]:
    from labeltune.core.xrd.readers import SUPPORTED_EXTENSIONS

    return SUPPORTED_EXTENSIONS


def pattern_files(folder: Path) -> list[Path]:
    """The pattern files in ``folder`` (not below it), sorted by name (case-insensitive)."""
    extensions = _supported_extensions()
    if not folder.is_dir():
        return []
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: (p.name.casefold(), p.name))


def import_pattern_files(
    paths: Iterable[str | os.PathLike[str]],
    patterns_dir: Path,
    wavelength: float,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Check and copy pattern files (folders: their pattern files, recursively) into ``patterns_dir``.

    ``wavelength`` (Å) is used to read files that do not state theirs.

    Returns (copied files, skipped (path, reason)). Unreadable files, unsupported types and exact
    copies of a pattern already in the project (whatever their name) are skipped with the reason;
    nothing is fatal. A name already taken gets a suffix: ``a.xy`` → ``a_2.xy``.
    """
    from labeltune.core.xrd.pattern import NeutronDataError, PatternReadError, require_xray
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
    patterns_dir.mkdir(parents=True, exist_ok=True)
    by_size: dict[int, list[Path]] = {}  # exact copies of a project pattern are not imported twice
    for existing in pattern_files(patterns_dir):
        by_size.setdefault(existing.stat().st_size, []).append(existing)
    added: list[Path] = []
    for done, source in enumerate(files):
        check_stop(stop_event)
        report(Progress("import", done, len(files), source.name))
        try:
            require_xray(read_pattern(source, default_wavelength=wavelength))
        except (PatternReadError, NeutronDataError) as exc:
            skipped.append((str(source), str(exc)))
            continue
        try:
            data = source.read_bytes()
            duplicate = _same_content(data, by_size)
            if duplicate is not None:
                skipped.append((str(source), f"already in the project as {duplicate.name}"))
                continue
            target = _free_name(patterns_dir, source.name)
            shutil.copyfile(source, target)
            by_size.setdefault(len(data), []).append(target)
        except OSError as exc:
            skipped.append((str(source), f"cannot be copied ({exc.strerror or exc})"))
            continue
        added.append(target)
    report(Progress("import", len(files), len(files)))
    return added, skipped


def _free_name(patterns_dir: Path, name: str) -> Path:
    """A free file name in ``patterns_dir``: ``name``, else ``stem_2.ext``, ``stem_3.ext``..."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = patterns_dir / name, 1
    while candidate.exists():
        n += 1
        candidate = patterns_dir / f"{stem}_{n}{suffix}"
    return candidate


def _same_content(data: bytes, by_size: dict[int, list[Path]]) -> Path | None:
    """A file of the same size and bytes as ``data`` among ``by_size`` (project files by size)."""
    for path in by_size.get(len(data), []):
        try:
            if path.read_bytes() == data:
                return path
        except OSError:
            continue
    return None
