"""The "Distill into a smaller model…" dialog: pick the teacher runs and the student's network.

The dialog only gathers the choice; the Train tab trains the student in its worker, like any run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.backbones import BACKBONES, DEFAULT_BACKBONE
from labeltune.core.train_config import TrainConfig

PATH_ROLE = Qt.ItemDataRole.UserRole + 1


class DistillDialog(QDialog):
    """Teachers (finished runs knowing the chosen run's classes, that one checked) and a student backbone."""

    def __init__(self, runs: list[dict[str, Any]], chosen: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Distill into a smaller model")
        self.teacher_list = QListWidget()
        self.teacher_list.setObjectName("teacherList")
        classes = next(
            (set((r.get("metrics") or {}).get("classes") or ()) for r in runs if Path(r["path"]) == chosen),
            set(),
        )
        for run in runs:
            summary = run.get("metrics") or {}
            path = Path(str(run.get("path", "")))
            if set(summary.get("classes") or ()) != classes or not (path / "model.safetensors").is_file():
                continue
            accuracy = summary.get("val_accuracy")
            score = f"{accuracy:.3f}" if isinstance(accuracy, (int, float)) else "–"
            item = QListWidgetItem(f"{run['id']} · {run.get('backbone', '')} · accuracy {score}")
            item.setData(PATH_ROLE, str(path))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if path == chosen else Qt.CheckState.Unchecked)
            self.teacher_list.addItem(item)
        self.student_combo = QComboBox()
        self.student_combo.setObjectName("studentBackbone")
        for name, spec in BACKBONES.items():
            self.student_combo.addItem(spec.title, name)
        self.student_combo.setCurrentIndex(self.student_combo.findData(DEFAULT_BACKBONE))
        self.size_spin = QSpinBox()
        self.size_spin.setRange(0, 512)
        self.size_spin.setSpecialValueText("the network's own")
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("A smaller input is faster; 0: the network's own size")
        form = QFormLayout()
        form.addRow("Student network", self.student_combo)
        form.addRow("Student input size", self.size_spin)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Distill")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Teachers (runs that know the same classes):"))
        layout.addWidget(self.teacher_list)
        layout.addLayout(form)
        layout.addWidget(self.buttons)

    def teachers(self) -> list[Path]:
        """The checked runs."""
        items = (self.teacher_list.item(i) for i in range(self.teacher_list.count()))
        return [
            Path(i.data(PATH_ROLE))
            for i in items
            if i is not None and i.checkState() == Qt.CheckState.Checked
        ]

    def config(self) -> TrainConfig:
        """The student's settings (the teachers' split is kept: core/add_classes.merge_with_runs)."""
        from labeltune.core.distill import distill_config

        size = self.size_spin.value() or None
        return distill_config(
            [str(t) for t in self.teachers()], self.student_combo.currentData(), input_size=size
        )
