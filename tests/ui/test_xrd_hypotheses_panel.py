"""The XRD page's competing hypotheses: listed with their Rwp, one click labels with one (undoable); the
pattern list sorts least sure first."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from labeltune.core import demos
from labeltune.core.xrd.results import Alternative, PhaseCall, XrdPrediction
from labeltune.core.xrd.xrd_project import LABELS_FILE, XrdProject
from labeltune.ui.xrd_page import XrdPage

A, B, C = "Li2MnO3_12", "Li2O_225", "Li2MnO2_164"


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = demos.write_demo("xrd", tmp_path_factory.mktemp("xrd") / "demo")
    XrdProject.open(folder).set_model(None)  # the identifications below are "of" no model
    return folder


@pytest.fixture
def page(qtbot, demo_source: Path, tmp_path: Path) -> Iterator[XrdPage]:
    widget = XrdPage()
    qtbot.addWidget(widget)
    widget.resize(1300, 850)
    widget.show()
    widget.open(Path(shutil.copytree(demo_source, tmp_path / "demo")))
    yield widget
    widget.shutdown()


def _label_row(page: XrdPage, name: str) -> tuple[str, str]:
    assert page.project is not None
    with (page.project.folder / LABELS_FILE).open(newline="", encoding="utf-8") as handle:
        rows = {row["path"]: (row["phases"], row["fractions"]) for row in csv.DictReader(handle)}
    return rows[f"patterns/{name}"]


def _prediction(
    page: XrdPage, name: str, probability: float, alternatives: list[Alternative]
) -> XrdPrediction:
    assert page.project is not None
    return XrdPrediction(
        path=str(page.project.patterns_dir / name),
        phases=[PhaseCall(A, "Li2MnO3", probability, fraction=1.0)],
        candidates=[PhaseCall(B, "Li2O", 0.02)],
        residual=alternatives[0].rwp if alternatives else None,
        alternatives=alternatives,
    )


def test_choosing_a_competing_phase_set_labels_the_pattern_and_undo_restores_it(page: XrdPage, qtbot) -> None:
    assert page.project is not None
    page.patterns_panel.select(page.project.patterns_dir / "MnO2.xy")
    before = _label_row(page, "MnO2.xy")
    alternatives = [
        Alternative((A, B), (0.9, 0.1), 0.081, 3.2),
        Alternative((A,), (1.0,), 0.084, 3.5, chosen=True),
        Alternative((C,), (1.0,), 0.31, 40.0),
    ]
    page.identifier.remember([_prediction(page, "MnO2.xy", 0.97, alternatives)])
    panel = page.prediction_panel
    table = panel.alternatives_table
    assert table.rowCount() == 3 and not table.isHidden()
    assert table.item(0, 0).text() == f"{A} 90 % + {B} 10 %"
    assert table.item(1, 0).text() == f"✓ {A} 100 %"  # the model's own choice is marked, not moved up
    assert [table.item(r, 1).text() for r in range(3)] == ["8.1 %", "8.4 %", "31.0 %"]
    assert not panel.use_alternative_button.isEnabled()  # nothing selected yet

    table.selectRow(0)
    assert panel.use_alternative_button.isEnabled()
    qtbot.mouseClick(panel.use_alternative_button, Qt.MouseButton.LeftButton)
    assert _label_row(page, "MnO2.xy") == (f"{A};{B}", "0.9;0.1")
    assert page.phase_panel.ticked() == [A, B]

    page.undo()
    assert _label_row(page, "MnO2.xy") == before
    assert page.project.labels(page.project.patterns_dir / "MnO2.xy").phases != (A, B)

    with qtbot.waitSignal(panel.alternative_chosen) as blocker:  # a double-click chooses too
        panel.alternative_chosen.emit(2)
    assert blocker.args == [2]
    assert _label_row(page, "MnO2.xy")[0] == C


def test_a_prediction_without_alternatives_hides_the_list(page: XrdPage) -> None:
    assert page.project is not None
    page.patterns_panel.select(page.project.patterns_dir / "TiO2.xy")
    page.identifier.remember([_prediction(page, "TiO2.xy", 0.97, [])])
    assert page.prediction_panel.alternatives_table.rowCount() == 0
    assert page.prediction_panel.alternatives_table.isHidden()


def test_the_pattern_list_sorts_least_sure_first(page: XrdPage) -> None:
    assert page.project is not None
    project_order = [p.name for p in page.patterns_panel.paths()]
    page.patterns_panel.select(page.project.patterns_dir / "TiO2.xy")
    clear = [Alternative((A,), (1.0,), 0.05, chosen=True), Alternative((B,), (1.0,), 0.4)]
    near = [Alternative((A,), (1.0,), 0.050, chosen=True), Alternative((B,), (1.0,), 0.053)]
    twins = [Alternative((A,), (1.0,), 0.050, chosen=True), Alternative((C,), (1.0,), 0.0505)]
    page.identifier.remember(
        [
            _prediction(page, "MnO.xy", 0.55, clear),  # the fit decides clearly: doubt 0
            _prediction(page, "LiMnO2.xy", 0.99, near),  # a rival 6 % worse: doubt 0.7
            _prediction(page, "Mn2O3.xy", 0.99, twins),  # two sets fit alike: doubt 0.95
        ]
    )
    assert page.patterns_panel.paths() == [page.project.patterns_dir / n for n in project_order]
    page.patterns_panel.set_least_sure_first(True)
    names = [p.name for p in page.patterns_panel.paths()]
    unidentified = [n for n in project_order if n not in {"MnO.xy", "LiMnO2.xy", "Mn2O3.xy"}]
    assert names == ["Mn2O3.xy", "LiMnO2.xy", "MnO.xy", *unidentified]
    assert page.current_path() == page.project.patterns_dir / "TiO2.xy"  # the pattern shown stays
    assert "TiO2.xy" in page.pattern_list.currentItem().text()
    assert "unsure: 95 %" in page.pattern_list.item(0).toolTip()

    # new answers re-sort the list; without a fit the network's probability near 0.5 says "unsure"
    page.identifier.remember([_prediction(page, "TiO2.xy", 0.5, [])])
    assert page.patterns_panel.paths()[0].name == "TiO2.xy"
    page.patterns_panel.set_least_sure_first(False)
    assert [p.name for p in page.patterns_panel.paths()] == project_order
