"""Results ▸ *Find likely label errors…*: audit the project's labeled images with one run, in a worker.

The audit (core/audit_store.py ``audit_project``: out-of-fold confident learning and near-duplicates,
ADR 26) is stored as ``audit.json`` in the run's folder, so it survives closing the project; the Label tab
then offers the filters *Likely label errors* (most likely first, the suggested class in the large view's
line; Space takes the suggestion) and *Near-duplicates* (a group's members side by side). ADR 33.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from labeltune.core.audit_store import AuditFindings
from labeltune.ui.image_check import Job, RunJob
from labeltune.ui.run_details import AUDIT_TEXT
from labeltune.ui.runs_list import RunDetails

#: The Label tab's line under the filter *Likely label errors* (what the keys do there).
ISSUE_HINT = "Likely label errors · Space takes the suggested class · 1–9 another class · X excludes"
DUPLICATE_HINT = "Near-duplicates · X excludes one from training · 1–9 relabel"


class LabelAudit(RunJob):
    """Runs the audit of one run on the open project and says how it goes on a button and a line."""

    idle_text = AUDIT_TEXT
    running_text = "Stop the audit"
    busy_text = "Looking for likely label errors and near-duplicates…"
    failed_text = "The audit failed."
    error_title = "Cannot look for label errors"
    items = "images"  # what is audited, in the outcome line
    where_text = " See them in the Label tab (Show: Likely label errors / Near-duplicates)."

    def job(self, folder: Path, details: RunDetails) -> Job:
        """Audit the project's labeled items with the run; the report is stored (core/audit_store.py)."""
        run_dir = Path(str(details.run["path"]))

        def run_audit(progress: Any, stop: Any) -> dict[str, Any]:
            from labeltune.core import audit_store

            return audit_store.audit_project(folder, run_dir, progress=progress, stop_event=stop)

        return run_audit

    def finished_text(self, result: dict[str, Any]) -> str:
        """How many likely label errors and near-duplicate groups the audit found, and where to see them."""
        issues, groups = len(result["label_issues"]), len(result["duplicates"])
        text = (
            f"Audited {result['n_items']} labeled {self.items}: {issues} likely label errors, "
            f"{groups} groups of near-duplicates."
        )
        return text + self.where_text if issues or groups else text


def audit_text(findings: AuditFindings | None, path: str, label: str | None) -> str:
    """What the stored audit says about a file, to lead the large view's line (empty: nothing)."""
    said = findings.describe(path, label) if findings is not None else ""
    return f"<span style='color:#b00020'>⚠ <b>{html.escape(said)}</b></span> · " if said else ""
