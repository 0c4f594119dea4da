"""The "Model says" panel: the phases the XRD model found in a pattern, with its warnings, stated plainly.

Drawing only: the page runs the prediction in a worker and hands the result here.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.progress import Progress
from labeltune.core.xrd.results import Alternative, PhaseCall, XrdPrediction
from labeltune.ui.xrd_sample import SampleFields

NAME_ROLE = Qt.ItemDataRole.UserRole
COLUMNS = ("Phase", "Formula", "Probability", "Fraction", "Lattice shift")
ALTERNATIVE_COLUMNS = ("Phase set (weight fractions)", "Rwp", "χ²")
WARNING_COLOUR = "#D55E00"
PHASE_ROWS_SHOWN = 5
"""Rows of the phase table always in view: the phases and candidates of a typical result (ADR 0057)."""


def percent_text(value: float | None, digits: int = 0) -> str:
    """``97 %`` (or ``—`` when unknown)."""
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def lattice_text(call: PhaseCall) -> str:
    """``+0.31 % (−0.12°)``: the fitted lattice change and the shift of the strongest peak."""
    parts = []
    if call.lattice_scale is not None:
        parts.append(f"{(call.lattice_scale - 1.0) * 100:+.2f} %")
    if call.shift_deg is not None:
        shift = f"{call.shift_deg:+.2f}°".replace("-", "−")
        parts.append(f"({shift})" if parts else shift)
    return " ".join(parts) or "—"


def read_only_table(name: str, columns: tuple[str, ...], tooltip: str) -> QTableWidget:
    """A table of whole rows, one selectable at a time, not editable; the first column stretches."""
    table = QTableWidget(0, len(columns))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setToolTip(tooltip)
    rows = table.verticalHeader()
    rows.setDefaultSectionSize(table.fontMetrics().height() + 8)  # a line and a little air, not 30 px
    rows.setMinimumSectionSize(table.fontMetrics().height() + 4)
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    for column in range(1, len(columns)):
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    return table


def fit_rows(table: QTableWidget, rows: int) -> None:
    """Make ``table`` at least tall enough for its header and ``rows`` rows."""
    header = table.horizontalHeader().sizeHint().height()
    row = table.verticalHeader().defaultSectionSize()
    table.setMinimumHeight(header + rows * row + 2 * table.frameWidth())


def alternative_text(alternative: Alternative) -> str:
    """``corundum 96 % + quartz 4 %`` (``✓`` first when it is the model's choice)."""
    mix = " + ".join(
        f"{name} {fraction * 100:.0f} %"
        for name, fraction in zip(alternative.phases, alternative.fractions, strict=False)
    )
    return f"✓ {mix}" if alternative.chosen else mix


def warnings_html(prediction: XrdPrediction) -> str:
    """The prediction's doubts as short HTML lines: warnings, unexplained peaks, no phase found, fit."""
    lines: list[str] = []
    if not prediction.phases:
        lines.append(
            "No phase is likely enough to call present: the sample may hold a phase the library lacks "
            "(unknown phase), or be amorphous."
        )
    lines.extend(html.escape(text) for text in prediction.warnings)
    peaks = sorted(prediction.unexplained_peaks, key=lambda p: -p.height)
    said = peaks and any(f"{peaks[0].two_theta:.1f}°" in text for text in prediction.warnings)
    if peaks and not said:  # the fit's warnings often name them already
        shown = ", ".join(f"{p.two_theta:.2f}° (d {p.d:.3f} Å, {p.height * 100:.1f} %)" for p in peaks[:5])
        more = f" and {len(peaks) - 5} more" if len(peaks) > 5 else ""
        lines.append(
            f"{len(peaks)} peak(s) that no identified phase explains, at 2θ {shown}{more}: an "
            "impurity, or a phase missing from the library?"
        )
    out = [f'<p style="color:{WARNING_COLOUR}; margin:0">⚠ {line}</p>' for line in lines]
    if prediction.amorphous is not None and prediction.internal_standard is not None:
        name, spiked = prediction.internal_standard
        out.append(
            f"<p style='margin:0'>Amorphous / unidentified: {prediction.amorphous * 100:.1f} ± "
            f"{(prediction.amorphous_esd or 0) * 100:.1f} wt% (internal standard {html.escape(name)} at "
            f"{spiked * 100:g} %).</p>"
        )
    if prediction.detection_limits:
        out.append(
            "<p style='margin:0'>Tried and not found (detection limit, wt%): "
            f"{html.escape(prediction.limits_text())}.</p>"
        )
    if prediction.residual is not None:
        fit = f"Fit of the identified phases: R<sub>wp</sub> {prediction.residual * 100:.1f} %"
        if prediction.zero_shift is not None:
            fit += f", zero shift {prediction.zero_shift:+.3f}°"
        out.append(f"<p style='margin:0'>{fit}.</p>")
    return "".join(out)


class PredictionPanel(QWidget):
    """Identify buttons, the table of phases the model found, and its warnings."""

    identify_requested = Signal(bool)  # True: every pattern of the project, False: the current one
    stop_requested = Signal()
    use_as_label_requested = Signal()
    phase_selected = Signal(str)  # a row chosen in the table ("" for none): show its activation
    alternative_chosen = Signal(int)  # the row of a competing phase set to label the pattern with
    alternative_selected = Signal(int)  # a competing phase set clicked: draw its fit (-1: the model's choice)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._prediction: XrdPrediction | None = None
        self.model_label = QLabel()
        self.model_label.setObjectName("modelStatus")
        self.model_label.setWordWrap(True)
        self.identify_button = QPushButton("&Identify phases")
        self.identify_button.setToolTip(
            "Let the model identify the phases in this pattern (in the background)"
        )
        self.identify_all_button = QPushButton("Identify in &all patterns")
        self.identify_all_button.setToolTip("Identify the phases in every pattern of the project")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop identifying; patterns already done keep their result")
        self.sample_fields = SampleFields()  # internal standard and particle size (ui/xrd_sample.py)
        self.standard_edit = self.sample_fields.standard_edit
        self.use_button = QPushButton("&Use as label")
        self.use_button.setToolTip("Tick exactly the phases the model found (saved at once; Ctrl+Z undoes)")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumHeight(14)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()
        self.table = read_only_table(
            "predictionTable",
            COLUMNS,
            "Phases the model found (bold) and the next most likely ones. Select a row to shade the parts "
            "of the pattern behind that phase's probability",
        )
        self.alternatives_label = QLabel("Competing hypotheses, best fit first")
        self.alternatives_table = read_only_table(
            "alternativesTable",
            ALTERNATIVE_COLUMNS,
            "Whole phase sets the fit tried for this pattern, lowest Rwp (best fit) first; ✓ = the model's "
            "choice. Click one to draw its fit over the pattern. A further phase always lowers Rwp a little: "
            "prefer the simpler set unless the gain is clear. Double-click or 'Label with this set' to use "
            "one (Ctrl+Z undoes)",
        )
        self.use_alternative_button = QPushButton("Label with this &set")
        self.use_alternative_button.setToolTip(
            "Tick exactly the phases of the selected hypothesis, with its weight fractions (Ctrl+Z undoes)"
        )
        self.warnings_label = QLabel()
        self.warnings_label.setObjectName("predictionWarnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setTextFormat(Qt.TextFormat.RichText)
        self.warnings_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QHBoxLayout()
        buttons.addWidget(self.identify_button)
        buttons.addWidget(self.identify_all_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.sample_fields)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_label)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self._results_splitter(), 1)

        self.identify_button.clicked.connect(lambda: self.identify_requested.emit(False))
        self.identify_all_button.clicked.connect(lambda: self.identify_requested.emit(True))
        self.stop_button.clicked.connect(self.stop_requested)
        self.use_button.clicked.connect(self.use_as_label_requested)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.alternatives_table.itemSelectionChanged.connect(self._on_alternatives_table_selection_changed)
        self.alternatives_table.cellDoubleClicked.connect(
            lambda row, _column: self.alternative_chosen.emit(row)
        )
        self.use_alternative_button.clicked.connect(self._on_use_alternative_button_clicked)
        self.set_state(has_model=False, has_pattern=False, busy=False)
        self.show_prediction(None)

    def _results_splitter(self) -> QSplitter:
        """Phases | competing hypotheses | warnings, the phases first (ADR 0057: ≥ 5 rows at 1400×900)."""
        self.alternatives_box = QWidget()
        alternatives_bar = QHBoxLayout()
        alternatives_bar.addWidget(self.alternatives_label, 1)
        alternatives_bar.addWidget(self.use_alternative_button)
        box = QVBoxLayout(self.alternatives_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(alternatives_bar)
        box.addWidget(self.alternatives_table, 1)
        self.warnings_area = warnings = QScrollArea()  # many warnings scroll, not squeezing the tables
        warnings.setWidgetResizable(True)
        warnings.setFrameShape(QFrame.Shape.NoFrame)
        warnings.setWidget(self.warnings_label)
        self.warnings_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("predictionSplitter")
        self.splitter.setChildrenCollapsible(False)
        for pane, stretch in ((self.table, 4), (self.alternatives_box, 2), (warnings, 1)):
            self.splitter.addWidget(pane)
            self.splitter.setStretchFactor(self.splitter.count() - 1, stretch)
        fit_rows(self.table, PHASE_ROWS_SHOWN)  # a typical result whole, however the splitters are dragged
        fit_rows(self.alternatives_table, 2)
        warnings.setMinimumHeight(2 * self.warnings_label.fontMetrics().lineSpacing() + 4)
        row = self.table.verticalHeader().defaultSectionSize()
        self.splitter.setSizes([(PHASE_ROWS_SHOWN + 2) * row, 4 * row, 2 * row])
        return self.splitter

    def _give_alternatives_room(self) -> None:
        """A hypotheses pane shown again gets its rows back (a splitter keeps a hidden pane's size 0)."""
        sizes = self.splitter.sizes()
        want = (
            self.alternatives_box.minimumSizeHint().height()
            + self.table.verticalHeader().defaultSectionSize()
        )
        if sum(sizes) == 0 or sizes[1] >= want:
            return  # not laid out yet (it will share the room then) or room enough
        spare_table = max(sizes[0] - self.table.minimumHeight(), 0)
        from_table = min(spare_table, want - sizes[1])
        from_warnings = min(
            max(sizes[2] - self.warnings_area.minimumHeight(), 0), want - sizes[1] - from_table
        )
        self.splitter.setSizes([sizes[0] - from_table, want, sizes[2] - from_warnings])

    # -- state --------------------------------------------------------------------------------------
    def set_model_text(self, text: str) -> None:
        """What model is used (or that there is none, and what to do)."""
        self.model_label.setText(text)

    def set_state(self, *, has_model: bool, has_pattern: bool, busy: bool) -> None:
        """Enable the buttons that make sense now."""
        self.identify_button.setEnabled(has_model and has_pattern and not busy)
        self.identify_all_button.setEnabled(has_model and has_pattern and not busy)
        self.stop_button.setVisible(busy)
        self.progress_bar.setVisible(busy)
        if busy:
            self.progress_bar.setRange(0, 0)
        self.use_button.setEnabled(self._prediction is not None and bool(self._prediction.phases))

    def set_progress(self, progress: Progress) -> None:
        """Show how far identification is."""
        if progress.total > 0:
            self.progress_bar.setRange(0, progress.total)
            self.progress_bar.setValue(min(progress.done, progress.total))

    # -- content ------------------------------------------------------------------------------------
    def prediction(self) -> XrdPrediction | None:
        """The prediction shown."""
        return self._prediction

    def show_prediction(self, prediction: XrdPrediction | None, note: str = "") -> None:
        """Show a prediction (``None``: an empty table and ``note``)."""
        self._prediction = prediction
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        if prediction is not None:
            calls = [(c, True) for c in prediction.phases] + [(c, False) for c in prediction.candidates]
            self.table.setRowCount(len(calls))
            for row, (call, present) in enumerate(calls):
                self._fill_row(row, call, present, prediction.detection_limits.get(call.name))
        self.table.blockSignals(False)
        self._fill_alternatives([] if prediction is None else prediction.alternatives)
        if prediction is None:
            self.warnings_label.setText(html.escape(note))
        else:
            self.warnings_label.setText(warnings_html(prediction))
        self.use_button.setEnabled(prediction is not None and bool(prediction.phases))
        if prediction is not None and prediction.phases:
            self.table.selectRow(0)
        else:
            self.phase_selected.emit("")

    def _fill_row(self, row: int, call: PhaseCall, present: bool, limit: float | None = None) -> None:
        """One phase; a candidate the fit tried and did not find shows its detection limit ("< 0.4 %")."""
        fraction = percent_text(call.fraction) if present else "—"
        if present and call.fraction is not None and call.fraction_esd is not None:
            fraction = f"{call.fraction * 100:.1f} ± {call.fraction_esd * 100:.1f} %"
        tried = not present and limit is not None and limit < 1.0
        if tried and limit is not None:
            fraction = f"< {limit * 100:.1f} %"
        texts = (call.name, call.formula, percent_text(call.probability), fraction, lattice_text(call))
        for column, text in enumerate(texts):
            item = QTableWidgetItem(text)
            item.setData(NAME_ROLE, call.name)
            if column >= 2:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if present:
                font = item.font()
                font.setWeight(QFont.Weight.DemiBold)
                item.setFont(font)
                item.setToolTip(f"{call.name}: called present")
            else:
                item.setForeground(
                    self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
                )
                item.setToolTip(
                    f"{call.name}: tried by the fit and not found; it would have been seen from about "
                    f"{limit * 100:.1f} wt% (detection limit: found about half the time at it, "
                    "most of the time at 1.5 times it)"
                    if tried and limit is not None
                    else f"{call.name}: considered, but not likely enough to call present"
                )
            self.table.setItem(row, column, item)

    def _fill_alternatives(self, alternatives: list[Alternative]) -> None:
        table = self.alternatives_table
        table.blockSignals(True)  # a new prediction shows the model's choice: no hypothesis selected
        table.clearSelection()
        table.setRowCount(len(alternatives))
        for row, alternative in enumerate(alternatives):
            chi2 = "—" if alternative.chi2 is None else f"{alternative.chi2:.3g}"
            texts = (alternative_text(alternative), percent_text(alternative.rwp, 1), chi2)
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if column >= 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                else:  # a set of long CIF names is cut in the column: the whole set on hover
                    item.setToolTip(text.replace(" + ", "\n+ "))
                if alternative.chosen:
                    font = item.font()
                    font.setWeight(QFont.Weight.DemiBold)
                    item.setFont(font)
                table.setItem(row, column, item)
        table.blockSignals(False)
        shown = bool(alternatives)
        if shown and self.alternatives_box.isHidden():
            self.alternatives_box.show()
            self._give_alternatives_room()
        self.alternatives_box.setVisible(shown)
        table.setVisible(shown)
        self._update_alternative_button()

    def alternatives(self) -> list[Alternative]:
        """The competing phase sets listed (the shown prediction's)."""
        return [] if self._prediction is None else list(self._prediction.alternatives)

    def selected_alternative(self) -> int:
        """The row of the selected hypothesis (-1 when none)."""
        rows = self.alternatives_table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def _update_alternative_button(self) -> None:
        self.use_alternative_button.setEnabled(self.selected_alternative() >= 0)

    def _on_alternatives_table_selection_changed(self) -> None:
        self._update_alternative_button()
        self.alternative_selected.emit(self.selected_alternative())

    def _on_use_alternative_button_clicked(self) -> None:
        row = self.selected_alternative()
        if row >= 0:
            self.alternative_chosen.emit(row)

    def selected_phase(self) -> str:
        """The phase of the selected row ("" when none)."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return ""
        item = self.table.item(rows[0].row(), 0)
        return "" if item is None else str(item.data(NAME_ROLE))

    def _on_table_selection_changed(self) -> None:
        self.phase_selected.emit(self.selected_phase())
