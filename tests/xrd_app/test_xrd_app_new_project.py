"""New XRD project from a folder of a lab's CIFs: readable phase names, no model that does not know them."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from test_xrd_app_phase_names import write_cif

from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.xrd_project import XrdProject

SHIPPED = shipped_model_dir()


def _cifs(folder: Path) -> Path:
    write_cif(folder, "9006758", "_chemical_name_mineral Manganosite")
    write_cif(folder, "1530150", source="TiO2_141")
    return folder


@pytest.mark.skipif(SHIPPED is None, reason="the shipped XRD model is not in this checkout")
def test_the_prefilled_demo_model_is_left_out_for_a_lab_library(qtbot, tmp_path: Path) -> None:
    from labeltune.ui.xrd_new_dialog import XrdNewProjectDialog

    dialog = XrdNewProjectDialog()
    qtbot.addWidget(dialog)
    assert dialog.model_edit.text() == str(SHIPPED)  # the demo's model, prefilled
    dialog.save_in_edit.setText(str(tmp_path))
    dialog.name_edit.setText("lab")
    dialog.library_edit.setText(str(_cifs(tmp_path / "cifs")))
    # the shipped library knows MnO and TiO2 (P 1 CIFs): add a phase it does not know
    write_cif(tmp_path / "cifs", "1011111", "_chemical_name_mineral Manganosite-big", source="MnO_225")
    text = (tmp_path / "cifs" / "1011111.cif").read_text().replace("4.44400000", "4.84400000")
    (tmp_path / "cifs" / "1011111.cif").write_text(text)
    with qtbot.waitSignal(dialog.build_controller.finished, timeout=30_000):  # built in a worker
        dialog.accept()
        assert not dialog.button_box.button(dialog.button_box.StandardButton.Ok).isEnabled()
        assert dialog.error_label.text().startswith("Computing the peak lists of 3 CIF files")
    assert dialog.result() == dialog.DialogCode.Accepted
    assert dialog.project is not None, dialog.error_label.text()
    project = XrdProject.open(tmp_path / "lab")
    assert project.library().names == ["MnO (manganosite-big)", "TiO2_1", "MnO (manganosite)"]
    assert project.model_dir is None  # it would have answered from the demo's phase list


@pytest.mark.skipif(SHIPPED is None, reason="the shipped XRD model is not in this checkout")
def test_a_chosen_model_that_does_not_know_the_library_is_refused(qtbot, tmp_path: Path) -> None:
    from labeltune.ui.xrd_new_dialog import XrdNewProjectDialog

    cifs = tmp_path / "cifs"
    write_cif(cifs, "1011111", "_chemical_name_mineral Bigite", source="MnO_225")
    (cifs / "1011111.cif").write_text((cifs / "1011111.cif").read_text().replace("4.44400000", "4.84400000"))
    dialog = XrdNewProjectDialog()
    qtbot.addWidget(dialog)
    dialog.save_in_edit.setText(str(tmp_path))
    dialog.name_edit.setText("lab")
    dialog.library_edit.setText(str(cifs))
    dialog.model_edit.setText(str(SHIPPED) + "/")  # chosen, not the prefilled text
    with qtbot.waitSignal(dialog.build_controller.finished, timeout=30_000):
        dialog.accept()
    assert dialog.project is None
    assert "does not know 1 of the 1 phases of this one (MnO (bigite))" in dialog.error_label.text()
    assert not (tmp_path / "lab").exists()  # the library built for it is gone again: OK can be pressed again
    assert dialog.button_box.button(dialog.button_box.StandardButton.Ok).isEnabled()
    dialog.model_edit.clear()
    with qtbot.waitSignal(dialog.accepted, timeout=30_000):
        dialog.accept()
    assert dialog.project is not None and XrdProject.open(tmp_path / "lab").model_dir is None


def test_a_folder_of_unusable_cifs_says_why_and_leaves_nothing_behind(qtbot, tmp_path: Path) -> None:
    from labeltune.ui.xrd_new_dialog import XrdNewProjectDialog

    (tmp_path / "cifs").mkdir()
    (tmp_path / "cifs" / "broken.cif").write_text("data_broken\n_cell_length_a 4.0\n")
    dialog = XrdNewProjectDialog()
    qtbot.addWidget(dialog)
    dialog.save_in_edit.setText(str(tmp_path))
    dialog.name_edit.setText("lab")
    dialog.library_edit.setText(str(tmp_path / "cifs"))
    dialog.model_edit.clear()
    with qtbot.waitSignal(dialog.build_controller.finished, timeout=30_000):
        dialog.accept()
    assert dialog.project is None
    assert dialog.error_label.text().startswith("none of the 1 CIF files could be used: broken.cif:")
    assert not (tmp_path / "lab").exists()
    assert dialog.button_box.button(dialog.button_box.StandardButton.Ok).isEnabled()


def test_cancel_while_the_library_is_built_makes_nothing(qtbot, tmp_path: Path) -> None:
    from labeltune.ui.xrd_new_dialog import XrdNewProjectDialog

    cifs = _cifs(tmp_path / "cifs")
    dialog = XrdNewProjectDialog()
    qtbot.addWidget(dialog)
    dialog.save_in_edit.setText(str(tmp_path))
    dialog.name_edit.setText("lab")
    dialog.library_edit.setText(str(cifs))
    dialog.model_edit.clear()
    dialog.accept()
    assert dialog.build_controller.is_running()
    dialog.reject()  # waits for the build, then removes it
    qtbot.wait(200)  # a finished signal still queued must not make the project after all
    assert dialog.result() == dialog.DialogCode.Rejected and dialog.project is None
    assert not (tmp_path / "lab").exists()
