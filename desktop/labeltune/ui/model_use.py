"""Use a run's model from the app: *Predict a folder…*, *Export…* (ONNX or TorchScript with its model card).

:class:`UseModelBar` is the row of the two buttons and a line saying how the last export went; the run's
view sets its run (:meth:`UseModelBar.set_run`). Predicting opens
:class:`~labeltune.ui.predict_dialog.PredictFolderDialog`; exporting asks for the file (its type picks the
format) and runs :func:`labeltune.core.export.export_model` in a worker thread: the model, checked against
PyTorch, and ``<file>.card.json`` / ``<file>.card.md`` beside it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from labeltune.ui.errors import show_error
from labeltune.ui.predict_dialog import PredictFolderDialog
from labeltune.workers.tasks import FunctionWorker, TaskController

EXPORT_FILTERS = {"ONNX (*.onnx)": "onnx", "TorchScript (*.pt)": "torchscript"}
EXPORT_TEXT = "E&xport…"


def export_format(path: str, chosen_filter: str) -> str:
    """The format of an export: the file's suffix decides, else the file type chosen in the dialog."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".pt", ".pth", ".torchscript"):
        return "torchscript"
    return EXPORT_FILTERS.get(chosen_filter, "onnx")


class UseModelBar(QWidget):
    """*Predict a folder…* and *Export…* for one finished run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir: Path | None = None
        self.title = ""
        self.dialog: PredictFolderDialog | None = None
        self.export_result: Any = None  # the ExportResult of the last export
        self.predict_button = QPushButton("Predict a &folder…")
        self.predict_button.setToolTip(
            "Predict the images of a folder with this model: a CSV, and copies sorted into class folders"
        )
        self.export_button = QPushButton(EXPORT_TEXT)
        self.export_button.setToolTip(
            "Save this model as ONNX or TorchScript, with its model card, to use it outside LabelTune"
        )
        self.export_label = QLabel()
        self.export_label.setObjectName("exportLabel")
        self.export_label.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.predict_button)
        layout.addWidget(self.export_button)
        layout.addWidget(self.export_label, 1)
        self.controller = TaskController(self)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.failed.connect(self._on_controller_failed)
        self.controller.running_changed.connect(self._on_controller_running_changed)
        self.predict_button.clicked.connect(self.open_predict_dialog)
        self.export_button.clicked.connect(self.export)
        self.set_run(None)

    def set_run(self, run_dir: Path | str | None, title: str = "") -> None:
        """Offer the model of ``run_dir`` (None, or a run without a model: the buttons are off)."""
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.title = title
        usable = self.run_dir is not None and (self.run_dir / "model.safetensors").is_file()
        self.predict_button.setEnabled(usable)
        self.export_button.setEnabled(usable and not self.controller.is_running())
        if not self.controller.is_running():
            self.export_label.clear()

    def open_predict_dialog(self) -> PredictFolderDialog | None:
        """Open the *Predict a folder* dialog for the run (window-modal; returned for tests)."""
        if self.run_dir is None:
            return None
        self.dialog = PredictFolderDialog(self.run_dir, self.title, self)
        self.dialog.open()
        return self.dialog

    def export(self) -> None:
        """Ask for the file, then export the run's model in a worker thread."""
        if self.run_dir is None or self.controller.is_running():
            return
        default = str(Path.home() / f"{self.run_dir.name}.onnx")
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export the model", default, ";;".join(EXPORT_FILTERS)
        )
        if not path:
            return
        run_dir, fmt = self.run_dir, export_format(path, chosen)
        out = Path(path)
        if not out.suffix:
            out = out.with_suffix(".onnx" if fmt == "onnx" else ".pt")

        def export(progress: Any, _stop: Any) -> Any:
            from labeltune.core.export import export_model

            return export_model(run_dir, out, fmt, progress)

        self.export_result = None
        self.export_label.setText(f"Exporting to {html.escape(str(out))}…")
        self.controller.start(FunctionWorker(export))

    def shutdown(self) -> None:
        """Wait for a running export and stop a running prediction (the window is closing)."""
        if self.dialog is not None:
            self.dialog.controller.shutdown()
        self.controller.shutdown()

    def _on_controller_running_changed(self, running: bool) -> None:
        self.export_button.setEnabled(not running and self.run_dir is not None)

    def _on_controller_finished(self, result: Any) -> None:
        self.export_result = result
        self.export_label.setText(
            f"Exported to {html.escape(str(result.path))}, with its model card "
            f"{html.escape(result.markdown_path.name if result.markdown_path else result.card_path.name)} "
            f"(checked against PyTorch: max difference {result.max_abs_diff:.1e})."
        )

    def _on_controller_failed(self, message: str, details: str) -> None:
        self.export_label.setText("The export failed.")
        show_error(self, "Cannot export the model", message, details)
