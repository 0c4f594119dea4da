"""The XRD page's *Find likely label errors…*: audit the labeled patterns with the project's model.

The audit (core/audit_store.py ``audit_project``: the network's pooled embedding, out-of-fold confident
learning on phase sets and near-duplicates, ADR 26) runs in a worker (:class:`XrdAudit`, the image side's
``RunJob``); the report is kept as ``audit.json`` in the project folder, so it survives reopening (ADR 36).
The pattern list then offers the orders *Likely label errors* and *Near-duplicates*; this panel's lower
line says what the audit found about the pattern shown ("labelled A + B; looks like A + C …") and its
button (key T) takes the suggested phase set as the label.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.label_audit import LabelAudit
from labeltune.ui.run_details import AUDIT_TEXT
from labeltune.ui.runs_list import RunDetails
from labeltune.ui.session import ProjectSession

TAKE_TEXT = "Take the suggested phases (T)"


class XrdAudit(LabelAudit):
    """The image side's audit job (ui/label_audit.py) on the XRD project the page shows."""

    items = "patterns"
    where_text = " Order the patterns by <i>Likely label errors</i> or <i>Near-duplicates</i>."

    def __init__(
        self,
        project: Callable[[], XrdProject | None],
        session: ProjectSession,
        button: QPushButton,
        label: QLabel,
        parent: QWidget,
    ) -> None:
        """``project``: the XRD project the page shows (the session's ``project`` is image-only)."""
        super().__init__(session, button, label, parent)
        self._project = project

    def project_folder(self) -> Path | None:
        """The folder of the XRD project shown."""
        project = self._project()
        return None if project is None else project.folder


class XrdAuditPanel(QWidget):
    """*Find likely label errors…* with its progress line; what the audit says of the pattern shown."""

    take_requested = Signal()  # the user takes the suggested phase set as the label

    def __init__(
        self, session: ProjectSession, project: Callable[[], XrdProject | None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._project = project
        self.audit_button = QPushButton(AUDIT_TEXT)
        self.audit_button.setObjectName("xrdAuditButton")
        self.audit_button.setToolTip(
            "Judge every labeled pattern by the model's out-of-fold opinion (classes with fewer than 5 "
            "labeled patterns are not judged) and find patterns measured twice"
        )
        self.status_label = QLabel()
        self.status_label.setObjectName("xrdAuditStatus")
        self.status_label.setWordWrap(True)
        self.finding_label = QLabel()
        self.finding_label.setObjectName("xrdAuditFinding")
        self.finding_label.setWordWrap(True)
        self.take_button = QPushButton(TAKE_TEXT)
        self.take_button.setObjectName("xrdAuditTake")
        self.take_button.setToolTip("Label the pattern with the phase set the audit suggests (undoable)")
        self.job = XrdAudit(project, session, self.audit_button, self.status_label, self)
        self.controller = self.job.controller  # tests and the page wait on its signals
        top = QHBoxLayout()
        top.addWidget(self.audit_button)
        top.addWidget(self.status_label, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.finding_label, 1)
        bottom.addWidget(self.take_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(bottom)
        self.audit_button.clicked.connect(self.toggle)
        self.take_button.clicked.connect(self.take_requested)
        self.show_finding("", False)

    def toggle(self) -> None:
        """Start the audit with the project's model (or stop the running one)."""
        project = self._project()
        model = None if project is None else project.model_dir
        if model is None and not self.controller.is_running():
            self.status_label.setText("Choose or fine-tune a model first: the audit judges with it.")
            return
        self.job.toggle(RunDetails(run={"path": str(model)}))

    def show_finding(self, said: str, can_take: bool) -> None:
        """Say what the audit found about the pattern shown (empty: nothing); offer the suggestion."""
        self.finding_label.setText(
            f"<span style='color:#b00020'>⚠ <b>{html.escape(said)}</b></span>" if said else ""
        )
        self.finding_label.setVisible(bool(said))
        self.take_button.setVisible(can_take)

    def stop(self) -> None:
        """Stop a running audit (its project is being closed)."""
        self.job.stop()

    def shutdown(self) -> None:
        """Stop a running audit and wait for it (the window is closing)."""
        self.job.shutdown()


__all__ = ["XrdAudit", "XrdAuditPanel"]
