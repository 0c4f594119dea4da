"""A powder pattern plot (pyqtgraph): the measurement, phase stick patterns, a fitted curve, activation.

Everything here is drawing: the page hands over plain arrays and :class:`StickSet` records. Patterns
have at most a few ten thousand points, so every update is a handful of vectorised numpy calls.

Log intensity is computed here rather than by pyqtgraph's log mode, so that zero and negative
intensities (background-subtracted data) are clipped to a floor instead of becoming -inf.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from labeltune.core.xrd.bragg import d_spacing
from labeltune.ui.plot_legend import add_placed_legend
from labeltune.ui.plot_style import palette_colours, style_plot

#: A qualitative palette that colour-blind readers can tell apart (Okabe & Ito 2008, then Tol's muted).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#999933")
FIT_COLOUR = "#7f7f7f"
UNEXPLAINED_COLOUR = "#D55E00"
STICK_TOP = 0.9
"""A phase with no matching peak in the measurement reaches this share of the pattern's height."""


def phase_colour(index: int) -> str:
    """The palette colour of the ``index``-th phase (the palette repeats after eight)."""
    return PALETTE[index % len(PALETTE)]


def bragg_d(two_theta: float, wavelength: float) -> float:
    """The d-spacing (Å) of a reflection at ``two_theta`` (degrees) by Bragg's law, d = λ / (2 sin θ)."""
    return d_spacing(two_theta, wavelength)


def format_intensity(value: float) -> str:
    """Counts as whole numbers, small (normalised) intensities with four significant digits."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _tick_text(value: float) -> str:
    return f"{value:.0f}" if 1 <= value < 1e7 else f"{value:.3g}"


@dataclass(frozen=True)
class StickSet:
    """One phase's reference peaks to draw over a pattern; ``heights`` are relative (any scale)."""

    name: str
    formula: str
    colour: str
    two_theta: np.ndarray
    heights: np.ndarray
    probability: float | None = None
    fraction: float | None = None
    note: str = ""  # e.g. "your label", "preview"
    thin: bool = False  # a tentative set (a preview): thin dashed sticks

    def legend_text(self) -> str:
        """``Mn2O3_206 (Mn2O3) · p 0.97 · 45 wt%`` (the parts that are known)."""
        said = self.formula in ("", self.name) or self.name.startswith(
            f"{self.formula} ("
        )  # "NiO (bunsenite)"
        parts = [self.name if said else f"{self.name} ({self.formula})"]
        if self.probability is not None:
            parts.append(f"p {self.probability:.2f}")
        if self.fraction is not None:
            parts.append(f"{self.fraction * 100:.0f} wt%")
        if self.note:
            parts.append(self.note)
        return " · ".join(parts)


