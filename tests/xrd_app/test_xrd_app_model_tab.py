"""The "Model says" tab as a lab meets it (ADR 0057): five phases in view at 1400×900 with readable sample
fields, and the particle size that corrects the fractions exactly as ``predict --particle-size`` does."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QStyle, QStyleOptionFrame, QTableWidget

from conftest import write_library, write_xy
from labeltune.core.settings import Settings
from labeltune.core.xrd.results import Alternative, PhaseCall, XrdPrediction
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.main_window import MainWindow
from labeltune.ui.xrd_page import XrdPage

PHASES = tuple((f"Phase {name} (mineral)", formula) for name, formula in zip("ABCDEFG", ("AO", "BO2", "CO",
               "DO3", "EO", "FO2", "GO"), strict=True))  # fmt: skip
DARA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "xrd" / "dara_mixtures" / "labeled"
TIO2_ZNO = DARA / "TiO2_0p4009-ZnO_0p6010--8min.xrdml"


@pytest.fixture
def window(qtbot, tmp_path: Path) -> Iterator[MainWindow]:
    widget = MainWindow(Settings())
    qtbot.addWidget(widget)
    widget.resize(1400, 900)
    widget.show()
    yield widget
    widget.xrd_page.shutdown()


def fully_visible_rows(table: QTableWidget) -> int:
    """Rows whose whole height lies inside the table's viewport."""
    bottom = table.viewport().height()
    return sum(
        1
        for row in range(table.rowCount())
        if table.rowViewportPosition(row) + table.rowHeight(row) <= bottom
    )


def text_room(edit: QLineEdit) -> int:
    """Pixels a line edit has for its text (its contents rect less Qt's 2 px margin each side)."""
    option = QStyleOptionFrame()
    edit.initStyleOption(option)
    contents = edit.style().subElementRect(QStyle.SubElement.SE_LineEditContents, option, edit)
    margins = edit.textMargins()
    return contents.width() - margins.left() - margins.right() - 4


def test_model_says_shows_five_phases_and_readable_fields_at_1400x900(
    window: MainWindow, tmp_path: Path, qtbot
) -> None:
    library = write_library(tmp_path / "library", PHASES)
    folder = tmp_path / "project"
    XrdProject.create(folder, "lab", library, None, wavelength_confirmed=True)
    write_xy(folder / "patterns" / "mix.xy")
    window.open_project(folder)
    page = window.xrd_page
    qtbot.waitUntil(lambda: page.current_path() is not None)
    names = [name for name, _formula in PHASES]
    prediction = XrdPrediction(
        path=str(page.current_path()),
        phases=[PhaseCall(n, f, 0.95, fraction=0.2, fraction_esd=0.01) for n, f in PHASES[:5]],
        candidates=[PhaseCall(n, f, 0.3) for n, f in PHASES[5:]],
        residual=0.08,
        alternatives=[
            Alternative(tuple(names[:5]), (0.2,) * 5, 0.08, 2.0, chosen=True),
            Alternative(tuple(names[:4]), (0.25,) * 4, 0.09, 2.4),
            Alternative(tuple(names[:3]), (0.34, 0.33, 0.33), 0.12, 3.1),
        ],
        warnings=["a warning that is long enough to take a line of its own below the tables"] * 2,
    )
    page.identifier.remember([prediction])
    panel = page.prediction_panel
    qtbot.waitUntil(lambda: panel.table.rowCount() == 7 and panel.alternatives_table.isVisible())
    assert page.tabs.currentWidget() is panel
    assert fully_visible_rows(panel.table) >= 5  # was 2 (and a half) with the hypotheses below it
    assert fully_visible_rows(panel.alternatives_table) >= 2
    whole = panel.alternatives_table.item(0, 0).toolTip()  # a long set is cut in its column: whole on hover
    assert whole.splitlines() == ["✓ Phase A (mineral) 20 %"] + [
        f"+ Phase {c} (mineral) 20 %" for c in "BCDE"
    ]
    fields = panel.sample_fields
    for edit in (fields.standard_edit, fields.size_spin.lineEdit()):
        shown = edit.placeholderText() or edit.text()
        assert text_room(edit) >= edit.fontMetrics().horizontalAdvance(shown), shown  # not cut off
    assert fields.size_spin.text() == "none"
    for label in fields.findChildren(QLabel):
        text = label.text().replace("&", "")
        assert label.isVisible() and label.width() >= label.fontMetrics().horizontalAdvance(text), text


LONG_NAMES = (
    ("Bi2O3 (bismite (alpha-Bi2O3))", "Bi2O3"),
    ("In2O3 (bixbyite-type In2O3)", "In2O3"),
    ("Li2CO3 (zabuyelite)", "Li2CO3"),
)


