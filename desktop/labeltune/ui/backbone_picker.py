"""Choosing a backbone, with its trade-offs (accuracy, speed, input size, download) in plain words.

It also says which networks work offline here (weights shipped with LabelTune, or downloaded), and for one
whose weights are missing offers to get them or to switch to one that works offline.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from labeltune.core.backbones import BACKBONES, DEFAULT_BACKBONE, BackboneSpec
from labeltune.core.weights import best_present_backbone, weights_present


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


def weights_words(spec: BackboneSpec, present: bool) -> str:
    """Where the backbone's ImageNet weights are, in words: the offline story of one network."""
    if spec.bundled and present:
        return "ImageNet weights come with LabelTune ✓ (works offline)"
    if present:
        return "ImageNet weights downloaded ✓ (works offline)"
    return f"ImageNet weights not on this computer yet ({spec.weights_mb:.0f} MB download)"


def offline_summary() -> str:
    """One line naming the networks that train from ImageNet weights here without a download."""
    ready = [spec.title for spec in BACKBONES.values() if weights_present(spec.name)]
    if not ready:
        return "No network has its ImageNet weights on this computer: download some, or train from random."
    return "Ready offline here: " + ", ".join(ready) + "."


def describe_backbone(spec: BackboneSpec, present: bool) -> str:
    """A short rich-text explanation of one backbone for the picker."""
    cost = relative_cost(spec)
    cost_text = "the least compute per image" if cost < 1.05 else f"{cost:.0f}× the compute of the fastest"
    weights = weights_words(spec, present)
    return (
        f"<b>{html.escape(spec.title)}</b>: {accuracy_words(spec)}, {speed_words(spec)}.<br>"
        f"{html.escape(spec.description)}<br>"
        f"<small>ImageNet top-1 {spec.imagenet_top1:.1f} % · {spec.gflops:.2f} GFLOPs per image "
        f"({cost_text}) · input {spec.input_size} px · {spec.params_m:.1f} M parameters · "
        f"{weights}</small>"
    )


class BackbonePicker(QWidget):
    """A backbone combo box with an explanation of the chosen network underneath.

    When the chosen network's ImageNet weights are missing, two buttons appear: *Get weights…*
    (``weights_requested``: the owner opens the download/import dialog) and *Use <the bundled network>*.
    """

    backbone_changed = Signal(str)
    weights_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setToolTip(
            "The pretrained network whose knowledge of images is reused. Bigger networks are more "
            "accurate but slower; EfficientNet-Lite0 works offline and is a good first choice."
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
        self.offline_label = QLabel()
        self.offline_label.setObjectName("offlineLabel")
        self.offline_label.setWordWrap(True)
        self.offline_label.setToolTip("Networks whose pretrained weights are on this computer")
        self.get_weights_button = QPushButton("&Get weights…")
        self.get_weights_button.setToolTip("Download the ImageNet weights of this network, or import a file")
        bundled = BACKBONES[DEFAULT_BACKBONE]
        self.use_offline_button = QPushButton(f"Use {bundled.title}")
        self.use_offline_button.setToolTip(
            f"Switch to {bundled.title}, whose ImageNet weights come with LabelTune (no download)"
        )
        missing = QHBoxLayout()
        missing.setContentsMargins(0, 0, 0, 0)
        missing.addWidget(self.get_weights_button)
        missing.addWidget(self.use_offline_button)
        missing.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.info)
        layout.addLayout(missing)
        layout.addWidget(self.offline_label)
        self.combo.currentIndexChanged.connect(self._on_combo_changed)
        self.get_weights_button.clicked.connect(self._on_get_weights_button_clicked)
        self.use_offline_button.clicked.connect(self._on_use_offline_button_clicked)
        self.refresh()

    @staticmethod
    def _item_text(spec: BackboneSpec, present: bool | None = None) -> str:
        present = weights_present(spec.name) if present is None else present
        where = "ready offline" if present else f"{spec.weights_mb:.0f} MB download"
        return f"{spec.title} — {spec.imagenet_top1:.0f} % ImageNet, {speed_words(spec)} · {where}"

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

    def preselect(self) -> str:
        """Choose the most accurate network whose ImageNet weights are here; return its name."""
        name = best_present_backbone()
        self.set_backbone(name)
        return name

    def refresh(self) -> None:
        """Re-check which weights are here and update the texts."""
        for i in range(self.combo.count()):
            self.combo.setItemText(i, self._item_text(BACKBONES[str(self.combo.itemData(i))]))
        spec = BACKBONES[self.backbone()]
        present = self.weights_present()
        self.info.setText(describe_backbone(spec, present))
        self.get_weights_button.setVisible(not present)
        self.use_offline_button.setVisible(
            not present and spec.name != DEFAULT_BACKBONE and weights_present(DEFAULT_BACKBONE)
        )
        self.offline_label.setText(f"<small>{html.escape(offline_summary())}</small>")

    def _on_combo_changed(self, _index: int) -> None:
        self.refresh()
        self.backbone_changed.emit(self.backbone())

    def _on_get_weights_button_clicked(self) -> None:
        self.weights_requested.emit(self.backbone())

    def _on_use_offline_button_clicked(self) -> None:
        self.set_backbone(DEFAULT_BACKBONE)
