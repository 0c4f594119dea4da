"""Helpers for the batch-labeling tests: a project with many samples, and a dump of its label store."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labeltune.core.project import Project
from labeltune.core.sample import Sample


def many_samples_project(folder: Path, count: int, classes: tuple[str, ...] = ("a", "b", "c")) -> Project:
    """A new project with ``count`` samples (no files needed): every third imported as ``a``."""
    project = Project.create(folder, classes=list(classes))
    project.add_samples(Sample(folder / f"img{i:06d}.png", "a" if i % 3 == 0 else None) for i in range(count))
    return project


def store_dump(project: Project) -> dict[str, Any]:
    """Everything a label change can touch: samples' labels and sources, the history, the classes."""
    conn: sqlite3.Connection = project._db()
    return {
        "samples": conn.execute(
            "SELECT id, label, label_source, excluded FROM samples ORDER BY id"
        ).fetchall(),
        "labels": conn.execute("SELECT * FROM labels ORDER BY id").fetchall(),
        "classes": project.classes,
        "project.json": (project.folder / "project.json").read_text(encoding="utf-8"),
    }


class FailingConnection:
    """A stand-in for a project's connection whose ``fail_at``-th ``executemany`` raises ``error``."""

    def __init__(self, real: sqlite3.Connection, error: Exception, fail_at: int) -> None:
        self._real, self._error, self._fail_at = real, error, fail_at
        self.calls = 0

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        """Fail on the ``fail_at``-th call (earlier slices of the batch are already written)."""
        self.calls += 1
        if self.calls == self._fail_at:
            raise self._error
        return self._real.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def xrd_project_with_keys(folder: Path, count: int) -> tuple[Any, list[str]]:
    """A new XRD project (a two-phase library) and ``count`` pattern keys (the files need not exist)."""
    import numpy as np

    from labeltune.core.xrd.library import Library, Peaks, Phase, save_library
    from labeltune.core.xrd.xrd_project import XrdProject

    library = Library(wavelength=1.5406, two_theta_range=(10.0, 80.0))
    for i, name in enumerate(("A_1", "B_2")):
        library.phases.append(
            Phase(
                name,
                name[0] + "O",
                "P1",
                1,
                (4.0, 4.0, 4.0, 90.0, 90.0, 90.0),
                64.0,
                4.0,
                1,
                f"{name}.cif",
                100.0,
                200.0,
                1.0,
                2,
            )
        )
        two_theta = np.array([20.0 + 5 * i, 40.0 + 5 * i])
        d = 1.5406 / (2 * np.sin(np.radians(two_theta) / 2))
        library.peaks[name] = Peaks(
            two_theta, d, np.array([100.0, 40.0]), np.ones((2, 3), int), np.ones(2, int)
        )
    save_library(library, folder / "lib")
    project = XrdProject.create(folder / "proj", "Batch", folder / "lib")
    return project, [f"patterns/p{i:05d}.xy" for i in range(count)]


def fail_aside(
    project: Project, monkeypatch: pytest.MonkeyPatch, error: Exception, fail_at: int
) -> list[FailingConnection]:
    """Make the connections a big batch opens fail at their ``fail_at``-th ``executemany``."""
    opened: list[FailingConnection] = []
    real = project._aside_connection

    def failing() -> FailingConnection:
        opened.append(FailingConnection(real(), error, fail_at))
        return opened[-1]

    monkeypatch.setattr(project, "_aside_connection", failing)
    return opened


def trace_statements(project: Project, trace: Callable[[str], None]) -> None:
    """Send every SQL statement of the project, on its own connection and on a big batch's, to ``trace``."""
    project._db().set_trace_callback(trace)
    real = project._aside_connection

    def traced() -> sqlite3.Connection:
        conn = real()
        conn.set_trace_callback(trace)
        return conn

    project._aside_connection = traced  # type: ignore[method-assign]
