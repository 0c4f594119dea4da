"""The training form's values: the choices it shows, remembers and turns into a :class:`TrainConfig`.

A mixin of :class:`~labeltune.ui.train_form.TrainSettingsForm`, which lays out the widgets these methods
read and set. The choices shown are the open project's last ones (``project.json``'s ``train`` entry), else
those last used anywhere (the settings file), or a run's when it is continued; :meth:`config` checks them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from labeltune.core.backbones import BACKBONES
from labeltune.core.errors import UnusableInputError
from labeltune.core.train_config import TrainConfig
from labeltune.core.weights import weights_present
from labeltune.ui.backbone_picker import BackbonePicker
from labeltune.ui.group_by import GroupByBox
from labeltune.ui.session import ProjectSession

log = logging.getLogger(__name__)

WEIGHTS_TEXT = {"imagenet": "ImageNet (pretrained)", "none": "Random (no pretraining)"}
PROJECT_SETTINGS_KEY = "train"


class TrainFormValues:
    """Showing, remembering and reading the form's choices."""

    session: ProjectSession
    backbone_picker: BackbonePicker
    strategy_combo: QComboBox
    epochs_spin: QSpinBox
    batch_spin: QSpinBox
    lr_edit: QLineEdit
    augment_check: QCheckBox
    weights_combo: QComboBox
    device_combo: QComboBox
    gpus_check: QCheckBox
    input_size_spin: QSpinBox
    val_spin: QDoubleSpinBox
    patience_spin: QSpinBox
    group_box: GroupByBox
    _weights_file: str
    _gpu_count: int

    if TYPE_CHECKING:  # TrainSettingsForm's

        def load_group_samples(self) -> None:
            """Give the group-by preview the project's file names, labels and imported groups."""

        def _update_explanations(self) -> None:
            """The strategy's explanation and the defaults shown in the empty fields."""

    def load_settings(self) -> None:
        """Show the open project's last choices.

        A project without any gets the ones last used anywhere (the settings file), except random
        weights, which are chosen per project.
        """
        project = self.session.project
        stored: dict[str, Any] = (project.settings.get(PROJECT_SETTINGS_KEY) or {}) if project else {}
        s = dataclasses.replace(self.session.settings)
        own = stored.get("choices")
        if isinstance(own, dict):
            for key, value in own.items():
                if hasattr(s, key) and isinstance(value, type(getattr(s, key))):
                    setattr(s, key, value)
        else:  # a project without choices of its own: the machine's (network, device, batch), defaults
            s.weights = "imagenet" if s.weights == "none" else s.weights  # random: a choice per project
            s.epochs, s.learning_rate = 0, 0.0  # the strategy's defaults: another project's were for its data
        known = s.backbone in BACKBONES  # a settings file from another version may name another network
        if known and (s.weights != "imagenet" or weights_present(s.backbone)):
            self.backbone_picker.set_backbone(s.backbone)
        else:  # nothing chosen yet, or a network whose ImageNet weights are not here: one that works
            self.backbone_picker.preselect()
        self._select(self.strategy_combo, s.strategy)
        self.epochs_spin.setValue(s.epochs)
        self.batch_spin.setValue(s.batch_size)
        self.lr_edit.setText(f"{s.learning_rate:g}" if s.learning_rate > 0 else "")
        self.augment_check.setChecked(s.augment)
        self._select(self.device_combo, s.device)
        self.set_weights(s.weights)
        self.input_size_spin.setValue(int(stored.get("input_size") or 0))
        self.val_spin.setValue(float(stored.get("val_fraction", 0.2)))
        self.patience_spin.setValue(int(stored.get("patience", 5)))
        self.load_group_samples()
        self.group_box.set_val_fraction(self.val_spin.value())
        self.group_box.set_spec_text(str(stored.get("group_by") or ""))
        self._update_explanations()

    def show_run_settings(self, run_dir: Path) -> None:
        """Show the settings a run was started with (a continued run trains with those, not the form's)."""
        try:
            train = json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("train") or {}
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("cannot read the settings of %s: %s", run_dir, exc)
            return
        if train.get("backbone") in BACKBONES:
            self.backbone_picker.set_backbone(str(train["backbone"]))
        self._select(self.strategy_combo, str(train.get("strategy", self.strategy())))
        if isinstance(train.get("epochs"), int) and train["epochs"] > 0:
            self.epochs_spin.setValue(train["epochs"])
        if isinstance(train.get("batch_size"), int):
            self.batch_spin.setValue(train["batch_size"])
        lr = train.get("lr")
        self.lr_edit.setText(f"{lr:g}" if isinstance(lr, (int, float)) and lr > 0 else "")
        if isinstance(train.get("augment"), bool):
            self.augment_check.setChecked(train["augment"])
        if isinstance(train.get("weights"), str):
            self.set_weights(train["weights"])

    def save_settings(self) -> None:
        """Remember the current choices."""
        s = self.session.settings
        s.backbone = self.backbone_picker.backbone()
        s.strategy = self.strategy()
        s.epochs = self.epochs_spin.value()
        s.batch_size = self.batch_spin.value()
        with contextlib.suppress(UnusableInputError):  # an unreadable entry keeps the remembered value
            s.learning_rate = self._learning_rate() or 0.0
        s.augment = self.augment_check.isChecked()
        s.device = str(self.device_combo.currentData())
        s.weights = self.weights()
        try:
            s.save()
        except OSError as exc:
            log.warning("cannot save the settings: %s", exc)
        if self.session.project is not None:
            try:
                self.session.project.save_settings(
                    **{
                        PROJECT_SETTINGS_KEY: {
                            "choices": {
                                key: getattr(s, key)
                                for key in (
                                    "backbone",
                                    "strategy",
                                    "epochs",
                                    "batch_size",
                                    "learning_rate",
                                    "augment",
                                    "device",
                                    "weights",
                                )
                            },
                            "input_size": self.input_size_spin.value(),
                            "val_fraction": self.val_spin.value(),
                            "group_by": self.group_box.spec_text(),
                            "patience": self.patience_spin.value(),
                        }
                    }
                )
            except OSError as exc:  # a read-only or full project folder: the choices are not remembered
                log.warning("cannot save the training choices: %s", exc)

    def strategy(self) -> str:
        """The chosen strategy."""
        return str(self.strategy_combo.currentData())

    def weights(self) -> str:
        """``imagenet``, ``none`` or a file path."""
        key = str(self.weights_combo.currentData())
        return self._weights_file if key == "file" else key

    def set_weights(self, choice: str) -> None:
        """Choose ``imagenet``, ``none`` or a weights file."""
        if choice in WEIGHTS_TEXT:
            self._select(self.weights_combo, choice)
        elif choice:
            self._weights_file = choice
            index = self.weights_combo.findData("file")
            self.weights_combo.setItemText(index, f"File: {Path(choice).name}")
            self.weights_combo.setItemData(index, choice, Qt.ItemDataRole.ToolTipRole)
            self.weights_combo.setCurrentIndex(index)

    def config(self) -> TrainConfig:
        """The run's :class:`TrainConfig`; raises :class:`UnusableInputError` for values that cannot work."""
        group = self.group_box.checked_spec()
        weights = self.weights()
        if not weights:
            raise UnusableInputError("choose a weights file, or ImageNet or random weights")
        config = TrainConfig(
            backbone=self.backbone_picker.backbone(),
            strategy=self.strategy(),
            weights=weights,
            epochs=self.epochs_spin.value(),  # 0: the strategy's default
            batch_size=self.batch_spin.value(),
            lr=self._learning_rate(),
            augment=self.augment_check.isChecked(),
            device=str(self.device_combo.currentData()),
            input_size=self.input_size_spin.value() or None,
            val_fraction=self.val_spin.value(),
            group_by=group,
            patience=self.patience_spin.value(),
        )
        config.validate()
        return config

    def gpus(self) -> int:
        """GPUs the run trains on: all of them when offered and ticked (and the device allows it), else 1."""
        on_gpu = str(self.device_combo.currentData()) in ("auto", "cuda")
        if self.gpus_check.isHidden() or not self.gpus_check.isChecked() or not on_gpu:
            return 1
        return self._gpu_count

    def _learning_rate(self) -> float | None:
        text = self.lr_edit.text().strip().replace(",", ".")
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise UnusableInputError(f"the learning rate {text!r} is not a number (e.g. 0.001)") from None
        return value if value > 0 else None

    @staticmethod
    def _select(combo: QComboBox, key: str) -> None:
        index = combo.findData(key)
        if index >= 0:
            combo.setCurrentIndex(index)
