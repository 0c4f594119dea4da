"""*Predict a folder…*: a run's model on a folder of images or patterns, in a worker, with progress and Stop.

The dialog asks for the folder, an optional CSV and an optional folder to sort copies into (class folders,
``uncertain/`` below the threshold, ``unfamiliar/``); :func:`labeltune.core.use_model.predict_folder` does
the work in a worker thread (the GUI thread never runs the model) and the dialog shows the summary: counts
per folder, skipped files with their reasons, and a button to open the output folder. Image runs (Results
tab) and XRD runs (XRD ▸ Models) use the same dialog.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labeltune.ui.errors import show_error
from labeltune.ui.path_row import path_row
from labeltune.workers.tasks import FunctionWorker, TaskController

PREDICT_TEXT = "&Predict"
MAX_SKIPPED_SHOWN = 10


def summary_text(result: Any) -> str:
    """A :class:`~labeltune.core.use_model.FolderPrediction` in words (rich text)."""
    noun = "patterns" if result.domain == "xrd" else "images"
    parts = [f"<b>Predicted {result.predicted} {noun}.</b>"]
    if result.counts:
        parts.append(
            "<br>" + ", ".join(f"{html.escape(name)}: {count}" for name, count in result.counts.items()) + "."
        )
    if result.csv_path is not None:
        parts.append(f"<br>Wrote {html.escape(str(result.csv_path))}.")
    if result.sort_dir is not None:
        parts.append(f"<br>Copied {result.copied} files into {html.escape(str(result.sort_dir))}.")
    if result.skipped:
        files = "file" if len(result.skipped) == 1 else "files"
        parts.append(f"<br>Skipped {len(result.skipped)} {files}:")
        for path, why in result.skipped[:MAX_SKIPPED_SHOWN]:
            parts.append(f"<br>· {html.escape(Path(path).name)}: {html.escape(why)}")
        if len(result.skipped) > MAX_SKIPPED_SHOWN:
            parts.append(f"<br>· and {len(result.skipped) - MAX_SKIPPED_SHOWN} more")
    return "".join(parts)


class PredictFolderDialog(QDialog):
    """Predict a folder with the model in ``run_dir``; write a CSV and sort copies as the user asks."""

    def __init__(
        self, run_dir: Path, title: str = "", parent: QWidget | None = None, wavelength: float | None = None
    ) -> None:
        """``title`` names the model; ``wavelength`` (Å) means an XRD run: for files that state none."""
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.wavelength = QDoubleSpinBox()
        self.wavelength.setRange(0.1, 5.0)
        self.wavelength.setDecimals(5)
        self.wavelength.setValue(wavelength or 1.5406)
        self.wavelength.setToolTip("The X-ray wavelength (Å) of pattern files that do not state theirs")
        self.result: Any = None  # the FolderPrediction of the last finished prediction
        self.setWindowTitle(f"Predict a folder with {title or self.run_dir.name}")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("The folder to predict (subfolders too)")
        self.folder_button = QPushButton("Choose…")
        self.csv_check = QCheckBox("Write a CSV")
        self.csv_check.setChecked(True)
        self.csv_edit = QLineEdit()
        self.csv_button = QPushButton("Choose…")
        self.sort_check = QCheckBox("Sort copies into class folders")
        self.sort_check.setToolTip(
            "Copies (the originals stay) into one folder per answer, uncertain/ below the threshold and "
            "unfamiliar/ for inputs unlike the training data"
        )
        self.sort_edit = QLineEdit()
        self.sort_button = QPushButton("Choose…")
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setValue(0.5)
        self.threshold.setToolTip("Answers with a calibrated confidence below this go to uncertain/")
        form = QFormLayout()
        form.addRow("Folder", path_row(self.folder_edit, self.folder_button))
        form.addRow(self.csv_check, path_row(self.csv_edit, self.csv_button))
        form.addRow(self.sort_check, path_row(self.sort_edit, self.sort_button))
        form.addRow("Uncertain below", self.threshold)
        if wavelength is not None:
            form.addRow("Wavelength (Å)", self.wavelength)
        self._xrd = wavelength is not None
        self.progress_bar = QProgressBar()
        self.progress_bar.setVisible(False)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.summary_label = QLabel()
        self.summary_label.setObjectName("predictSummary")
        self.summary_label.setWordWrap(True)
        self.run_button = QPushButton(PREDICT_TEXT)
        self.run_button.setDefault(True)
        self.open_button = QPushButton("&Open output folder")
        self.open_button.setVisible(False)
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.summary_label, 1)
        layout.addLayout(buttons)
        self.resize(620, 320)

        self.controller = TaskController(self)
        self.controller.progressed.connect(self._on_controller_progressed)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.stopped.connect(self._on_controller_stopped)
        self.controller.failed.connect(self._on_controller_failed)
        self.controller.running_changed.connect(self._on_controller_running_changed)
        self.folder_button.clicked.connect(self._on_folder_button_clicked)
        self.folder_edit.editingFinished.connect(self._on_folder_edit_editing_finished)
        self.csv_button.clicked.connect(self._on_csv_button_clicked)
        self.sort_button.clicked.connect(self._on_sort_button_clicked)
        self.run_button.clicked.connect(self._on_run_button_clicked)
        self.open_button.clicked.connect(self.open_output)
        self.close_button.clicked.connect(self.reject)
        self.sort_check.toggled.connect(self._update_enabled)
        self.csv_check.toggled.connect(self._update_enabled)
        self._update_enabled()

    def set_folder(self, folder: Path) -> None:
        """Predict ``folder``; the CSV and the sorted copies are proposed beside it (not inside it)."""
        self.folder_edit.setText(str(folder))
        self._propose_outputs(folder)

    def _propose_outputs(self, folder: Path) -> None:
        """Fill the empty CSV and sorted-copies fields with places beside ``folder``."""
        if not self.csv_edit.text().strip():
            self.csv_edit.setText(str(folder.parent / f"{folder.name}-predictions.csv"))
        if not self.sort_edit.text().strip():
            self.sort_edit.setText(str(folder.parent / f"{folder.name}-sorted"))

    def start(self) -> None:
        """Start predicting with the dialog's choices (a bad choice is shown as an error)."""
        if self.controller.is_running():
            return
        folder = Path(self.folder_edit.text().strip()).expanduser()
        if not self.folder_edit.text().strip() or not folder.is_dir():
            show_error(self, "Cannot predict", f"Choose a folder to predict ({folder} is not one).")
            return
        self._propose_outputs(folder)  # a folder typed in, then a field emptied: beside it again
        for check, edit, what in (
            (self.csv_check, self.csv_edit, "CSV file"),
            (self.sort_check, self.sort_edit, "folder"),
        ):
            if check.isChecked() and not edit.text().strip():
                show_error(self, "Cannot predict", f"Choose the {what} to write, or untick it.")
                return
        csv_path = Path(self.csv_edit.text().strip()).expanduser() if self.csv_check.isChecked() else None
        sort_dir = Path(self.sort_edit.text().strip()).expanduser() if self.sort_check.isChecked() else None
        run_dir, threshold = self.run_dir, self.threshold.value()
        wavelength = self.wavelength.value() if self._xrd else None

        def predict(progress: Any, stop: Any) -> Any:
            from labeltune.core.use_model import predict_folder

            return predict_folder(
                run_dir,
                [folder],
                csv_path=csv_path,
                sort_dir=sort_dir,
                min_confidence=threshold,
                wavelength=wavelength,
                progress=progress,
                stop_event=stop,
            )

        self.result = None
        self.summary_label.clear()
        self.open_button.setVisible(False)
        self.status_label.setText("Loading the model…")
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setVisible(True)
        self.controller.start(FunctionWorker(predict))

    def stop(self) -> None:
        """Stop a running prediction (nothing half-written is left)."""
        self.controller.stop()

    def open_output(self) -> None:
        """Open the folder of the sorted copies (or of the CSV) in the file manager."""
        folder = None if self.result is None else self.result.output_folder
        if folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def done(self, code: int) -> None:
        """Closing the dialog stops a running prediction and waits for it."""
        self.controller.shutdown()
        super().done(code)

    def _update_enabled(self) -> None:
        running = self.controller.is_running()
        for widget in (
            self.folder_edit,
            self.folder_button,
            self.csv_check,
            self.sort_check,
            self.threshold,
            self.wavelength,
        ):
            widget.setEnabled(not running)
        for check, widgets in (
            (self.csv_check, (self.csv_edit, self.csv_button)),
            (self.sort_check, (self.sort_edit, self.sort_button)),
        ):
            for widget in widgets:
                widget.setEnabled(check.isChecked() and not running)

    def _on_folder_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to predict", self.folder_edit.text())
        if folder:
            self.set_folder(Path(folder))

    def _on_folder_edit_editing_finished(self) -> None:
        text = self.folder_edit.text().strip()
        if text and Path(text).expanduser().is_dir():  # typed or pasted: propose as Choose… does
            self._propose_outputs(Path(text).expanduser())

    def _on_csv_button_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Write the predictions to", self.csv_edit.text(), "CSV (*.csv)"
        )
        if path:
            self.csv_edit.setText(path if path.lower().endswith(".csv") else path + ".csv")

    def _on_sort_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sort copies into", self.sort_edit.text())
        if folder:
            self.sort_edit.setText(folder)

    def _on_run_button_clicked(self) -> None:
        if self.controller.is_running():
            self.stop()
        else:
            self.start()

    def _on_controller_running_changed(self, running: bool) -> None:
        self.run_button.setText("&Stop" if running else PREDICT_TEXT)
        if not running:
            self.progress_bar.setVisible(False)
        self._update_enabled()

    def _on_controller_progressed(self, progress: Any) -> None:
        if progress.total:
            self.progress_bar.setRange(0, progress.total)
            self.progress_bar.setValue(progress.done)
            self.status_label.setText(f"Predicting… {progress.done} of {progress.total}")

    def _on_controller_finished(self, result: Any) -> None:
        self.result = result
        self.status_label.setText("Done.")
        self.summary_label.setText(summary_text(result))
        self.open_button.setVisible(result.output_folder is not None)

    def _on_controller_stopped(self) -> None:
        self.status_label.setText(
            "Stopped: no CSV was written"
            + ("; the copies made before the Stop stay." if self.sort_check.isChecked() else ".")
        )

    def _on_controller_failed(self, message: str, details: str) -> None:
        self.status_label.setText("The prediction failed.")
        show_error(self, "Cannot predict the folder", message, details)
