"""A run's audit, kept in its folder: ``audit.json`` written by the app, read back by the Label tab.

:func:`audit_project` audits a project's labeled images with one of its runs (core/audit_run.py) and
stores the report beside the run (``audit.json``, the same object ``labeltune audit --json`` prints, plus
when it was made); :func:`load_findings` reads it back as :class:`AuditFindings`, which answers per file
whether it belongs under *Likely label errors* or *Near-duplicates* and in what rank. Domain-neutral: it
keys items by path (ADR 33). An XRD project's audit is kept in the project folder instead (its model may
be the bundled one, shared by every project) and its labels are phase sets, compared as sets (ADR 36).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeltune.core.atomic import write_text_atomic
from labeltune.core.audit import CROSS_CLASS, SAME_CLASS, TRAIN_VAL
from labeltune.core.progress import ProgressCallback, check_stop, no_progress

AUDIT_FILE = "audit.json"
LABEL_ERRORS = "label_errors"  # the gallery filter kinds the findings answer
DUPLICATES = "duplicates"

#: A duplicate group's kind, in words (the large view's line and the thumbnails' tooltips).
KIND_WORDS = {
    CROSS_CLASS: "labeled differently",
    TRAIN_VAL: "in both training and validation (leakage)",
    SAME_CLASS: "near-copies in one class",
}


@dataclass(frozen=True)
class Issue:
    """A file flagged as a likely label error: its rank (0 = most likely), label then, suggestion, score."""

    rank: int
    label: str
    suggested: str
    score: float


@dataclass(frozen=True)
class Duplicate:
    """A file of a near-duplicate group: the group's rank, the file's place in it, size, kind, similarity."""

    group: int
    position: int
    size: int
    kind: str
    similarity: float


@dataclass
class AuditFindings:
    """A stored audit, by normalised path."""

    run_dir: Path
    issues: dict[str, Issue] = field(default_factory=dict)
    duplicates: dict[str, Duplicate] = field(default_factory=dict)
    multilabel: bool = False  # labels are ";"-joined phase sets: equal as sets, shown "A + B"

    @classmethod
    def from_json(cls, run_dir: Path, report: dict[str, Any]) -> AuditFindings:
        """Findings of an ``audit --json`` object (ranks in its order: most likely first)."""
        findings = cls(Path(run_dir), multilabel=bool(report.get("multilabel")))
        for rank, item in enumerate(report.get("label_issues") or []):
            findings.issues[os.path.normpath(item["path"])] = Issue(
                rank, str(item["label"]), str(item["suggested"]), float(item["score"])
            )
        for group, item in enumerate(report.get("duplicates") or []):
            paths = list(item["paths"])
            for position, path in enumerate(paths):
                findings.duplicates.setdefault(
                    os.path.normpath(path),
                    Duplicate(group, position, len(paths), str(item["kind"]), float(item["similarity"])),
                )
        return findings

    def keeps(self, kind: str, path: str, label: str | None) -> bool:
        """Whether ``path`` (labeled ``label`` now) shows under filter ``kind``.

        A label error is fixed once its label is no longer the one the audit flagged (relabeled, accepted
        or cleared): it leaves the list.
        """
        key = os.path.normpath(path)
        if kind == LABEL_ERRORS:
            issue = self.issues.get(key)
            return issue is not None and self._same(label, issue.label)
        if kind == DUPLICATES:
            return key in self.duplicates
        return True

    def rank(self, kind: str, path: str) -> tuple[int, int]:
        """Where ``path`` goes under filter ``kind``: most likely error first; a group's members adjacent."""
        key = os.path.normpath(path)
        if kind == LABEL_ERRORS and key in self.issues:
            return (self.issues[key].rank, 0)
        if kind == DUPLICATES and key in self.duplicates:
            found = self.duplicates[key]
            return (found.group, found.position)
        return (1 << 30, 0)

    def suggestion(self, path: str) -> str | None:
        """The class the audit suggests for a flagged file (``None``: not flagged)."""
        issue = self.issues.get(os.path.normpath(path))
        return issue.suggested if issue is not None else None

    def describe(self, path: str, label: str | None) -> str:
        """What the audit says about a file labeled ``label`` now, in words (empty: nothing).

        A label error already fixed (its label changed) is not mentioned.
        """
        key = os.path.normpath(path)
        parts = []
        issue = self.issues.get(key)
        if issue is not None and self._same(label, issue.label):
            rank, score = issue.rank + 1, issue.score
            said = f"looks like {self.words(issue.suggested)} (likely label error #{rank}, score {score:.2f})"
            parts.append(f"labeled {self.words(issue.label)}; {said}" if self.multilabel else said)
        duplicate = self.duplicates.get(key)
        if duplicate is not None:
            kind = KIND_WORDS.get(duplicate.kind, duplicate.kind)
            parts.append(
                f"near-duplicate group {duplicate.group + 1}: {kind} "
                f"({duplicate.size} items, similarity {duplicate.similarity:.3f})"
            )
        return "; ".join(parts)

    def words(self, label: str) -> str:
        """A label as the user reads it: a phase set ``A;B`` as ``A + B``."""
        return " + ".join(label.split(";")) if self.multilabel else label

    def _same(self, label: str | None, flagged: str) -> bool:
        if self.multilabel and label is not None:
            return set(filter(None, label.split(";"))) == set(filter(None, flagged.split(";")))
        return label == flagged


