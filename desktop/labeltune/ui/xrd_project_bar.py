"""The XRD project's settings bar: its name, the X-ray wavelength (visible and confirmable) and the model."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QWidget,
)

from labeltune.core.xrd.xrd_project import CU_KA1, XrdProject

WARNING_COLOUR = "#D55E00"
WAVELENGTH_HELP = (
    "X-ray wavelength used for pattern files that do not state their own (files that do keep theirs). "
    "Kα1: Cu 1.5406, Co 1.78897, Mo 0.70932, Fe 1.93604, Cr 2.28970, Ag 0.55941 Å"
)


USUAL_WAVELENGTHS = {
    "Cu Kα1": 1.54056,
    "Cu Kα": 1.54184,
    "Co Kα1": 1.78897,
    "Mo Kα1": 0.70932,
    "Fe Kα1": 1.93604,
    "Cr Kα1": 2.28970,
    "Ag Kα1": 0.55941,
}


def is_usual_wavelength(value: float) -> bool:
    """Whether ``value`` (Å) is within 0.002 Å of a usual laboratory anode's Kα line."""
    return any(abs(value - wl) <= 0.002 for wl in USUAL_WAVELENGTHS.values())


class XrdProjectBar(QWidget):
    """Shows the project's settings; says when the user sets the wavelength or asks for the models."""

    wavelength_set = Signal(float)  # a value the user entered or confirmed
    models_requested = Signal()  # the user wants the list of the project's models

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name_label = QLabel()
        self.name_label.setObjectName("xrdProjectName")
        font = self.name_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setWeight(QFont.Weight.DemiBold)
        self.name_label.setFont(font)
        self.wavelength_spin = QDoubleSpinBox()
        self.wavelength_spin.setObjectName("wavelengthSpin")
        self.wavelength_spin.setRange(0.1, 5.0)
        self.wavelength_spin.setDecimals(5)
        self.wavelength_spin.setSingleStep(0.0001)
        self.wavelength_spin.setSuffix(" Å")
        self.wavelength_spin.setKeyboardTracking(False)  # one change per Enter / focus out / arrow
        self.wavelength_spin.setToolTip(WAVELENGTH_HELP)
        wavelength_label = QLabel("X-ray &wavelength:")
        wavelength_label.setBuddy(self.wavelength_spin)
        wavelength_label.setToolTip(WAVELENGTH_HELP)
        self.wavelength_state = QLabel()
        self.wavelength_state.setObjectName("wavelengthState")
        self.confirm_button = QPushButton("&Confirm")
        self.confirm_button.setToolTip("Yes: the patterns were measured with this wavelength")
        self.model_label = QLabel()
        self.model_label.setObjectName("modelLabel")
        self.models_button = QPushButton("&Models…")
        self.models_button.setToolTip(
            "The project's models with their scores: switch to another one, or add one from a folder"
        )

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.name_label)
        layout.addStretch(1)
        layout.addWidget(wavelength_label)
        layout.addWidget(self.wavelength_spin)
        layout.addWidget(self.wavelength_state)
        layout.addWidget(self.confirm_button)
        layout.addSpacing(24)
        layout.addWidget(self.model_label)
        layout.addWidget(self.models_button)

        self.wavelength_spin.valueChanged.connect(self._on_wavelength_spin_value_changed)
        self.confirm_button.clicked.connect(self._on_confirm_button_clicked)
        self.models_button.clicked.connect(self.models_requested)
        self._shown_wavelength = CU_KA1
        self.show_project(None)

    def show_project(self, project: XrdProject | None) -> None:
        """Show ``project``'s name, wavelength (and whether it is confirmed) and model."""
        self.setEnabled(project is not None)
        self.name_label.setText("" if project is None else project.name)
        self._shown_wavelength = CU_KA1 if project is None else project.wavelength
        self.wavelength_spin.blockSignals(True)
        self.wavelength_spin.setValue(self._shown_wavelength)
        self.wavelength_spin.blockSignals(False)
        confirmed = project is not None and project.wavelength_confirmed
        self.confirm_button.setVisible(project is not None and not confirmed)
        self.wavelength_state.setText("✓ confirmed" if confirmed else "assumed: please confirm")
        self.wavelength_state.setStyleSheet("" if confirmed else f"color: {WARNING_COLOUR};")
        self.wavelength_state.setToolTip(
            "Used only for files that do not state their own wavelength"
            if confirmed
            else "The default (Cu Kα1) is only an assumption until you confirm it or enter the right value"
        )
        model = None if project is None else project.model_dir
        self.model_label.setText("Model: none yet" if model is None else f"Model: <b>{model.name}</b>")
        self.model_label.setToolTip("" if model is None else str(model))

    def _on_wavelength_spin_value_changed(self, value: float) -> None:
        if abs(value - self._shown_wavelength) <= 1e-9:
            return
        if not is_usual_wavelength(value) and not self._confirm_unusual(value):
            self.wavelength_spin.blockSignals(True)
            self.wavelength_spin.setValue(self._shown_wavelength)
            self.wavelength_spin.blockSignals(False)
            return
        self.wavelength_set.emit(value)

    def _confirm_unusual(self, value: float) -> bool:
        """Ask before using a wavelength that is no usual anode's line (a typo such as 154 reads as 1)."""
        lines = ", ".join(f"{name} {wl:.4f}" for name, wl in USUAL_WAVELENGTHS.items())
        answer = QMessageBox.question(
            self,
            "Unusual X-ray wavelength",
            f"Use {value:.5f} Å for the pattern files that do not state their wavelength?\n\n"
            f"It is not the Kα line of a usual anode ({lines} Å).",
        )
        return answer == QMessageBox.StandardButton.Yes

    def _on_confirm_button_clicked(self) -> None:
        self.wavelength_set.emit(self.wavelength_spin.value())
