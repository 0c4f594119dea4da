"""The import dialog's background jobs: plain ``job(progress, stop)`` functions, no Qt.

Each runs in a :class:`~labeltune.workers.tasks.FunctionWorker`; they are kept apart from the dialog so
the dialog holds only layout and state, and so they can be called directly in tests.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from labeltune.core.datasets import Dataset, scan, scan_files
from labeltune.core.progress import Progress, check_stop
from labeltune.core.project import DB_FILE, PROJECT_FILE, Project

log = logging.getLogger(__name__)

ProgressFn = Callable[[Progress], None]
Job = Callable[[ProgressFn, threading.Event], object]


def scan_job(source: Path | Sequence[Path]) -> Callable[[ProgressFn, threading.Event], Dataset]:
    """Scan ``source`` (a folder, CSV or project; or picked files); stops between files on the stop event."""

    def job(progress: ProgressFn, stop: threading.Event) -> Dataset:
        def report(p: Progress) -> None:
            check_stop(stop)  # scan() takes no stop event of its own
            progress(p)

        if isinstance(source, Path):
            return scan(source, progress=report)
        return scan_files(source, progress=report)

    return job


def discard_new_project(folder: Path, created_folder: bool) -> None:
    """Remove what a failed create left: only LabelTune's own files, and the folder if it was made here."""
    for name in (PROJECT_FILE, DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm"):
        try:
            (folder / name).unlink(missing_ok=True)
        except OSError as error:
            log.warning("cannot remove %s: %s", folder / name, error)
    if created_folder:
        with contextlib.suppress(OSError):
            folder.rmdir()


def create_project_job(
    data: Dataset, location: Path, name: str
) -> Callable[[ProgressFn, threading.Event], Project]:
    """Create a project in ``location`` holding ``data``'s samples; a failure leaves no project behind."""

    def job(_progress: ProgressFn, _stop: threading.Event) -> Project:
        created_folder = not location.exists()
        project = Project.create(location, name=name, classes=data.classes)
        try:
            project.add_source(data.root)
            project.add_samples(data.samples, source="import")
        except BaseException:
            project.close()
            discard_new_project(project.folder, created_folder)
            raise
        return project

    return job


def add_to_project_job(data: Dataset, project: Project) -> Callable[[ProgressFn, threading.Event], Project]:
    """Add ``data``'s samples (and its root as a source) to an open project."""

    def job(_progress: ProgressFn, _stop: threading.Event) -> Project:
        project.add_source(data.root)
        project.add_samples(data.samples, source="import")
        return project

    return job