class IntensityAxis(pg.AxisItem):
    """The intensity axis; in log scale the view holds log10(intensity) and the ticks show intensities."""

    def __init__(self, orientation: str = "left") -> None:
        super().__init__(orientation)
        self.log_scale = False

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        """In log scale: whole decades, with 2 and 5 times each over less than three decades."""
        if not self.log_scale or not (math.isfinite(minVal) and math.isfinite(maxVal)) or maxVal <= minVal:
            return super().tickValues(minVal, maxVal, size)  # type: ignore[no-any-return]
        mantissas = (1.0,) if maxVal - minVal >= 3 else (1.0, 2.0, 5.0)
        values = [
            math.log10(m) + decade
            for decade in range(math.floor(minVal), math.ceil(maxVal) + 1)
            for m in mantissas
            if minVal <= math.log10(m) + decade <= maxVal
        ]
        return [(1.0, values)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        """Intensities, also in log scale (10, 100, 1000 rather than 1, 2, 3)."""
        if not self.log_scale:
            return super().tickStrings(values, scale, spacing)  # type: ignore[no-any-return]
        return [_tick_text(10.0**v) for v in values]


class PatternPlot(QWidget):
    """One powder pattern with zoom/pan, a 2θ / d / intensity read-out, sticks, fit and activation."""

    crosshair_moved = Signal(float)  # 2θ under the mouse

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._x = np.zeros(0)
        self._y = np.zeros(0)
        self._wavelength: float | None = None
        self._floor = 1.0
        self._sticks: list[StickSet] = []
        self._calc: tuple[np.ndarray, np.ndarray] | None = None
        self._activation: tuple[np.ndarray, np.ndarray, str] | None = None
        self._unexplained = np.zeros(0)

        self.axis = IntensityAxis("left")
        self.plot = pg.PlotWidget(axisItems={"left": self.axis})
        self.plot.setObjectName("patternPlot")
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "2θ (°)")
        item.setLabel("left", "Intensity")
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")  # peak mode keeps narrow peaks when zoomed out
        self.plot.setMinimumHeight(220)
        self.plot.setToolTip("Drag to pan, scroll to zoom (over an axis: that axis only)")
        # top right, or top left when peaks stand there; where the user drags it, it stays
        self.legend = add_placed_legend(item, ((1, 1), (0, 1)), labelTextSize="9pt")

        self.activation_image = pg.ImageItem()
        self.activation_image.setZValue(-10)
        item.addItem(self.activation_image, ignoreBounds=True)
        self.curve = pg.PlotDataItem([], [])
        self.curve.setZValue(5)
        item.addItem(self.curve)
        self.calc_curve = pg.PlotDataItem([], [])
        self.calc_curve.setZValue(6)
        item.addItem(self.calc_curve)
        self.stick_items: list[pg.PlotDataItem] = []
        self.unexplained_item = pg.ScatterPlotItem(
            symbol="t", size=11, brush=pg.mkBrush(UNEXPLAINED_COLOUR), pen=pg.mkPen(None)
        )
        self.unexplained_item.setZValue(15)
        item.addItem(self.unexplained_item)
        self.vline = pg.InfiniteLine(angle=90, movable=False)
        self.vline.setZValue(20)
        self.vline.hide()
        item.addItem(self.vline, ignoreBounds=True)

        self.log_check = QCheckBox("&Log intensity")
        self.log_check.setToolTip("Logarithmic intensity axis: shows weak peaks next to strong ones")
        self.reset_button = QPushButton("Reset &view")
        self.reset_button.setToolTip("Show the whole pattern again after zooming or panning")
        self.readout = QLabel()
        self.readout.setObjectName("patternReadout")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setToolTip("Position under the mouse: angle, d-spacing (Bragg's law) and intensity")
        self.activation_label = QLabel()
        self.activation_label.setObjectName("activationNote")
        self.activation_label.setWordWrap(True)
        self.activation_label.hide()
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.readout, 1)
        bar.addWidget(self.log_check)
        bar.addWidget(self.reset_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.activation_label)

        self.log_check.toggled.connect(self._on_log_check_toggled)
        self.reset_button.clicked.connect(self.reset_view)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        item.vb.sigRangeChanged.connect(self._place_legend)
        self._apply_palette()
        self._set_readout_hint()

    # -- data ---------------------------------------------------------------------------------------
    def set_pattern(self, two_theta: Any, intensity: Any, wavelength: float | None) -> None:
        """Show a new pattern (removing sticks, fit and activation of the previous one) and fit the view."""
        x = np.asarray(two_theta, dtype=np.float64).reshape(-1)
        y = np.asarray(intensity, dtype=np.float64).reshape(-1)
        if x.shape != y.shape:
            raise ValueError(f"{x.size} angles but {y.size} intensities")
        self._x, self._y, self._wavelength = x, y, wavelength
        positive = y[y > 0]
        top = float(positive.max()) if positive.size else 1.0
        self._floor = max(float(positive.min()) if positive.size else 1.0, top * 1e-6)
        self._sticks, self._calc, self._activation = [], None, None
        self._unexplained = np.zeros(0)
        self._redraw()
        self.reset_view()
        self._set_readout_hint()

    def set_phases(self, sticks: Sequence[StickSet]) -> None:
        """Draw each phase's sticks (its own colour) with a legend line: name, probability, fraction."""
        self._sticks = list(sticks)
        self._draw_sticks()

    def set_calculated(self, two_theta: Any | None, curve: Any | None = None) -> None:
        """Overlay a calculated (fitted) profile, or remove it with ``None``."""
        if two_theta is None or curve is None:
            self._calc = None
        else:
            self._calc = (
                np.asarray(two_theta, dtype=np.float64).reshape(-1),
                np.asarray(curve, dtype=np.float64).reshape(-1),
            )
        self._draw_calc()
        self._draw_sticks()  # keeps the legend order: fit line first

    def set_activation(self, two_theta: Any | None, values: Any | None = None, label: str = "") -> None:
        """Shade the 2θ regions that drove a decision (``values`` 0..1), or remove the shading."""
        if two_theta is None or values is None:
            self._activation = None
        else:
            x = np.asarray(two_theta, dtype=np.float64).reshape(-1)
            v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64).reshape(-1)), 0.0, 1.0)
            if x.shape != v.shape or x.size < 2:
                raise ValueError("activation needs as many values as angles (at least two)")
            self._activation = (x, v, label)
        self._draw_activation()

    def set_unexplained(self, two_theta: Sequence[float]) -> None:
        """Mark peaks that no identified phase explains (a triangle over each), or none."""
        self._unexplained = np.asarray(list(two_theta), dtype=np.float64).reshape(-1)
        self._draw_sticks()

    def unexplained_positions(self) -> list[float]:
        """The 2θ of the marked unexplained peaks."""
        x, _y = self.unexplained_item.getData()
        return [] if x is None else [float(v) for v in x]

    def clear(self) -> None:
        """Show nothing."""
        self._x, self._y, self._wavelength = np.zeros(0), np.zeros(0), None
        self._sticks, self._calc, self._activation = [], None, None
        self._unexplained = np.zeros(0)
        self._redraw()
        self._set_readout_hint()

    # -- state for callers and tests ----------------------------------------------------------------
    @property
    def log_scale(self) -> bool:
        """Whether the intensity axis is logarithmic."""
        return self.log_check.isChecked()

    def set_log_scale(self, on: bool) -> None:
        """Switch between linear and logarithmic intensity."""
        self.log_check.setChecked(on)

    def displayed_intensity(self) -> np.ndarray:
        """The y values of the measured curve as drawn (log10 of clipped intensity in log scale)."""
        _x, y = self.curve.getData()
        return np.zeros(0) if y is None else np.asarray(y)

    def legend_texts(self) -> list[str]:
        """The legend's lines, in order."""
        return [label.text for _sample, label in self.legend.items]

    def stick_sets(self) -> list[StickSet]:
        """The phases drawn as sticks."""
        return list(self._sticks)

    # -- view ---------------------------------------------------------------------------------------
    def reset_view(self) -> None:
        """Fit the whole pattern (and its sticks) in the view."""
        item = self.plot.getPlotItem()
        if self._x.size:
            low, high = self._display(np.array([self._y.min(), self._y.max()]))
            pad = 0.04 * max(high - low, 1e-9)
            item.setXRange(float(self._x[0]), float(self._x[-1]), padding=0.01)
            item.setYRange(float(low - pad), float(high + 2.5 * pad), padding=0)
        else:
            item.setXRange(0, 1)
            item.setYRange(0, 1)

    def move_crosshair(self, two_theta: float) -> str:
        """Put the crosshair at ``two_theta`` and return the read-out shown for it."""
        self.vline.setPos(two_theta)
        self.vline.setVisible(bool(self._x.size))
        text = self.readout_text(two_theta)
        self.readout.setText(text)
        self.crosshair_moved.emit(two_theta)
        return text

    def readout_text(self, two_theta: float) -> str:
        """``2θ 31.250°   d 2.8601 Å   I 1234`` for a position over the pattern."""
        parts = [f"2θ {two_theta:.3f}°"]
        if self._wavelength is not None:
            d = bragg_d(two_theta, self._wavelength)
            parts.append(f"d {d:.4f} Å" if math.isfinite(d) else "d ∞")
        else:
            parts.append("d — (wavelength unknown)")
        if self._x.size and self._x[0] <= two_theta <= self._x[-1]:
            parts.append(f"I {format_intensity(float(np.interp(two_theta, self._x, self._y)))}")
        return "    ".join(parts)

    def _set_readout_hint(self) -> None:
        self.vline.hide()
        self.readout.setText(
            "Move the mouse over the pattern to read 2θ, d and intensity" if self._x.size else "No pattern"
        )

    # -- drawing ------------------------------------------------------------------------------------
    def _display(self, values: np.ndarray) -> np.ndarray:
        if not self.log_scale:
            return values
        return np.log10(np.maximum(values, self._floor))

    def _baseline(self) -> float:
        """A level under the peaks to start sticks from: the 2nd percentile of the intensity."""
        return float(np.percentile(self._y, 2)) if self._y.size else 0.0

    def _redraw(self) -> None:
        self.axis.log_scale = self.log_scale
        self.curve.setData(self._x, self._display(self._y))
        self._draw_calc()
        self._draw_sticks()
        self._draw_activation()
        self.axis.picture = None  # tick strings depend on the scale: drop the cached axis picture
        self.axis.update()

    def _draw_calc(self) -> None:
        if self._calc is None:
            self.calc_curve.setData([], [])
        else:
            self.calc_curve.setData(self._calc[0], self._display(self._calc[1]))

    def _draw_sticks(self) -> None:
        item = self.plot.getPlotItem()
        for old in self.stick_items:
            item.removeItem(old)
        self.stick_items = []
        self.legend.clear()
        marks = self._unexplained_points()
        self.legend.setVisible(
            bool(self._x.size and (self._calc is not None or self._sticks or marks[0].size))
        )
        if self._calc is not None:
            self.legend.addItem(self.calc_curve, "calculated (fit)")
        self.unexplained_item.setData(*marks)
        if not self._x.size:
            return
        base = self._baseline()
        span = max(float(self._y.max()) - base, 1e-12)
        for sticks in self._sticks:
            x = np.asarray(sticks.two_theta, dtype=np.float64).reshape(-1)
            h = np.asarray(sticks.heights, dtype=np.float64).reshape(-1)
            inside = (x >= self._x[0]) & (x <= self._x[-1]) & (h > 0)
            x, h = x[inside], h[inside]
            tops = base + h / h.max() * self._stick_scale(x, h, base, span) if h.size else h
            xs = np.repeat(x, 2)
            ys = np.empty(2 * x.size)
            ys[0::2] = base
            ys[1::2] = tops
            pen = (
                pg.mkPen(sticks.colour, width=1.5, style=Qt.PenStyle.DashLine)
                if sticks.thin
                else pg.mkPen(sticks.colour, width=2)
            )
            stick_item = pg.PlotDataItem(xs, self._display(ys), connect="pairs", pen=pen)
            stick_item.setZValue(10)
            item.addItem(stick_item)
            self.stick_items.append(stick_item)
            self.legend.addItem(stick_item, sticks.legend_text())
        if marks[0].size:
            self.legend.addItem(self.unexplained_item, "peak no phase explains")
        self._place_legend()

    def _place_legend(self, *_args: object) -> None:
        """Keep the legend off the pattern, the sticks and the fit as drawn now."""
        if not self.legend.isVisible() or not self._x.size:
            return
        parts = [np.column_stack([self._x, self._display(self._y)])]
        for stick_item in self.stick_items:
            xs, ys = stick_item.getData()
            if xs is not None and len(xs):
                parts.append(np.column_stack([xs[1::2], ys[1::2]]))  # the stick tops
        if self._calc is not None:
            parts.append(np.column_stack([self._calc[0], self._display(self._calc[1])]))
        self.legend.place(np.concatenate(parts))

    def _unexplained_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Marker positions (as drawn): over each unexplained peak inside the pattern, a little above it."""
        x = self._unexplained
        if not self._x.size or not x.size:
            return np.zeros(0), np.zeros(0)
        x = x[(x >= self._x[0]) & (x <= self._x[-1])]
        low, high = self._display(np.array([self._y.min(), self._y.max()]))
        return x, self._display(np.interp(x, self._x, self._y)) + 0.04 * (float(high - low) or 1.0)

    def _stick_scale(self, x: np.ndarray, h: np.ndarray, base: float, span: float) -> float:
        """The height of the phase's strongest stick: the measured peak near it, else ``STICK_TOP``."""
        strongest = float(x[int(np.argmax(h))])
        lo, hi = np.searchsorted(self._x, [strongest - 0.3, strongest + 0.3])
        if hi > lo:
            peak = float(self._y[lo:hi].max()) - base
            if peak > 0.03 * span:
                return min(peak, span)
        return STICK_TOP * span

    def _draw_activation(self) -> None:
        if self._activation is None or not self._x.size:
            self.activation_image.hide()
            self.activation_label.hide()
            return
        x, v, label = self._activation
        self.activation_label.show()
        if not float(v.max()) > 0:  # nothing to shade: say so rather than claim a shading
            self.activation_image.hide()
            self.activation_label.setText(
                f"The model's activation map for {label or 'this decision'} is empty: no part of the "
                "pattern stands out."
            )
            return
        columns = int(min(2000, max(2, x.size)))
        grid = np.linspace(x[0], x[-1], columns)
        values = np.interp(grid, x, v)
        colour = QColor(self._activation_colour(label))
        rgba = np.empty((columns, 1, 4), dtype=np.ubyte)
        rgba[:, 0, 0], rgba[:, 0, 1], rgba[:, 0, 2] = colour.red(), colour.green(), colour.blue()
        rgba[:, 0, 3] = np.round(values * 110).astype(np.ubyte)
        self.activation_image.setImage(rgba, autoLevels=False, levels=(0, 255))
        low, high = self._display(np.array([self._y.min(), self._y.max()]))
        height = float(high - low) or 1.0
        self.activation_image.setRect(
            QRectF(float(x[0]), float(low) - 0.2 * height, float(x[-1] - x[0]), 1.6 * height)
        )
        self.activation_image.show()
        self.activation_label.setText(
            f"Shaded: the parts of the pattern that made the model call {label}."
            if label
            else "Shaded: the parts of the pattern the model based its decision on."
        )

    def _activation_colour(self, label: str) -> str:
        for sticks in self._sticks:
            if sticks.name == label:
                return sticks.colour
        return PALETTE[0]

    # -- events and palette -------------------------------------------------------------------------
    def _on_log_check_toggled(self, _on: bool) -> None:
        self._redraw()
        self.reset_view()

    def _on_scene_mouse_moved(self, position: QPointF) -> None:
        view = self.plot.getPlotItem().getViewBox()
        if not self._x.size or not view.sceneBoundingRect().contains(position):
            return
        self.move_crosshair(float(view.mapSceneToView(position).x()))

    def changeEvent(self, event: QEvent) -> None:
        """Follow palette changes (light/dark mode switches)."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        style_plot(self.plot, self.palette(), legend_alpha=210)
        _base, text = palette_colours(self.palette())
        self.curve.setPen(pg.mkPen(text, width=1))
        self.calc_curve.setPen(pg.mkPen(FIT_COLOUR, width=1.5, style=Qt.PenStyle.DashLine))
        dim = QColor(text)
        dim.setAlpha(140)
        self.vline.setPen(pg.mkPen(dim, width=1, style=Qt.PenStyle.DotLine))
        self._draw_sticks()
