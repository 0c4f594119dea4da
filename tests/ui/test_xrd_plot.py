"""The pattern plot (read-out 2θ → d by Bragg, log scale with zeros, sticks, activation) and its overlays."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF

from labeltune.core.xrd.library import Library, Peaks, Phase
from labeltune.core.xrd.results import PhaseCall, UnexplainedPeak, XrdPrediction
from labeltune.core.xrd.xrd_project import XrdLabel
from labeltune.ui.xrd_overlay import bragg_two_theta, build_stick_sets, unexplained_on_pattern
from labeltune.ui.xrd_plot import PALETTE, PatternPlot, StickSet, bragg_d, phase_colour

CU = 1.5406


@pytest.fixture
def plot(qtbot) -> PatternPlot:
    widget = PatternPlot()
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def pattern(zeros: bool = False) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(10.0, 80.0, 7001)
    y = 200.0 + 5000.0 * np.exp(-(((x - 30.0) / 0.1) ** 2)) + 800.0 * np.exp(-(((x - 50.0) / 0.1) ** 2))
    if zeros:
        y[:500] = 0.0
        y[500:510] = -3.0  # background-subtracted data dip below zero
    return x, y


def sticks(name: str, positions: list[float], colour: str, **kwargs: object) -> StickSet:
    return StickSet(
        name, name.split("_")[0], colour, np.array(positions), np.array([100.0] * len(positions)), **kwargs
    )  # type: ignore[arg-type]


def test_bragg_d_spacing() -> None:
    # Si 111 at 28.443° 2θ with Cu Kα1 has d = 3.1356 Å
    assert bragg_d(28.443, CU) == pytest.approx(3.1356, abs=2e-4)
    assert math.isinf(bragg_d(0.0, CU))


def test_crosshair_reads_out_two_theta_d_and_intensity(plot: PatternPlot) -> None:
    x, y = pattern()
    plot.set_pattern(x, y, CU)
    text = plot.move_crosshair(30.0)
    expected_d = CU / (2 * math.sin(math.radians(15.0)))
    assert text == f"2θ 30.000°    d {expected_d:.4f} Å    I 5200"
    assert plot.readout.text() == text and plot.vline.isVisible() and plot.vline.value() == 30.0
    plot.set_pattern(x, y, None)
    assert "d — (wavelength unknown)" in plot.move_crosshair(30.0)
    assert "I " not in plot.move_crosshair(95.0)  # outside the data: no intensity


def test_mouse_over_the_plot_moves_the_crosshair(plot: PatternPlot, qtbot) -> None:
    x, y = pattern()
    plot.set_pattern(x, y, CU)
    view = plot.plot.getPlotItem().getViewBox()
    scene_point = view.mapViewToScene(QPointF(50.0, 1000.0))
    moved: list[float] = []
    plot.crosshair_moved.connect(moved.append)
    plot.plot.scene().sigMouseMoved.emit(scene_point)  # what a mouse move over the plot sends
    assert moved and moved[0] == pytest.approx(50.0, abs=0.05)
    assert plot.readout.text().startswith("2θ 50.0")


def test_log_scale_copes_with_zeros_and_negative_values(plot: PatternPlot) -> None:
    x, y = pattern(zeros=True)
    plot.set_pattern(x, y, CU)
    assert np.array_equal(plot.displayed_intensity(), y)
    plot.set_log_scale(True)
    shown = plot.displayed_intensity()
    assert np.all(np.isfinite(shown))
    assert shown.min() == pytest.approx(math.log10(y[y > 0].min()))  # clipped to the smallest positive
    assert shown.max() == pytest.approx(math.log10(y.max()))
    ticks = plot.axis.tickValues(2.0, 4.0, 400)
    assert plot.axis.tickStrings(ticks[0][1], 1.0, 1.0)[:3] == ["100", "200", "500"]
    low, high = plot.plot.getPlotItem().viewRange()[1]
    assert low < math.log10(200.0) and high > math.log10(5200.0)  # the view follows the scale
    plot.set_log_scale(False)
    assert np.array_equal(plot.displayed_intensity(), y)


def test_sticks_get_distinct_colours_and_a_legend_line_each(plot: PatternPlot) -> None:
    x, y = pattern()
    plot.set_pattern(x, y, CU)
    sets = [
        sticks("A_1", [30.0, 60.0], phase_colour(0), probability=0.97, fraction=0.6),
        sticks("B_2", [50.0, 70.0, 95.0], phase_colour(1), probability=0.55),
        sticks("C", [40.0], phase_colour(2), note="your label"),
    ]
    plot.set_phases(sets)
    assert len(plot.stick_items) == 3
    assert plot.legend_texts() == ["A_1 (A) · p 0.97 · 60 wt%", "B_2 (B) · p 0.55", "C · your label"]
    assert len({phase_colour(i) for i in range(len(PALETTE))}) == len(PALETTE)
    xs, _ys = plot.stick_items[1].getData()
    assert sorted(set(xs.tolist())) == [50.0, 70.0]  # 95° lies outside the pattern
    a_x, a_y = plot.stick_items[0].getData()
    top_at_30 = a_y[1::2][list(a_x[1::2]).index(30.0)]
    assert top_at_30 == pytest.approx(y.max(), rel=0.01)  # the strongest stick meets its measured peak
    plot.set_calculated(x, y * 0.9)
    assert plot.legend_texts()[0] == "calculated (fit)" and len(plot.legend_texts()) == 4
    plot.set_calculated(None)
    plot.set_phases([])
    assert plot.stick_items == [] and not plot.legend.isVisible()


def test_activation_shades_the_pattern_and_explains_itself(plot: PatternPlot) -> None:
    x, y = pattern()
    plot.set_pattern(x, y, CU)
    plot.set_phases([sticks("A_1", [30.0], phase_colour(1))])
    grid = np.linspace(10.0, 80.0, 500)
    plot.set_activation(grid, np.exp(-(((grid - 30.0) / 2.0) ** 2)), "A_1")
    assert plot.activation_image.isVisible()
    assert "A_1" in plot.activation_label.text() and plot.activation_label.isVisibleTo(plot)
    image = plot.activation_image.image
    assert image.shape[1:] == (1, 4)
    strongest = int(np.argmax(image[:, 0, 3]))
    assert grid[0] + (grid[-1] - grid[0]) * strongest / (image.shape[0] - 1) == pytest.approx(30.0, abs=0.3)
    assert tuple(image[strongest, 0, :3]) == (0xD5, 0x5E, 0x00)  # the phase's own colour
    with pytest.raises(ValueError):
        plot.set_activation(grid, np.ones(3))
    plot.set_activation(grid, np.zeros_like(grid), "A_1")  # an empty map is said, not shaded
    assert not plot.activation_image.isVisible() and "empty" in plot.activation_label.text()
    plot.set_activation(None)
    assert not plot.activation_image.isVisible() and not plot.activation_label.isVisibleTo(plot)


def test_a_new_pattern_drops_the_old_overlays_and_clear_empties(plot: PatternPlot) -> None:
    x, y = pattern()
    plot.set_pattern(x, y, CU)
    plot.set_phases([sticks("A_1", [30.0], phase_colour(0))])
    plot.set_activation(x, np.ones_like(x) * 0.5, "A_1")
    plot.set_pattern(x, y * 2, CU)
    assert plot.stick_items == [] and not plot.activation_image.isVisible()
    plot.clear()
    assert plot.displayed_intensity().size == 0 and plot.readout.text() == "No pattern"


def test_unexplained_peaks_are_marked_over_the_pattern(plot: PatternPlot) -> None:
    x, y = pattern()
    plot.set_pattern(x, y, CU)
    plot.set_unexplained([50.0, 99.0])  # 99° lies outside the pattern
    assert plot.unexplained_positions() == [50.0]
    assert plot.legend_texts() == ["peak no phase explains"]
    _xs, ys = plot.unexplained_item.getData()
    assert ys[0] > 1000.0  # above the 1000-count peak at 50°
    plot.set_log_scale(True)
    _xs, ys = plot.unexplained_item.getData()
    assert math.log10(1000.0) < ys[0] < math.log10(5200.0)  # follows the scale
    plot.set_pattern(x, y, CU)
    assert plot.unexplained_positions() == []


# ------------------------------------------------------------------------------------ overlay


def _library() -> Library:
    library = Library(wavelength=CU, two_theta_range=(10.0, 80.0))
    for name, formula, peaks in (("TiO2_136", "TiO2", [27.4, 36.1]), ("TiO2_141", "TiO2", [25.3, 48.0])):
        library.phases.append(
            Phase(name, formula, "P1", 1, (4, 4, 4, 90, 90, 90), 64.0, 4.0, 1, "", 1.0, 1.0, 1.0)
        )
        two_theta = np.array(peaks)
        d = CU / (2 * np.sin(np.radians(two_theta) / 2))
        library.peaks[name] = Peaks(
            two_theta, d, np.array([100.0, 50.0]), np.ones((2, 3), int), np.ones(2, int)
        )
    return library


def test_overlay_draws_model_calls_label_polymorphs_and_a_thin_preview() -> None:
    library = _library()
    label = XrdLabel(("TiO2",))
    sets = build_stick_sets(CU, label, None, None, library, preview="TiO2_136")
    assert [(s.name, s.note, s.thin) for s in sets] == [
        ("TiO2_136", "TiO2 in your label", False),
        ("TiO2_141", "TiO2 in your label", False),
    ]
    call = PhaseCall("TiO2_141", "TiO2", 0.9, fraction=1.0, lattice_scale=1.01)
    prediction = XrdPrediction(path="p.xy", phases=[call])
    sets = build_stick_sets(CU, label, prediction, library, library, preview="TiO2_136")
    assert [(s.name, s.probability, s.note, s.thin) for s in sets] == [
        ("TiO2_141", 0.9, "in your label", False),  # the model drew a TiO2: no other polymorphs
        ("TiO2_136", None, "preview", True),
    ]
    shifted = bragg_two_theta(library.peaks["TiO2_141"].d * 1.01, CU)
    assert np.allclose(sets[0].two_theta, shifted) and shifted[0] < 25.3  # a larger lattice: lower angles
    cobalt = build_stick_sets(1.78897, XrdLabel(("TiO2_141",)), None, None, library)[0]
    assert cobalt.two_theta[0] == pytest.approx(29.4, abs=0.1)  # same d, Co Kα1
    assert unexplained_on_pattern(prediction, CU, CU) == []
    prediction.unexplained_peaks.append(UnexplainedPeak(30.0, bragg_d(30.0, CU), 0.2))
    assert unexplained_on_pattern(prediction, CU, 1.78897)[0] == pytest.approx(
        math.degrees(2 * math.asin(1.78897 / (2 * bragg_d(30.0, CU))))
    )


def _legend_hides(plot: PatternPlot) -> int:
    """How many drawn points of the pattern lie under the legend, as it stands on screen."""
    view_box = plot.plot.getPlotItem().vb
    rect = view_box.mapSceneToView(plot.legend.sceneBoundingRect()).boundingRect()
    x, y = plot._x, plot.displayed_intensity()
    return int(
        np.count_nonzero((x >= rect.left()) & (x <= rect.right()) & (y >= rect.top()) & (y <= rect.bottom()))
    )


def test_the_legend_keeps_off_the_peaks_and_stays_where_it_is_dragged(plot: PatternPlot, qtbot) -> None:
    x = np.linspace(10.0, 80.0, 7001)
    y = 200.0 + 5000.0 * np.exp(-(((x - 76.0) / 0.3) ** 2))  # the strongest peak far right, at the top
    plot.set_pattern(x, y, CU)
    plot.set_phases([sticks(f"P{i}_1", [20.0 + 5 * i], phase_colour(i)) for i in range(5)])
    qtbot.wait(50)  # the legend lays out its five rows
    plot._place_legend()
    qtbot.wait(50)
    assert plot.legend.corner == (0, 1)  # top left: the top right holds the peak
    assert _legend_hides(plot) == 0

    y = 200.0 + 5000.0 * np.exp(-(((x - 14.0) / 0.3) ** 2))  # now far left
    plot.set_pattern(x, y, CU)
    plot.set_phases([sticks(f"P{i}_1", [30.0 + 5 * i], phase_colour(i)) for i in range(5)])
    qtbot.wait(50)
    plot._place_legend()
    qtbot.wait(50)
    assert plot.legend.corner == (1, 1) and _legend_hides(plot) == 0

    plot.legend.moved_by_user = True  # what a drag with the mouse sets (pyqtgraph moves the item)
    plot.set_pattern(x[::-1].copy()[::-1], y[::-1].copy(), CU)  # the peak moves to the right again
    plot.set_phases([sticks("Q_1", [30.0], phase_colour(0))])
    assert plot.legend.corner == (1, 1)  # left where the user put it


def test_training_curves_have_their_key_outside_the_plots(qtbot) -> None:
    from labeltune.core.trainer import EpochRecord
    from labeltune.ui.curves import TrainingCurvesView

    view = TrainingCurvesView()
    qtbot.addWidget(view)
    view.resize(600, 160)  # as cramped as the XRD Fine-tune tab gets
    view.show()
    qtbot.waitExposed(view)
    view.clear(10)
    for epoch in range(1, 11):
        loss = max(0.02, 1.0 - 0.1 * epoch)
        view.add_record(EpochRecord(epoch, loss, 0.99, 1.0, 0.95, 0.95, 0.95, 1e-3, 1.0))
    view.flush()
    for plot in (view.loss_plot, view.accuracy_plot):
        legend = plot.getPlotItem().legend
        assert legend is None or not legend.isVisible()  # nothing drawn over the curves
    key = view.key_label
    assert key.isVisible() and "training" in key.text() and "validation" in key.text()
    assert key.geometry().bottom() <= view.loss_plot.geometry().top()  # above the plots


def test_best_corner_counts_the_points_under_a_legend_of_the_given_size() -> None:
    from labeltune.ui.plot_legend import best_corner

    view = [[0.0, 10.0], [0.0, 10.0]]
    points = np.array([[9.5, 9.5], [9.0, 9.8], [0.5, 0.5]])
    assert best_corner([(1, 1), (0, 1)], view, (3.0, 2.0), points) == (0, 1)
    assert best_corner([(0, 0), (1, 0)], view, (3.0, 2.0), points) == (1, 0)
    assert best_corner([(1, 1), (0, 0)], view, (0.2, 0.2), points) == (1, 1)  # a small legend fits between
