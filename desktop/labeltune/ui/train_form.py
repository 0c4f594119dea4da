"""The training settings form: backbone, strategy, epochs, weights, device and advanced options.

The form lays out its widgets and reacts to them; its values (the choices it shows, remembers and turns
into a ``TrainConfig``) are ui/train_form_values.py's mixin.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QDoubleValidator, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.backbones import DEFAULT_BACKBONE, get_spec
from labeltune.core.progress import Progress
from labeltune.core.train_config import DEFAULT_EPOCHS, DEFAULT_LR
from labeltune.ui.backbone_picker import BackbonePicker
from labeltune.ui.errors import show_error
from labeltune.ui.group_by import SYNC_LIMIT, GroupByBox
from labeltune.ui.session import ProjectSession
from labeltune.ui.train_form_values import WEIGHTS_TEXT, TrainFormValues
from labeltune.workers.tasks import FunctionWorker, TaskController

STRATEGY_TEXT = {
    "features": (
        "Features — fastest",
        "Keeps the pretrained network as it is and trains only a new last layer on its features: "
        "seconds to minutes, and the best start for small data sets.",
    ),
    "partial": (
        "Partial — fine-tune the top",
        "Also retrains the network's top block(s) (AlexNet: its last two fully connected layers): "
        "slower, can fit your images better when you have a few hundred per class.",
    ),
    "full": (
        "Full — retrain everything",
        "Retrains every layer: the slowest (a GPU helps a lot); worth it with many images that look "
        "unlike everyday photos.",
    ),
}
DEVICE_TEXT = {
    "auto": "Automatic (GPU if there is one)",
    "cpu": "CPU",
    "cuda": "NVIDIA GPU (CUDA)",
    "mps": "Apple GPU (MPS)",
}


def detect_devices(_progress: Callable[[Progress], None], _stop: threading.Event) -> dict[str, str]:
    """The devices PyTorch can use here: a worker job (``core.device.available_devices`` imports torch)."""
    from labeltune.core.device import available_devices

    return available_devices()


def device_summary(found: dict[str, str]) -> str:
    """One line about the devices found."""
    if "cuda" in found:
        return f"GPU: {found['cuda']}"
    if "mps" in found:
        return f"GPU: {found['mps']}"
    return f"No GPU found: training runs on the {found.get('cpu', 'CPU')}"


class TrainSettingsForm(TrainFormValues, QWidget):
    """All the choices of a training run; remembered in the settings file and the project."""

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.devices: dict[str, str] | None = None
        self._device_controller = TaskController(self)
        self._samples_controller = TaskController(self)  # reads a large project's samples for Group by
        self._samples_controller.finished.connect(self._on_samples_controller_finished)
        self._samples_controller.failed.connect(self._on_samples_controller_failed)
        self._weights_file = ""
        self.weights_dialog: Any = None  # the download/import dialog opened from the picker

        self.backbone_picker = BackbonePicker()
        model_box = QGroupBox("Network")
        QVBoxLayout(model_box).addWidget(self.backbone_picker)

        self.strategy_combo = QComboBox()
        for key, (title, explanation) in STRATEGY_TEXT.items():
            self.strategy_combo.addItem(title, key)
            self.strategy_combo.setItemData(
                self.strategy_combo.count() - 1, explanation, Qt.ItemDataRole.ToolTipRole
            )
        self.strategy_combo.setToolTip("How much of the pretrained network is retrained on your images")
        self.strategy_label = QLabel()
        self.strategy_label.setWordWrap(True)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(0, 1000)  # 0 shows as the strategy's default
        self.epochs_spin.setToolTip("How many times training goes through all training images")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 1024)
        self.batch_spin.setToolTip("Images per training step; lower it if the GPU runs out of memory")
        self.lr_edit = QLineEdit()
        validator = QDoubleValidator(0.0, 10.0, 8, self.lr_edit)
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.lr_edit.setValidator(validator)
        self.lr_edit.setToolTip("Step size of learning; leave empty for the strategy's default")
        self.augment_check = QCheckBox("Augment images (flips, crops, colour)")
        self.augment_check.setToolTip(
            "Show the network slightly changed copies of your images during training, so it generalises "
            "better (used by the 'full' strategy)"
        )
        self.weights_combo = QComboBox()
        for key, text in WEIGHTS_TEXT.items():
            self.weights_combo.addItem(text, key)
        self.weights_combo.addItem("From file…", "file")
        self.weights_combo.setToolTip(
            "Start from ImageNet-pretrained weights (recommended), from random weights, or from a "
            ".pth/.safetensors file"
        )
        self.device_combo = QComboBox()
        for key, text in DEVICE_TEXT.items():
            self.device_combo.addItem(text, key)
        self.device_combo.setToolTip("Where training runs; a GPU is many times faster for 'full'")
        self.device_label = QLabel("Looking for a GPU…")
        self.device_label.setWordWrap(True)
        self.device_label.setToolTip("The devices PyTorch can use on this computer")
        training_box = QGroupBox("Training")
        form = QFormLayout(training_box)
        # Mnemonics: Alt+S is Start training, Alt+E the Edit menu, Alt+L the Label tab.
        form.addRow("Strateg&y:", self.strategy_combo)
        form.addRow(self.strategy_label)
        form.addRow("E&pochs:", self.epochs_spin)
        form.addRow("&Batch size:", self.batch_spin)
        form.addRow("Learni&ng rate:", self.lr_edit)
        form.addRow(self.augment_check)
        form.addRow("&Weights:", self.weights_combo)
        form.addRow("&Device:", self.device_combo)
        form.addRow(self.device_label)
        #: Shown when PyTorch sees several CUDA GPUs: the run goes to torchrun (workers/torchrun.py).
        self.gpus_check = QCheckBox("Use all GPUs")
        self.gpus_check.setToolTip(
            "Train on every GPU of this computer at once (PyTorch's torchrun, DistributedDataParallel): "
            "each step's batch is shared out between them"
        )
        self.gpus_check.setHidden(True)
        self._gpu_count = 1
        form.addRow(self.gpus_check)

        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setToolTip("Input size, validation share, grouping and early stopping")
        self.advanced = QWidget()
        self.input_size_spin = QSpinBox()
        self.input_size_spin.setRange(0, 1024)
        self.input_size_spin.setSingleStep(16)
        self.input_size_spin.setSuffix(" px")
        self.input_size_spin.setToolTip("Images are resized to this square size; 0 = the network's own size")
        self.val_spin = QDoubleSpinBox()
        self.val_spin.setRange(0.0, 0.9)
        self.val_spin.setSingleStep(0.05)
        self.val_spin.setDecimals(2)
        self.val_spin.setToolTip("Share of labeled images kept aside to measure accuracy (0 = none)")
        self.group_box = GroupByBox()
        self.patience_spin = QSpinBox()
        self.patience_spin.setRange(0, 1000)
        self.patience_spin.setSpecialValueText("never")
        self.patience_spin.setToolTip("Stop after this many epochs without improvement on validation")
        advanced_form = QFormLayout(self.advanced)
        advanced_form.addRow("&Input size:", self.input_size_spin)
        advanced_form.addRow("&Validation share:", self.val_spin)
        advanced_form.addRow("&Group by:", self.group_box)
        advanced_form.addRow("Stop early &after:", self.patience_spin)
        self.advanced.setVisible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(model_box)
        layout.addWidget(training_box)
        layout.addWidget(self.advanced_button)
        layout.addWidget(self.advanced)
        layout.addStretch(1)

        self.load_settings()
        self.strategy_combo.currentIndexChanged.connect(self._on_strategy_combo_changed)
        self.backbone_picker.backbone_changed.connect(self._on_backbone_picker_changed)
        self.weights_combo.activated.connect(self._on_weights_combo_activated)
        self.weights_combo.currentIndexChanged.connect(self._on_weights_combo_changed)
        self.backbone_picker.weights_requested.connect(self._on_backbone_picker_weights_requested)
        self.advanced_button.toggled.connect(self._on_advanced_button_toggled)
        self.val_spin.valueChanged.connect(self.group_box.set_val_fraction)
        self._device_controller.finished.connect(self._on_device_controller_finished)
        self._device_controller.failed.connect(self._on_device_controller_failed)
        session.project_opened.connect(self._on_session_project_opened)
        session.project_closing.connect(self._on_session_project_closing)

    # -- the project's samples for Group by ---------------------------------------------------------
    def load_group_samples(self) -> None:
        """Give the group-by preview the project's file names, labels and imported groups.

        A small project is read at once; a large one (reading 100 000 samples takes half a second) in a
        worker, through its own connection, so showing the Train tab never waits on it.
        """
        project = self.session.project
        if project is None:
            self.group_box.set_samples([], [], [])
            return
        if project.sample_count() <= SYNC_LIMIT:
            samples = project.samples()
            self.group_box.set_samples(
                [s.path for s in samples], [s.label for s in samples], [s.group for s in samples]
            )
            return
        if self._samples_controller.is_running():
            return  # the read under way gives the newest labels but a moment ago; the next show reads again
        folder = project.folder

        def read(_progress: object, _stop: object) -> tuple[Path, list[Any], list[Any], list[Any]]:
            from labeltune.core.project import Project

            with Project.open(folder) as other:
                samples = other.samples()
            return folder, [s.path for s in samples], [s.label for s in samples], [s.group for s in samples]

        self._samples_controller.start(FunctionWorker(read))

    def _on_session_project_closing(self, _project: object) -> None:
        # the choices shown are the user's (a running training shows its run's); an XRD project has none
        if self.isEnabled() and self.session.project is not None:
            self.save_settings()

    def _on_samples_controller_failed(self, message: str, _details: str) -> None:
        self.group_box.show_problem(f"Cannot read the project's images for the preview: {message}")

    def _on_samples_controller_finished(self, result: tuple[Any, ...]) -> None:
        project = self.session.project
        if project is not None and project.folder == result[0]:
            self.group_box.set_samples(result[1], result[2], result[3])

    # -- devices ------------------------------------------------------------------------------------
    def detect_devices(self) -> None:
        """Find the GPU in a worker thread (importing torch there keeps the window responsive)."""
        if self.devices is None and not self._device_controller.is_running():
            self._device_controller.start(FunctionWorker(detect_devices))

    def showEvent(self, event: QShowEvent) -> None:
        """The first time the form is shown, look for a GPU."""
        super().showEvent(event)
        self.detect_devices()
        self.load_group_samples()  # labels made on the Label tab since

    def shutdown(self) -> None:
        """Wait for the device detection (and a download started from the picker), if still running."""
        if self.weights_dialog is not None:
            self.weights_dialog.shutdown()
        self._device_controller.shutdown()
        self._samples_controller.shutdown()
        self.group_box.shutdown()

    # -- slots --------------------------------------------------------------------------------------
    def _update_explanations(self) -> None:
        strategy = self.strategy()
        text = STRATEGY_TEXT[strategy][1]
        if self.weights() == "none":
            text += (
                ' <span style="color:#b36b00">⚠ With random weights the network has learned nothing yet: '
                + (
                    "its features are noise, so a new last layer learns little. "
                    if strategy == "features"
                    else ""
                )
                + "Use ImageNet weights when you can.</span>"
            )
        self.strategy_label.setText(f"<small>{text}</small>")
        spec = get_spec(self.backbone_picker.backbone())
        self.lr_edit.setPlaceholderText(f"default ({DEFAULT_LR[strategy]:g})")
        self.epochs_spin.setSpecialValueText(f"default ({DEFAULT_EPOCHS[strategy]})")
        self.input_size_spin.setSpecialValueText(f"network default ({spec.input_size} px)")

    def _on_strategy_combo_changed(self, _index: int) -> None:
        self._update_explanations()

    def _on_backbone_picker_changed(self, _name: str) -> None:
        self._update_explanations()

    def _on_weights_combo_changed(self, _index: int) -> None:
        self._update_explanations()  # random weights get a warning beside the strategy

    def _on_weights_combo_activated(self, index: int) -> None:
        if self.weights_combo.itemData(index) != "file":
            return
        file, _ = QFileDialog.getOpenFileName(
            self, "Weights file", str(Path.home()), "Weights (*.pth *.pt *.safetensors);;All files (*)"
        )
        if file:
            self.set_weights(file)
        elif not self._weights_file:
            self._select(self.weights_combo, "imagenet")

    def _on_backbone_picker_weights_requested(self, backbone: str) -> None:
        from labeltune.ui.weights_dialog import WeightsDialog

        if self.weights_dialog is not None:
            return
        self.weights_dialog = WeightsDialog(backbone, self)
        self.weights_dialog.finished.connect(self._on_weights_dialog_finished)
        self.weights_dialog.open()

    def _on_weights_dialog_finished(self, _code: int) -> None:
        from labeltune.ui.weights_dialog import BUNDLED, RANDOM

        dialog, self.weights_dialog = self.weights_dialog, None
        if dialog is None:
            return
        if dialog.outcome == BUNDLED:
            self.backbone_picker.set_backbone(DEFAULT_BACKBONE)
        elif dialog.outcome == RANDOM:
            self.set_weights(RANDOM)
        self.backbone_picker.refresh()
        dialog.deleteLater()

    def _on_advanced_button_toggled(self, checked: bool) -> None:
        self.advanced.setVisible(checked)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if checked else Qt.ArrowType.RightArrow)

    def _on_device_controller_finished(self, found: dict[str, str]) -> None:
        self.devices = {str(k): str(v) for k, v in found.items()}
        self.device_label.setText(f"<small>{device_summary(self.devices)}</small>")
        for key in ("cuda", "mps"):
            index = self.device_combo.findData(key)
            if key in self.devices:
                self.device_combo.setItemText(index, f"{DEVICE_TEXT[key]}: {self.devices[key]}")
        self._gpu_count = int(self.devices.get("gpus") or 1)
        self.gpus_check.setText(f"Use {self._gpu_count} GPUs")
        self.gpus_check.setHidden(self._gpu_count < 2)

    def _on_device_controller_failed(self, message: str, details: str) -> None:
        self.device_label.setText(f"<small>Could not look for a GPU: {message}</small>")
        show_error(
            self,
            "Cannot look for a GPU",
            f"PyTorch could not check this computer's devices: {message}",
            details,
        )

    def _on_session_project_opened(self, _project: object) -> None:
        if self.session.project is not None:  # an XRD project has no such choices
            self.load_settings()
