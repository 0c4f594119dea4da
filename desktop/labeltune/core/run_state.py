"""Whether a run folder holds a stopped run that can be continued: read from its files, not from memory.

A stopped run writes ``metrics.json`` (its summary says ``"stopped": true``), ``config.json`` (the planned
epochs) and ``checkpoint.pt`` (everything :func:`labeltune.core.training.resume` needs), so it stays
resumable after the app restarts. A run that was killed (kill -9, a crash, a power cut) has no
``metrics.json`` but its ``checkpoint.pt`` and ``config.json``: it is *interrupted*, and continues the
same way (docs/adr/0041). Small files only: cheap enough for the GUI thread; no torch import.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeltune.core.project_lock import pid_alive, read_lock
from labeltune.core.run_schema import run_schema_problem

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class StoppedRun:
    """A run stopped by the user that can be continued."""

    run_dir: Path
    epochs_run: int
    epochs_planned: int
    #: Killed before it could write its results (no ``metrics.json``); continues from its last checkpoint.
    interrupted: bool = False

    def describe(self) -> str:
        """``stopped at epoch 4 of 10`` (``interrupted after epoch 4 of 10`` for a killed run)."""
        of = f" of {self.epochs_planned}" if self.epochs_planned else ""
        if self.interrupted:
            return f"interrupted after epoch {self.epochs_run}{of}"
        return f"stopped at epoch {self.epochs_run}{of}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def run_in_progress(run_dir: str | Path) -> str:
    """Who trains the run in ``run_dir`` now (``on this computer (process 123), since ...``), or "".

    Training holds a lock file in the run folder (``core/project_lock.py``); one left by a killed process
    on this computer is stale, and the run is then interrupted, not in progress. A lock from another
    computer counts as in progress: its process cannot be checked from here.
    """
    holder = read_lock(run_dir)
    if holder is None:
        return ""
    if holder.host == socket.gethostname() and not pid_alive(holder.pid):
        return ""
    return holder.describe()


def stopped_run(run_dir: str | Path) -> StoppedRun | None:
    """The stopped, resumable run in ``run_dir``; None for a finished, damaged or non-resumable one."""
    folder = Path(run_dir)
    if not (folder / CHECKPOINT).is_file():
        return None
    if run_in_progress(folder):
        return None  # training now (another process, or a thread of this one): not stopped
    if not (folder / "metrics.json").exists():
        return _interrupted_run(folder)
    summary = _read_json(folder / "metrics.json").get("summary")
    if not isinstance(summary, dict) or summary.get("stopped") is not True:
        return None
    config = _read_json(folder / "config.json")
    train = config.get("train")
    if not isinstance(train, dict) or run_schema_problem(folder, config) is not None:
        return None  # resume needs the run's settings, in a layout this version knows
    planned = summary.get("epochs_planned") or train.get("epochs") or 0
    try:
        return StoppedRun(folder, int(summary.get("epochs_run") or 0), int(planned))
    except (TypeError, ValueError):
        return None


def _interrupted_run(folder: Path) -> StoppedRun | None:
    """A killed run: its checkpoint and settings are there, its results not (epochs from ``history.csv``)."""
    config = _read_json(folder / "config.json")
    train = config.get("train")
    if not isinstance(train, dict) or run_schema_problem(folder, config) is not None:
        return None
    try:
        with open(folder / "history.csv", encoding="utf-8") as handle:
            epochs_run = max(0, sum(1 for line in handle if line.strip()) - 1)  # without the header
    except OSError:
        epochs_run = 0
    try:
        return StoppedRun(folder, epochs_run, int(train.get("epochs") or 0), interrupted=True)
    except (TypeError, ValueError):
        return None


def interrupted_run_record(run: StoppedRun) -> tuple[str, Path, str, str, dict[str, Any]]:
    """``Project.record_run``'s arguments for an interrupted run, so that the runs list shows it."""
    train = _read_json(run.run_dir / "config.json").get("train") or {}
    backbone, strategy = str(train.get("backbone", "")), str(train.get("strategy", ""))
    summary: dict[str, Any] = {
        "run_dir": str(run.run_dir),
        "backbone": backbone,
        "strategy": strategy,
        "val_accuracy": None,
        "epochs_run": run.epochs_run,
        "epochs_planned": run.epochs_planned,
        "stopped": True,
        "interrupted": True,
    }
    return run.run_dir.name, run.run_dir, backbone, strategy, summary


def unlisted_interrupted_runs(runs_dir: Path, listed: set[str]) -> list[StoppedRun]:
    """The interrupted runs in ``runs_dir`` whose folder names are not in ``listed`` (oldest first)."""
    try:
        folders = sorted(p for p in Path(runs_dir).iterdir() if p.is_dir() and p.name not in listed)
    except OSError:
        return []
    found = [stopped_run(folder) for folder in folders if not (folder / "metrics.json").exists()]
    return [run for run in found if run is not None and run.interrupted]


def record_interrupted_runs(project: Any) -> list[StoppedRun]:
    """List the project's killed runs in its store (``Project.record_run``), so the runs list offers them.

    A run is recorded when it finishes or stops; one killed meanwhile is only a folder under
    ``project.runs_dir`` until this finds it. Cheap: a directory listing and small files per new run.
    """
    listed = {str(run["id"]) for run in project.runs()}
    found = unlisted_interrupted_runs(project.runs_dir, listed)
    for run in found:
        project.record_run(*interrupted_run_record(run))
    return found
