"""The XRD page with a lab's own library: formula-only labels, a model that does not know the phases is
refused, and a click on a competing phase set draws that set's fit."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox

from conftest import write_library, write_xy
from labeltune.core.xrd.alternatives import phase_set_profile
from labeltune.core.xrd.results import Alternative, PhaseCall, XrdPrediction
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.xrd_project import LABELS_FILE, XrdProject
from labeltune.ui.xrd_page import XrdPage

LAB_PHASES = (("TiO2 (anatase)", "TiO2"), ("NiO (bunsenite)", "NiO"), ("ZnO (zincite)", "ZnO"))


def make_project(root: Path, model: Path | None = None, patterns: int = 2) -> Path:
    """A project on a tiny lab library (three phases) with ``patterns`` one-peak patterns."""
    library = write_library(root / "library", LAB_PHASES)
    XrdProject.create(root / "project", "lab", library, model, wavelength_confirmed=True)
    for i in range(patterns):
        write_xy(root / "project" / "patterns" / f"p{i}.xy", peak=25.0 + 5 * i)
    return root / "project"


@pytest.fixture
def page(qtbot) -> Iterator[XrdPage]:
    widget = XrdPage()
    qtbot.addWidget(widget)
    widget.resize(1300, 850)
    widget.show()
    yield widget
    widget.shutdown()


def _label_rows(folder: Path) -> dict[str, tuple[str, str]]:
    with (folder / LABELS_FILE).open(newline="", encoding="utf-8") as handle:
        return {row["path"]: (row["phases"], row["fractions"]) for row in csv.DictReader(handle)}


def test_a_formula_no_phase_matches_is_offered_as_a_label(page: XrdPage, tmp_path: Path) -> None:
    folder = make_project(tmp_path)
    page.open(folder)
    panel = page.phase_panel
    assert page.current_path() is not None and panel.isEnabled()
    tooltip = panel._items["TiO2 (anatase)"].toolTip(0)
    assert tooltip == "TiO2 (anatase): TiO2, space group P1, from TiO2 (anatase).cif"  # the source file
    panel.filter_edit.setText("TiO2")  # a library phase has it: tick that one, nothing offered
    assert panel.visible_names() == ["TiO2 (anatase)"] and panel.add_formula_button.isHidden()
    panel.filter_edit.setText("Quartz")  # no phase, and not a formula either
    assert panel.visible_names() == [] and panel.add_formula_button.isHidden()
    panel.filter_edit.setText("In2O3")
    assert panel.visible_names() == [] and not panel.add_formula_button.isHidden()
    assert panel.add_formula_button.text() == "Add In2O3 as a formula label"
    panel.add_formula_button.click()
    assert _label_rows(folder)["patterns/p0.xy"] == ("In2O3", "")  # saved at once
    assert panel.ticked() == ["In2O3"] and panel.filter_edit.text() == ""
    assert panel.add_formula_button.isHidden()
    panel.filter_edit.setText("ZnO")
    panel.set_ticked("ZnO (zincite)", True)
    assert _label_rows(folder)["patterns/p0.xy"] == ("In2O3;ZnO (zincite)", "")
    page.undo()
    page.undo()
    assert "patterns/p0.xy" not in _label_rows(folder)


SHIPPED = shipped_model_dir()


@pytest.mark.skipif(SHIPPED is None, reason="the shipped XRD model is not in this checkout")
def test_identify_refuses_a_model_that_does_not_know_the_library(
    page: XrdPage, tmp_path: Path, qtbot
) -> None:
    page.open(make_project(tmp_path, SHIPPED))
    panel = page.prediction_panel
    assert "does not know 3 of the 3 phases" in panel.model_label.text()  # said before Identify is pressed
    page.identify()
    assert not page.predict_controller.is_running()  # no worker: the demo's phases are not the lab's
    boxes = [b for b in page.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1 and boxes[0].windowTitle() == "The model does not know this project's phases"
    assert "Train a model for this library" in boxes[0].text()
    boxes[0].close()
    assert page.project is not None
    page.set_model(None)
    assert "No model yet" in panel.model_label.text()


def test_a_clicked_hypothesis_draws_its_own_fit_and_labels_nothing(
    page: XrdPage, tmp_path: Path, qtbot
) -> None:
    folder = make_project(tmp_path)
    page.open(folder)
    assert page.project is not None
    grid = np.linspace(10, 80, 50)
    chosen_curve = np.full(50, 1.0)
    anatase, bunsenite = LAB_PHASES[0][0], LAB_PHASES[1][0]
    alternatives = [
        Alternative((anatase, bunsenite), (0.8, 0.2), 0.08, 2.0),
        Alternative((anatase,), (1.0,), 0.09, 2.5, chosen=True),
    ]
    prediction = XrdPrediction(
        path=str(page.project.patterns_dir / "p0.xy"),
        phases=[PhaseCall(anatase, "TiO2", 0.97, fraction=1.0)],
        candidates=[PhaseCall(bunsenite, "NiO", 0.3)],
        residual=0.09,
        fit_two_theta=grid,
        calculated=chosen_curve,
        alternatives=alternatives,
    )
    page.identifier.remember([prediction])
    plot, table, fitter = page.plot, page.prediction_panel.alternatives_table, page.identifier.fit_controller
    assert plot._calc is not None and np.allclose(plot._calc[1], chosen_curve)
    assert [s.name for s in plot.stick_sets()] == [anatase]
    with qtbot.waitSignal(fitter.finished, timeout=60_000):
        table.selectRow(0)  # the two-phase hypothesis: its sticks at once, its fit from a worker
        sticks = {s.name: s for s in plot.stick_sets()}
        assert list(sticks) == [anatase, bunsenite] and plot._calc is None
        assert sticks[bunsenite].fraction == pytest.approx(0.2)
        assert sticks[bunsenite].probability == pytest.approx(0.3)
    library = page.project.library()
    expected = phase_set_profile(
        page.project.read(page.project.patterns_dir / "p0.xy"), library, [anatase, bunsenite]
    )
    assert plot._calc is not None and np.allclose(plot._calc[1], expected[1])
    assert not np.allclose(expected[1], expected[1][0])  # a real profile, not a constant
    assert "patterns/p0.xy" not in _label_rows(folder)  # a click only shows; labeling stays explicit
    table.selectRow(1)  # the model's choice again
    assert plot._calc is not None and np.allclose(plot._calc[1], chosen_curve)
    table.selectRow(0)  # fitted once: drawn at once, no second fit
    assert not fitter.is_running() and plot._calc is not None and np.allclose(plot._calc[1], expected[1])


@pytest.mark.skipif(SHIPPED is None, reason="the shipped XRD model is not in this checkout")
def test_train_a_model_for_this_library_from_the_app(page: XrdPage, tmp_path: Path, qtbot) -> None:
    page.open(make_project(tmp_path, SHIPPED))
    assert page.project is not None
    panel = page.train_panel
    assert panel.start_button.text() == "&Train a model for this library" and panel.start_button.isEnabled()
    assert "does not know 3 of the 3 phases" in panel.data_label.text()  # not "fine-tune the demo's model"
    page.prediction_panel.model_label.linkActivated.emit("train")  # the way out the Model says tab offers
    assert page.tabs.currentWidget() is panel
    panel.config_overrides = {
        "patterns_per_epoch": 64,
        "batch_size": 32,
        "validation_patterns": 32,
        "threads": 2,
    }
    panel.epochs_spin.setValue(1)
    with qtbot.waitSignal(panel.run_finished, timeout=180_000) as blocker:
        panel.start_button.click()
    run_dir = blocker.args[0]
    assert page.project.model_dir == run_dir and run_dir.parent == page.project.runs_dir
    from labeltune.core.xrd.library import load_library

    assert load_library(run_dir / "library").names == [name for name, _formula in LAB_PHASES]
    assert page.identifier.library_problem() is None  # the new model knows the lab's phases
    assert f"Model <b>{run_dir.name}</b> identifies the phases." in page.prediction_panel.model_label.text()
    assert panel.start_button.text() == "&Start fine-tuning"
