"""Whether a run folder holds a stopped run that can be continued: read from its files, not from memory.

A stopped run writes ``metrics.json`` (its summary says ``"stopped": true``), ``config.json`` (the planned
epochs) and ``checkpoint.pt`` (everything :func:`labeltune.core.training.resume` needs), so it stays
resumable after the app restarts. Small files only: cheap enough for the GUI thread; no torch import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeltune.core.run_schema import run_schema_problem

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class StoppedRun:
    """A run stopped by the user that can be continued."""

    run_dir: Path
    epochs_run: int
    epochs_planned: int

    def describe(self) -> str:
        """``stopped at epoch 4 of 10``."""
        of = f" of {self.epochs_planned}" if self.epochs_planned else ""
        return f"stopped at epoch {self.epochs_run}{of}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def stopped_run(run_dir: str | Path) -> StoppedRun | None:
    """The stopped, resumable run in ``run_dir``; None for a finished, damaged or non-resumable one."""
    folder = Path(run_dir)
    if not (folder / CHECKPOINT).is_file():
        return None
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