def test_a_labs_long_phase_and_file_names_stay_readable(window: MainWindow, tmp_path: Path, qtbot) -> None:
    library = write_library(tmp_path / "library", LONG_NAMES)
    folder = tmp_path / "project"
    XrdProject.create(folder, "dara", library, None, wavelength_confirmed=True)
    name = "NiO_0p1031-La(OH)3_0p2025-TiO2_0p6944--8min.xy"
    write_xy(folder / "patterns" / name)
    window.open_project(folder)
    page = window.xrd_page
    qtbot.waitUntil(lambda: page.current_path() is not None)
    tree = page.phase_panel.tree
    assert tree.isColumnHidden(2)  # wt %: empty until Weight fractions is ticked
    for row, (phase, _formula) in enumerate(LONG_NAMES):
        item = tree.topLevelItem(row)
        room = tree.visualItemRect(item).width() - tree.header().sectionSize(1) - 30  # less the check box
        assert room >= tree.fontMetrics().horizontalAdvance(phase), phase
    page.phase_panel.set_ticked(LONG_NAMES[0][0], True)
    page.phase_panel.fractions_box.setChecked(True)
    assert not tree.isColumnHidden(2)
    patterns = page.patterns_panel.list  # a long name is elided in the middle, not scrolled out of view
    assert patterns.horizontalScrollBar().maximum() == 0
    assert patterns.textElideMode() == Qt.TextElideMode.ElideMiddle


# -- the particle size, as the CLI's --particle-size ---------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch run on the dara TiO2 and ZnO (the textbook microabsorption pair)."""
    from labeltune.core.xrd.dara import dara_cifs
    from labeltune.core.xrd.library import build_library
    from labeltune.core.xrd.train_config import XrdTrainConfig
    from labeltune.core.xrd.training import train_xrd

    base = tmp_path_factory.mktemp("particle")
    cifs = [p for p in dara_cifs() if p.stem in ("TiO2", "ZnO")]
    library = build_library(cifs, base / "library", two_theta_range=(20.0, 70.0))
    tiny = {"patterns_per_epoch": 64, "batch_size": 32, "validation_patterns": 32, "threads": 2}
    train_xrd(library.path, XrdTrainConfig(epochs=1, **tiny), base / "run")  # type: ignore[arg-type]
    return base / "run"


def cli_fractions(run: Path, pattern: Path, extra: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    from labeltune.cli import main

    assert main(["predict", str(run), str(pattern), "--json", *extra]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    return {phase["name"]: phase["fraction"] for phase in result["phases"]}


@pytest.mark.skipif(not TIO2_ZNO.is_file(), reason="shared dara data not present")
def test_particle_size_field_corrects_the_fractions_as_the_cli_does(
    tiny_run: Path, tmp_path: Path, qtbot, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "project"
    XrdProject.create(folder, "dara", tiny_run / "library", tiny_run, wavelength_confirmed=True)
    (folder / "patterns").mkdir(exist_ok=True)
    pattern = Path(shutil.copy(TIO2_ZNO, folder / "patterns" / TIO2_ZNO.name))
    page = XrdPage()
    qtbot.addWidget(page)
    page.show()
    page.open(folder)
    assert page.current_path() == pattern
    page.prediction_panel.sample_fields.size_spin.setValue(5.0)
    with qtbot.waitSignal(page.predict_controller.finished, timeout=180_000):
        page.identify()
    made = page.prediction()
    assert made is not None
    app = {call.name: call.fraction for call in made.phases}
    assert any(w.startswith("microabsorption (Brindley, 5 µm grains) corrected") for w in made.warnings)
    corrected = cli_fractions(tiny_run, pattern, ["--particle-size", "5"], capsys)
    plain = cli_fractions(tiny_run, pattern, [], capsys)
    assert set(app) == set(corrected) == set(plain) == {"TiO2", "ZnO"}
    for name in app:  # the same numbers as the command line, and not the uncorrected ones
        assert app[name] == pytest.approx(corrected[name], abs=1e-4)
    assert corrected["TiO2"] - plain["TiO2"] > 0.01  # TiO2 absorbs more: its fraction goes up
    page.shutdown()


def test_the_legend_does_not_repeat_a_formula_the_name_starts_with() -> None:
    import numpy as np

    from labeltune.ui.xrd_plot import StickSet

    def text(name: str, formula: str) -> str:
        return StickSet(
            name, formula, "#000", np.zeros(1), np.ones(1), note="In2O3 in your label"
        ).legend_text()

    assert text("In2O3 (bixbyite-type In2O3)", "In2O3") == "In2O3 (bixbyite-type In2O3) · In2O3 in your label"
    assert text("TiO2_141", "TiO2") == "TiO2_141 (TiO2) · In2O3 in your label"  # a COD-style name: said
    assert text("In2O3x (made up)", "In2O3") == "In2O3x (made up) (In2O3) · In2O3 in your label"


def test_sample_fields_do_not_follow_into_another_project(window: MainWindow, tmp_path: Path, qtbot) -> None:
    folders = []
    for name in ("first", "second"):
        XrdProject.create(tmp_path / name, name, write_library(tmp_path / f"lib-{name}"), None)
        write_xy(tmp_path / name / "patterns" / "p.xy")
        folders.append(tmp_path / name)
    window.open_project(folders[0])
    page = window.xrd_page
    qtbot.waitUntil(lambda: page.current_path() is not None)
    fields = page.prediction_panel.sample_fields
    fields.standard_edit.setText("AO=10")
    fields.size_spin.setValue(5.0)
    page.show_neighbour(1)  # another pattern of the same samples: kept
    assert fields.internal_standard() == ("AO", pytest.approx(0.1)) and fields.particle_size() == 5.0
    window.open_project(folders[1])
    qtbot.waitUntil(lambda: page.project is not None and page.project.folder == folders[1])
    assert fields.internal_standard() is None and fields.particle_size() is None
    assert fields.size_spin.text() == "none"
