"""Labels from file names in the app: a preview per pattern (phases, library matches), one undo step."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QDialogButtonBox
from test_xrd_app_page import LAB_PHASES

from conftest import write_library, write_xy
from labeltune.core.xrd.xrd_project import LABELS_FILE, XrdProject
from labeltune.ui.xrd_name_labels import LABEL_COLUMN, LIBRARY_COLUMN, NOW_COLUMN, XrdNameLabelsDialog
from labeltune.ui.xrd_page import XrdPage

NAMES = (
    "In2O3_0p3022-La(OH)3_0p5014-TiO2_0p2004--2min.xy",
    "NiO_0p6007-ZnO_0p4008--8min.xy",
    "TiO2_0p4009-ZnO_0p6010--8min.xy",
    "sample 7.xy",
)


@pytest.fixture
def page(qtbot, tmp_path: Path) -> Iterator[XrdPage]:
    library = write_library(tmp_path / "library", LAB_PHASES)
    project = XrdProject.create(tmp_path / "project", "lab", library, None, wavelength_confirmed=True)
    for name in NAMES:
        write_xy(project.patterns_dir / name)
    project.set_label(project.patterns_dir / NAMES[1], ["NiO (bunsenite)"])  # labeled by hand before
    widget = XrdPage()
    qtbot.addWidget(widget)
    widget.resize(1300, 850)
    widget.show()
    widget.open(project.folder)
    yield widget
    widget.shutdown()


def _labels(folder: Path) -> dict[str, tuple[str, str]]:
    with (folder / LABELS_FILE).open(newline="", encoding="utf-8") as handle:
        return {Path(row["path"]).name: (row["phases"], row["fractions"]) for row in csv.DictReader(handle)}


def test_the_preview_shows_each_name_and_applying_is_one_undo_step(page: XrdPage) -> None:
    assert page.project is not None
    folder = page.project.folder
    page.patterns_panel.name_labels_button.click()
    dialog = page.name_labels_dialog
    assert isinstance(dialog, XrdNameLabelsDialog) and dialog.isVisible()
    table = dialog.table
    rows = {table.item(r, 0).text(): r for r in range(table.rowCount())}
    assert sorted(rows) == sorted(NAMES)
    first = rows[NAMES[0]]
    assert table.item(first, LABEL_COLUMN).text() == "In2O3 30.22 % + La(OH)3 50.14 % + TiO2 20.04 %"
    assert table.item(first, LIBRARY_COLUMN).text() == (
        "In2O3: not in the library; La(OH)3: not in the library; TiO2 → TiO2 (anatase)"
    )
    assert table.item(rows["sample 7.xy"], LABEL_COLUMN).text() == "⚠ 'sample 7' is not a chemical formula"
    assert table.item(rows[NAMES[1]], NOW_COLUMN).text() == "NiO (bunsenite)"
    ok = dialog.button_box.button(QDialogButtonBox.StandardButton.Ok)
    assert ok.text() == "&Label 2 patterns"  # the hand-labeled one is kept
    assert "In2O3, La(OH)3" in dialog.summary_label.text()
    dialog.keep_box.setChecked(False)
    assert ok.text() == "&Label 3 patterns"
    ok.click()
    assert not dialog.isVisible()
    labels = _labels(folder)
    assert labels[NAMES[0]] == ("In2O3;La(OH)3;TiO2", "0.3022;0.5014;0.2004")
    assert labels[NAMES[1]] == ("NiO;ZnO", "0.6007;0.4008")
    assert labels[NAMES[2]] == ("TiO2;ZnO", "0.4009;0.601")
    assert "sample 7.xy" not in labels
    assert page.patterns_panel.count_label.text() == "3 of 4 labeled"
    page.undo()  # one step takes all three back
    assert _labels(folder) == {NAMES[1]: ("NiO (bunsenite)", "")}
    page.redo()
    assert len(_labels(folder)) == 3


def test_another_spelling_is_read_once_described(page: XrdPage) -> None:
    page.label_from_file_names()
    dialog = page.name_labels_dialog
    assert isinstance(dialog, XrdNameLabelsDialog)
    dialog.amount_separator_edit.setText("-")  # the same as between phases: cannot split names
    assert not dialog.button_box.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert "must differ" in dialog.summary_label.text()
    dialog.amount_separator_edit.setText("_")
    dialog.percent_box.setChecked(True)  # 0p3022 % adds up to far less than 100 %: phases only
    row = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())].index(NAMES[2])
    assert dialog.table.item(row, LABEL_COLUMN).text().startswith("TiO2 + ZnO (the amounts add up to 1.0 %")
    dialog.reject()
    assert _labels(page.project.folder if page.project else Path()) == {NAMES[1]: ("NiO (bunsenite)", "")}
