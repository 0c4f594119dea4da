"""Getting a backbone's missing ImageNet weights: download, import, the bundled network, or random weights.

The dialog offers to download the official file, to import one downloaded elsewhere, to train the network
whose weights ship with LabelTune instead, or to train from random weights.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.backbones import DEFAULT_BACKBONE, get_spec
from labeltune.core.progress import Progress
from labeltune.core.weights import (
    download_weights,
    fetch_instructions,
    import_weights,
    weights_present,
    weights_url,
)
from labeltune.ui.errors import show_error
from labeltune.workers.tasks import FunctionWorker, TaskController

#: What the dialog ended with (``outcome``): the weights are now present, train from random weights, or
#: train the backbone whose ImageNet weights ship with LabelTune instead (:data:`BUNDLED`).
IMAGENET = "imagenet"
RANDOM = "none"
BUNDLED = "bundled"


class WeightsDialog(QDialog):
    """Download or import the ImageNet weights of ``backbone``; or choose random weights instead.

    Accepted with ``outcome`` :data:`IMAGENET` once the weights are in the store, :data:`BUNDLED` when the
    user chose the network that works offline instead, or :data:`RANDOM` when they chose to train without
    pretraining; rejected when cancelled.
    """

    def __init__(self, backbone: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backbone = backbone
        self.outcome = ""
        self._close_when_done = False
        spec = get_spec(backbone)
        self.setWindowTitle(f"ImageNet weights for {spec.title}")
        self.setObjectName("weightsDialog")
        self.controller = TaskController(self)

        bundled = get_spec(DEFAULT_BACKBONE)
        self.bundled_available = backbone != DEFAULT_BACKBONE and weights_present(DEFAULT_BACKBONE)
        offline = (
            f"train <b>{html.escape(bundled.title)}</b> instead, whose ImageNet weights come with LabelTune "
            "(works offline, usually as accurate), "
            if self.bundled_available
            else ""
        )
        intro = QLabel(
            f"Training from ImageNet weights needs the pretrained <b>{html.escape(spec.title)}</b> weights "
            f"({spec.weights_mb:.0f} MB), which are not on this computer yet.<br><br>"
            f"Download them now, import a file you downloaded elsewhere, {offline}or train from random "
            "weights (much less accurate unless you have many images)."
        )
        intro.setWordWrap(True)
        self.manual_label = QLabel(
            f"<small>Without internet here: {html.escape(fetch_instructions(backbone, cli=False))}.</small>"
        )
        self.manual_label.setWordWrap(True)
        self.manual_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress_bar = QProgressBar()
        self.progress_bar.setToolTip("Download progress")
        self.progress_bar.setVisible(False)
        self.status_label = QLabel()
        self.status_label.setObjectName("weightsStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.download_button = QPushButton("&Download")
        self.download_button.setToolTip(f"Download {weights_url(backbone)} and check its checksum")
        self.download_button.setDefault(True)
        self.import_button = QPushButton("&Import file…")
        self.import_button.setToolTip(
            f"Use a {spec.weights_filename} (.pth) or .safetensors file you already have; it is checked first"
        )
        self.random_button = QPushButton("Train with &random weights")
        self.random_button.setToolTip("Start from untrained weights instead (no download needed)")
        self.bundled_button = QPushButton(f"&Use {bundled.title}")
        self.bundled_button.setToolTip(
            f"Train {bundled.title} instead: its ImageNet weights ship with LabelTune, nothing to download"
        )
        self.bundled_button.setVisible(self.bundled_available)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the download, or close without training")
        buttons = QHBoxLayout()
        for button in (self.download_button, self.import_button, self.bundled_button, self.random_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.manual_label)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addLayout(buttons)
        self.setMinimumWidth(640)
        self._fit()

        self.download_button.clicked.connect(self.start_download)
        self.import_button.clicked.connect(self.choose_file)
        self.random_button.clicked.connect(self._on_random_button_clicked)
        self.bundled_button.clicked.connect(self._on_bundled_button_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.controller.progressed.connect(self._on_controller_progressed)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.stopped.connect(self._on_controller_stopped)
        self.controller.failed.connect(self._on_controller_failed)
        self.controller.running_changed.connect(self._on_controller_running_changed)

    # -- actions ------------------------------------------------------------------------------------
    def start_download(self) -> None:
        """Download the weights in a worker thread."""
        name = self.backbone

        def download(progress: Callable[[Progress], None], stop: threading.Event) -> Path:
            return download_weights(name, progress, stop)

        self._set_status(f"Downloading from {weights_url(name)}…")
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setVisible(True)
        self.controller.start(FunctionWorker(download))

    def choose_file(self) -> None:
        """Ask for a weights file and import it."""
        spec = get_spec(self.backbone)
        file, _ = QFileDialog.getOpenFileName(
            self,
            f"Weights file for {spec.title}",
            str(Path.home()),
            f"Weights (*.pth *.pt *.safetensors);;{spec.weights_filename} ({spec.weights_filename})"
            ";;All files (*)",
        )
        if file:
            self.import_file(Path(file))

    def import_file(self, file: Path) -> None:
        """Validate and store ``file`` in a worker thread."""
        name = self.backbone

        def load(_progress: Callable[[Progress], None], _stop: threading.Event) -> Path:
            return import_weights(name, file)

        self._set_status(f"Checking and importing {file.name}…")
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setVisible(True)
        self.controller.start(FunctionWorker(load))

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self._fit()

    def _fit(self) -> None:
        """Grow to fit the wrapped text (word-wrapped labels do not resize their dialog by themselves)."""
        layout = self.layout()
        if layout is not None:
            width = max(self.width(), self.minimumWidth())
            height = (
                layout.heightForWidth(width) if layout.hasHeightForWidth() else layout.sizeHint().height()
            )
            self.resize(width, max(height, self.height() if self.isVisible() else 0))

    def is_busy(self) -> bool:
        """Whether a download or import is running."""
        return self.controller.is_running()

    # -- closing ------------------------------------------------------------------------------------
    def reject(self) -> None:
        """Cancel: stop a running download first, then close once it has stopped."""
        if self.controller.is_running():
            self._close_when_done = True
            self.controller.stop()
            return
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window cancels like the Cancel button."""
        if self.controller.is_running():
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop and wait for a running download (when the application closes)."""
        self.controller.shutdown()

    # -- slots --------------------------------------------------------------------------------------
    def _on_random_button_clicked(self) -> None:
        self.outcome = RANDOM
        self.accept()

    def _on_bundled_button_clicked(self) -> None:
        self.outcome = BUNDLED
        self.accept()

    def _on_cancel_button_clicked(self) -> None:
        if self.controller.is_running():
            self._set_status("Stopping…")
            self.controller.stop()
        else:
            self.reject()

    def _on_controller_running_changed(self, running: bool) -> None:
        for button in (self.download_button, self.import_button, self.bundled_button, self.random_button):
            button.setEnabled(not running)
        self.cancel_button.setText("Stop" if running else "Cancel")
        if not running:
            self.progress_bar.setVisible(False)

    def _on_controller_progressed(self, progress: Progress) -> None:
        if progress.total > 0:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(round(1000 * progress.done / progress.total))
            self.progress_bar.setFormat(f"{progress.done / 2**20:.1f} of {progress.total / 2**20:.1f} MB")
        else:
            self.progress_bar.setRange(0, 0)

    def _on_controller_stopped(self) -> None:
        self._set_status("Download stopped; nothing was stored.")
        if self._close_when_done:
            super().reject()

    def _on_controller_finished(self, result: Path) -> None:
        self.outcome = IMAGENET
        self._set_status(f"The weights are stored in {result}.")
        self.accept()

    def _on_controller_failed(self, message: str, details: str) -> None:
        self._set_status(message)
        if self._close_when_done:
            super().reject()
            return
        show_error(self, "Cannot get the weights", message, details)
