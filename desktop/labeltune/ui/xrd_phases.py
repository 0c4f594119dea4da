"""The "Phases present" panel: the library's phases as a checkable, filterable list, with weight fractions.

The panel only edits a label and says so (:attr:`PhasePanel.label_edited`); the page commits it. Phases of
the label that the library does not have (a plain formula such as ``TiO2``, or a phase of another
library) are listed first, ticked, so nothing the user chose disappears. Typing a formula that no listed
phase matches offers to add it as a formula label (``In2O3`` before the library has an In2O3 phase).
"""

from __future__ import annotations

from pathlib import PurePath

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.xrd.library import Library
from labeltune.core.xrd.name_labels import formula_problem
from labeltune.core.xrd.xrd_project import XrdLabel
from labeltune.ui.xrd_overlay import polymorphs

NAME_ROLE = Qt.ItemDataRole.UserRole
PHASE_COLUMN, FORMULA_COLUMN, FRACTION_COLUMN = 0, 1, 2
WARNING_COLOUR = "#D55E00"  # vermillion: reads on light and dark backgrounds, and to colour-blind eyes


class PhasePanel(QWidget):
    """Tick the phases present in the current pattern; optionally give their weight fractions."""

    label_edited = Signal(object)  # XrdLabel: what the user made of the label (commit it)
    phase_previewed = Signal(str)  # a phase made current in the list (show its sticks); "" for none

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._library: Library | None = None
        self._phases: list[str] = []
        self._fractions: list[float] | None = None
        self._items: dict[str, QTreeWidgetItem] = {}
        self._spins: dict[str, QDoubleSpinBox] = {}
        self._updating = False

        title = QLabel("Phases present")
        font = title.font()
        font.setWeight(QFont.Weight.DemiBold)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        title.setFont(font)
        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("phaseFilter")
        self.filter_edit.setPlaceholderText("Filter by name or formula")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip("Show only phases whose name or formula contains this text")
        self.add_formula_button = QPushButton()
        self.add_formula_button.setObjectName("addFormulaLabel")
        self.add_formula_button.setToolTip(
            "No phase of the library matches: label the pattern with this formula (any of its polymorphs; "
            "the formula is matched again when the library or model changes)"
        )
        self.add_formula_button.hide()
        self.tree = QTreeWidget()
        self.tree.setObjectName("phaseList")
        self.tree.setHeaderLabels(["Phase", "Formula", "wt %"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setToolTip(
            "Tick every phase present: the label is saved at once. Space ticks the current row"
        )
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(PHASE_COLUMN, QHeaderView.ResizeMode.Stretch)
        # the name matters most: a long formula (e.g. a clinker phase) must not squeeze it away
        header.setSectionResizeMode(FORMULA_COLUMN, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(FORMULA_COLUMN, 110)
        header.setMinimumSectionSize(60)
        header.setSectionResizeMode(FRACTION_COLUMN, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(FRACTION_COLUMN, 78)
        self.fractions_box = QCheckBox("&Weight fractions")
        self.fractions_box.setToolTip(
            "Also record how much of each ticked phase the sample holds (weight %, from weighing or a "
            "refinement); leave off when unknown"
        )
        self.sum_label = QLabel()
        self.sum_label.setObjectName("fractionSum")
        self.summary_label = QLabel()
        self.summary_label.setObjectName("labelSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        fractions_row = QHBoxLayout()
        fractions_row.addWidget(self.fractions_box)
        fractions_row.addStretch(1)
        fractions_row.addWidget(self.sum_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.add_formula_button)
        layout.addWidget(self.tree, 1)
        layout.addLayout(fractions_row)

        self.filter_edit.textChanged.connect(self._on_filter_edit_text_changed)
        self.filter_edit.returnPressed.connect(self._on_filter_edit_return_pressed)
        self.add_formula_button.clicked.connect(self.add_formula_label)
        self.tree.itemChanged.connect(self._on_tree_item_changed)
        self.tree.currentItemChanged.connect(self._on_tree_current_changed)
        self.fractions_box.toggled.connect(self._on_fractions_box_toggled)
        self.set_label(None)

    # -- content ------------------------------------------------------------------------------------
    def set_library(self, library: Library | None) -> None:
        """List ``library``'s phases (keeps the shown label)."""
        self._library = library
        self._rebuild()

    def set_label(self, label: XrdLabel | None) -> None:
        """Show a pattern's label (``None``: no pattern; the panel is disabled). Emits nothing."""
        self.setEnabled(label is not None)
        label = label or XrdLabel()
        self._phases = list(label.phases)
        self._fractions = None if label.fractions is None else list(label.fractions)
        self._rebuild()

    def label(self) -> XrdLabel:
        """The label as shown."""
        fractions = None if self._fractions is None else tuple(self._fractions)
        return XrdLabel(tuple(self._phases), fractions if self._phases else None)

    def ticked(self) -> list[str]:
        """The ticked phases, in label order."""
        return list(self._phases)

    def set_ticked(self, name: str, ticked: bool) -> None:
        """Tick or untick a listed phase as the user would (emits :attr:`label_edited`)."""
        item = self._items[name]
        item.setCheckState(PHASE_COLUMN, Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)

    def fraction_spin(self, name: str) -> QDoubleSpinBox | None:
        """The weight-% box of a ticked phase (while fractions are on)."""
        return self._spins.get(name)

    def visible_names(self) -> list[str]:
        """Listed phases not hidden by the filter, in list order."""
        return [name for name, item in self._items.items() if not item.isHidden()]

    def _rebuild(self) -> None:
        self._updating = True
        self.tree.clear()
        self._items.clear()
        self._spins.clear()
        library_names = set() if self._library is None else set(self._library.names)
        extra = [p for p in self._phases if p not in library_names]
        for name in extra:
            matches = 0 if self._library is None else len(polymorphs(name, self._library))
            item = self._add_item(name, f"formula, {matches} in library" if matches else "", ticked=True)
            font = item.font(PHASE_COLUMN)
            font.setItalic(True)
            item.setFont(PHASE_COLUMN, font)
            item.setToolTip(
                PHASE_COLUMN,
                f"{name} is not a phase of the library: a formula (any of its polymorphs; their sticks "
                "are drawn) or a phase of another library, kept as labeled",
            )
        if self._library is not None:
            for phase in self._library.phases:
                item = self._add_item(phase.name, phase.formula, ticked=phase.name in self._phases)
                item.setToolTip(  # the source file: the COD number of a library named from its CIFs
                    PHASE_COLUMN,
                    f"{phase.name}: {phase.formula}, space group {phase.space_group}, from "
                    f"{PurePath(phase.source).name}",
                )
        self._updating = False
        self.fractions_box.blockSignals(True)
        self.fractions_box.setChecked(self._fractions is not None)
        self.fractions_box.blockSignals(False)
        self._fit_formula_column()
        self._update_spins()
        self._apply_filter()
        self._update_texts()

    def _add_item(self, name: str, formula: str, ticked: bool) -> QTreeWidgetItem:
        item = QTreeWidgetItem([name, formula, ""])
        item.setData(PHASE_COLUMN, NAME_ROLE, name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(PHASE_COLUMN, Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
        self.tree.addTopLevelItem(item)
        self._items[name] = item
        return item

    def _fit_formula_column(self) -> None:
        """The formulas as wide as they need, up to 110 px: the names keep the rest (ADR 0057)."""
        wanted = self.tree.sizeHintForColumn(FORMULA_COLUMN) + 12
        self.tree.header().resizeSection(FORMULA_COLUMN, max(60, min(110, wanted)))

    def _update_spins(self) -> None:
        self.tree.setColumnHidden(FRACTION_COLUMN, self._fractions is None)  # empty: its room to the names
        for name in list(self._spins):
            if self._fractions is None or name not in self._phases:
                self.tree.removeItemWidget(self._items[name], FRACTION_COLUMN)
                del self._spins[name]
        if self._fractions is None:
            return
        for name, value in zip(self._phases, self._fractions, strict=True):
            spin = self._spins.get(name)
            if spin is None:
                spin = QDoubleSpinBox()
                spin.setRange(0.0, 100.0)
                spin.setDecimals(1)
                spin.setSuffix(" %")
                spin.setKeyboardTracking(False)  # commit on Enter / focus out / arrows, not per digit
                spin.setFrame(False)
                spin.setToolTip(f"Weight % of {name} in the sample")
                spin.setAccessibleName(f"Weight percent of {name}")
                spin.valueChanged.connect(lambda value, n=name: self._on_spin_value_changed(n, value))
                self.tree.setItemWidget(self._items[name], FRACTION_COLUMN, spin)
                self._spins[name] = spin
            spin.blockSignals(True)
            spin.setValue(round(value * 100.0, 1))
            spin.blockSignals(False)

    def _apply_filter(self) -> None:
        needle = self.filter_edit.text().strip().casefold()
        for name, item in self._items.items():
            matches = (
                not needle or needle in name.casefold() or needle in item.text(FORMULA_COLUMN).casefold()
            )
            item.setHidden(not (matches or name in self._phases))  # ticked phases stay in view
        self._update_formula_offer()

    def offered_formula(self) -> str:
        """The formula typed in the filter that can be added as a label ("" when none is offered)."""
        text = self.filter_edit.text().strip()
        if not text or not self.isEnabled() or text in self._phases or formula_problem(text) is not None:
            return ""
        needle = text.casefold()
        for name, item in self._items.items():
            if needle in name.casefold() or needle in item.text(FORMULA_COLUMN).casefold():
                return ""  # a phase matches: tick that one
        return text

    def _update_formula_offer(self) -> None:
        formula = self.offered_formula()
        self.add_formula_button.setText(f"Add {formula} as a formula label" if formula else "")
        self.add_formula_button.setVisible(bool(formula))

    def add_formula_label(self) -> None:
        """Tick the formula typed in the filter as a label of its own (emits :attr:`label_edited`)."""
        formula = self.offered_formula()
        if not formula:
            return
        self._phases.append(formula)
        if self._fractions is not None:
            self._fractions.append(max(0.0, 1.0 - sum(self._fractions)))
        self.filter_edit.blockSignals(True)
        self.filter_edit.clear()
        self.filter_edit.blockSignals(False)
        self._rebuild()
        self.label_edited.emit(self.label())

    def _update_texts(self) -> None:
        label = self.label()
        if not self.isEnabled():
            self.summary_label.setText("Choose a pattern to label it.")
        elif label.is_labeled:
            self.summary_label.setText(f"Label: <b>{label.summary()}</b>")
        else:
            self.summary_label.setText("Not labeled yet: tick the phases present.")
        if self._fractions is None:
            self.sum_label.clear()
            return
        total = sum(self._fractions) * 100.0
        off = abs(total - 100.0) > 2.0
        self.sum_label.setText(f"sum {total:.1f} %" + (": not saved until 100 %" if off else ""))
        self.sum_label.setToolTip("Weight fractions are saved once they add up to 100 % (±2)" if off else "")
        self.sum_label.setStyleSheet(f"color: {WARNING_COLOUR};" if off else "")

    # -- slots --------------------------------------------------------------------------------------
    def _on_filter_edit_text_changed(self, _text: str) -> None:
        self._apply_filter()

    def _on_filter_edit_return_pressed(self) -> None:
        self.add_formula_label()

    def _on_tree_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._updating or column != PHASE_COLUMN:
            return
        name = str(item.data(PHASE_COLUMN, NAME_ROLE))
        ticked = item.checkState(PHASE_COLUMN) == Qt.CheckState.Checked
        if ticked and name not in self._phases:
            self._phases.append(name)
            if self._fractions is not None:
                self._fractions.append(max(0.0, 1.0 - sum(self._fractions)))
        elif not ticked and name in self._phases:
            index = self._phases.index(name)
            del self._phases[index]
            if self._fractions is not None:
                del self._fractions[index]
        else:
            return
        if not self._phases:
            self._fractions = None
        self._update_spins()
        self._update_texts()
        self.label_edited.emit(self.label())

    def _on_tree_current_changed(self, current: QTreeWidgetItem | None, _previous: object) -> None:
        self.phase_previewed.emit("" if current is None else str(current.data(PHASE_COLUMN, NAME_ROLE)))

    def _on_fractions_box_toggled(self, on: bool) -> None:
        if on and self._phases:
            self._fractions = [1.0 / len(self._phases)] * len(self._phases)
        elif on:
            self.fractions_box.blockSignals(True)
            self.fractions_box.setChecked(False)  # nothing ticked: nothing to give a fraction to
            self.fractions_box.blockSignals(False)
            self._update_texts()
            return
        else:
            self._fractions = None
        self._update_spins()
        self._update_texts()
        self.label_edited.emit(self.label())

    def _on_spin_value_changed(self, name: str, value: float) -> None:
        if self._fractions is None or name not in self._phases:
            return
        self._fractions[self._phases.index(name)] = value / 100.0
        self._update_texts()
        self.label_edited.emit(self.label())


__all__ = ["PhasePanel"]
