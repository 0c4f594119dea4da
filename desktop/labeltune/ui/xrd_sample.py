"""What the identification corrects for on the "Model says" tab: internal standard and particle size.

The app's faces of ``labeltune predict --internal-standard NAME=WT%`` and ``--particle-size UM``: the
same parsing (:func:`~labeltune.core.xrd.internal_standard.parse_internal_standard`) and the same range
(0.01-1000 µm), handed to the same ``predict_patterns`` by the identify worker (ADR 0057).
"""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QLineEdit, QWidget

PARTICLE_SIZE_RANGE = (0.01, 1000.0)
"""Grain diameters (µm) the correction accepts, as ``predict --particle-size``."""
STANDARD_PLACEHOLDER = "none, e.g. LiF=20"


class SampleFields(QWidget):
    """Internal standard (``NAME=WT%``) and grain size (µm; 0 shows "none") for the next identification."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.standard_edit = QLineEdit()
        self.standard_edit.setObjectName("internalStandard")
        self.standard_edit.setPlaceholderText(STANDARD_PLACEHOLDER)
        self.standard_edit.setToolTip(
            "A library phase (name or formula) weighed into the sample at this weight %: the fit then "
            "reports absolute fractions and the amorphous / unidentified content. Leave empty for none"
        )
        self.size_spin = QDoubleSpinBox()
        self.size_spin.setObjectName("particleSize")
        self.size_spin.setRange(0.0, PARTICLE_SIZE_RANGE[1])
        self.size_spin.setDecimals(2)  # the next value after 'none' (0) is 0.01, the CLI's lowest
        self.size_spin.setSingleStep(1.0)
        self.size_spin.setSuffix(" µm")
        self.size_spin.setSpecialValueText("none")  # 0: no correction, only the warning where it matters
        self.size_spin.setToolTip(
            "Grain diameter of the powder: corrects the fitted fractions for microabsorption (Brindley), "
            "which matters when the phases absorb X-rays very differently. 'none': no correction; the "
            "result then says where it would matter"
        )
        standard_label = QLabel("Internal &standard:")
        standard_label.setBuddy(self.standard_edit)
        size_label = QLabel("&Particle size:")
        size_label.setBuddy(self.size_spin)
        margin = 4 * self.standard_edit.fontMetrics().horizontalAdvance(" ")  # the frame and text margins
        self.standard_edit.setMinimumWidth(
            self.standard_edit.fontMetrics().horizontalAdvance(STANDARD_PLACEHOLDER) + margin
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(standard_label)
        layout.addWidget(self.standard_edit)
        layout.addSpacing(8)
        layout.addWidget(size_label)
        layout.addWidget(self.size_spin)

    def clear(self) -> None:
        """No standard, no particle size (another project: other samples)."""
        self.standard_edit.clear()
        self.size_spin.setValue(0.0)

    def internal_standard(self) -> tuple[str, float] | None:
        """The standard as ``predict`` takes it, ``None`` when empty (raises ``UnusableInputError``)."""
        text = self.standard_edit.text().strip()
        if not text:
            return None
        from labeltune.core.xrd.internal_standard import parse_internal_standard

        return parse_internal_standard(text)

    def particle_size(self) -> float | None:
        """The grain diameter in µm, ``None`` for none (the spin box keeps it within the CLI's range)."""
        value = float(self.size_spin.value())
        return None if value < PARTICLE_SIZE_RANGE[0] else value


__all__ = ["PARTICLE_SIZE_RANGE", "SampleFields"]