def save_report(run_dir: Path | str, report: dict[str, Any]) -> Path:
    """Write ``report`` (``audit --json``'s object) to the run folder's ``audit.json``, atomically."""
    path = Path(run_dir) / AUDIT_FILE
    write_text_atomic(path, json.dumps({**report, "created": time.time()}, indent=1))
    return path


def load_findings(run_dir: Path | str) -> AuditFindings | None:
    """The run's stored audit (``None``: never audited, or the file is unreadable)."""
    try:
        report = json.loads((Path(run_dir) / AUDIT_FILE).read_text(encoding="utf-8"))
        return AuditFindings.from_json(Path(run_dir), report)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def latest_findings(run_dirs: Iterable[Path | str]) -> AuditFindings | None:
    """The newest stored audit among ``run_dirs`` (by the time it was made)."""
    best: tuple[float, Path] | None = None
    for run_dir in run_dirs:
        path = Path(run_dir) / AUDIT_FILE
        try:
            made = path.stat().st_mtime
        except OSError:
            continue
        if best is None or made > best[0]:
            best = (made, Path(run_dir))
    return load_findings(best[1]) if best is not None else None


def audit_folder(folder: Path | str, run_dir: Path | str) -> Path:
    """Where a project's audit with ``run_dir`` is kept: the run's folder; an XRD project's own folder."""
    from labeltune.core.xrd.xrd_project import is_xrd_project

    return Path(folder) if is_xrd_project(folder) else Path(run_dir)


def audit_project(
    folder: Path | str,
    run_dir: Path | str,
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> dict[str, Any]:
    """Audit a project's labeled images (or patterns) with one of its runs; store and return the report.

    Slow (features, out-of-fold heads): call it in a worker thread. The report is ``audit --json``'s
    object plus ``n_items`` and ``skipped`` (how many files could not be used). It is stored where
    :func:`audit_folder` says (an XRD report also names its model and says its labels are phase sets).
    """
    from labeltune.core.audit_run import audit, image_inputs, xrd_inputs
    from labeltune.core.datasets import scan
    from labeltune.core.xrd.xrd_project import XrdProject, is_xrd_project

    extra: dict[str, Any] = {}
    if is_xrd_project(folder):
        wavelength = XrdProject.open(folder).wavelength
        inputs = xrd_inputs(run_dir, folder, wavelength, progress, stop_event)
        extra = {"run": str(run_dir), "multilabel": True}
    else:
        inputs = image_inputs(run_dir, scan(folder), device, progress, stop_event)
    report = audit(inputs)
    check_stop(stop_event)  # stopped while the heads were fitted: nothing is stored
    save_report(audit_folder(folder, run_dir), {**report.to_json(), **extra})
    return {**report.to_json(), "n_items": report.n_items, "skipped": len(report.skipped)}
