"""Choosing a backbone, with its trade-offs (accuracy, speed, input size, download) in plain words."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from labeltune.core.backbones import BACKBONES, BackboneSpec
from labeltune.core.weights import weights_present


def accuracy_words(spec: BackboneSpec) -> str:
    """How accurate the backbone is, in words (from its ImageNet top-1 accuracy)."""
    if spec.imagenet_top1 >= 76:
        return "among the most accurate here"
    if spec.imagenet_top1 >= 72:
        return "accurate"
    if spec.imagenet_top1 >= 65:
        return "fairly accurate"
    return "the least accurate here"


def speed_words(spec: BackboneSpec) -> str:
    """How fast the backbone runs, in words (from the compute one image needs)."""
    if spec.gflops <= 0.5:
        return "very fast"
    if spec.gflops <= 2.0:
        return "fast"
    if spec.gflops <= 4.5:
        return "slow on a CPU"
    return "the slowest here"


def relative_cost(spec: BackboneSpec) -> float:
    """Compute per image relative to the cheapest backbone (1.0 = the fastest)."""
    cheapest = min(s.gflops for s in BACKBONES.values())
    return spec.gflops / cheapest


def describe_backbone(spec: BackboneSpec, present: bool) -> str:
    """A short rich-text explanation of one backbone for the picker."""
    cost = relative_cost(spec)
    cost_text = "the least compute per image" if cost < 1.05 else f"{cost:.0f}× the compute of the fastest"
    weights = (
        "ImageNet weights downloaded ✓"
        if present
        else f"ImageNet weights not downloaded yet ({spec.weights_mb:.0f} MB)"
    )
    return (
        f"<b>{html.escape(spec.title)}</b>: {accuracy_words(spec)}, {speed_words(spec)}.<br>"
        f"{html.escape(spec.description)}<br>"
        f"<small>ImageNet top-1 {spec.imagenet_top1:.1f} % · {spec.gflops:.2f} GFLOPs per image "
        f"({cost_text}) · input {spec.input_size} px · {spec.params_m:.1f} M parameters · "
        f"{weights}</small>"
    )


class BackbonePicker(QWidget):
    """A backbone combo box with an explanation of the chosen network underneath."""

    backbone_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setToolTip(
            "The pretrained network whose knowledge of images is reused. Bigger networks are more "
            "accurate but slower; ResNet-18 or MobileNetV3 are good first choices."
        )
        for name, spec in BACKBONES.items():
            self.combo.addItem(self._item_text(spec), name)
            self.combo.setItemData(
                self.combo.count() - 1, f"{spec.title}: {spec.description}", Qt.ItemDataRole.ToolTipRole
            )
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setToolTip("What this network is good at, how fast it is, and whether it is downloaded")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.info)
        self.combo.currentIndexChanged.connect(self._on_combo_changed)
        self.refresh()

    @staticmethod
    def _item_text(spec: BackboneSpec) -> str:
        return f"{spec.title} — {spec.imagenet_top1:.0f} % ImageNet, {speed_words(spec)}"

    def backbone(self) -> str:
        """The chosen backbone's registry name."""
        return str(self.combo.currentData())

    def set_backbone(self, name: str) -> None:
        """Choose ``name`` (unknown names are ignored)."""
        index = self.combo.findData(name)
        if index >= 0:
            self.combo.setCurrentIndex(index)

    def weights_present(self) -> bool:
        """Whether the chosen backbone's ImageNet weights are in the store."""
        return weights_present(self.backbone())

    def refresh(self) -> None:
        """Re-check which weights are downloaded and update the explanation."""
        spec = BACKBONES[self.backbone()]
        self.info.setText(describe_backbone(spec, self.weights_present()))

    def _on_combo_changed(self, _index: int) -> None:
        self.refresh()
        self.backbone_changed.emit(self.backbone())
