"""What the identification corrects for on the "Model says" tab: internal standard, particle size, texture.

The app's faces of ``labeltune predict --internal-standard NAME=WT%``, ``--particle-size UM`` and
``--texture {auto,off}``: the same parsing
(:func:`~labeltune.core.xrd.internal_standard.parse_internal_standard`) and the same range (0.01-1000 µm),
handed to the same ``predict_patterns`` by the identify worker (ADR 0057, ADR 0065).
"""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

PARTICLE_SIZE_RANGE = (0.01, 1000.0)
"""Grain diameters (µm) the correction accepts, as ``predict --particle-size``."""
STANDARD_PLACEHOLDER = "none, e.g. LiF=20"
TEXTURE_DEFAULT = False
"""The checkbox's state for a new project, as ``predict`` without ``--texture`` (off; ADR 0065)."""


class SampleFields(QWidget):
    """Internal standard, grain size and texture for the next identification.

    Internal standard ``NAME=WT%``; grain size in µm (0 shows "none"); whether the final fit may refine
    preferred orientation.
    """

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
        self.texture_check = QCheckBox("Preferred &orientation (texture) in the final fit")
        self.texture_check.setObjectName("preferredOrientation")
        self.texture_check.setChecked(TEXTURE_DEFAULT)
        self.texture_check.setToolTip(
            "The phases are decided without texture; then the decided phases are refitted once with a "
            "March–Dollase preferred orientation where the data need one, for the fractions and Rwp shown. "
            "It never adds or removes a phase"
        )
        standard_label = QLabel("Internal &standard:")
        standard_label.setBuddy(self.standard_edit)
        size_label = QLabel("&Particle size:")
        size_label.setBuddy(self.size_spin)
        margin = 4 * self.standard_edit.fontMetrics().horizontalAdvance(" ")  # the frame and text margins
        self.standard_edit.setMinimumWidth(
            self.standard_edit.fontMetrics().horizontalAdvance(STANDARD_PLACEHOLDER) + margin
        )
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(standard_label)
        row.addWidget(self.standard_edit)
        row.addSpacing(8)
        row.addWidget(size_label)
        row.addWidget(self.size_spin)
        layout = QVBoxLayout(self)  # the checkbox on a line of its own: the phase list keeps its width
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.texture_check)

    def clear(self) -> None:
        """No standard, no particle size, texture as by default (another project: other samples)."""
        self.standard_edit.clear()
        self.size_spin.setValue(0.0)
        self.texture_check.setChecked(TEXTURE_DEFAULT)

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

    def texture(self) -> bool:
        """Whether the final refit may refine preferred orientation (``predict --texture auto``)."""
        return self.texture_check.isChecked()


__all__ = ["PARTICLE_SIZE_RANGE", "TEXTURE_DEFAULT", "SampleFields"]
