"""Measured reference patterns in the New XRD project dialog (ADR 0057): the library it builds is the one
``labeltune xrd library`` builds from the same files, and a reference that cannot be used says why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from test_xrd_app_phase_names import write_cif

from labeltune.core.xrd.library import Library, load_library
from labeltune.core.xrd.reference_build import corundum
from labeltune.core.xrd.xrd_project import XrdProject

WAVELENGTH = 1.5406
CLAY_PEAKS = ((12.4, 1.0, 0.6), (20.1, 0.5, 0.9), (24.9, 0.8, 0.5), (35.0, 0.3, 0.8), (38.4, 0.4, 0.6))


def _pattern(path: Path, peaks: list[tuple[float, float, float]], header: str = "") -> Path:
    """A measured-looking pattern: (2θ, height, width) peaks over a sloping background."""
    x = np.linspace(5.0, 90.0, 4251)
    y = 200.0 + 100.0 * np.exp(-x / 30.0)
    for centre, height, width in peaks:
        y += 20000.0 * height * np.exp(-(((x - centre) / width) ** 2))
    lines = ([header] if header else []) + [f"{a:.3f} {b:.1f}" for a, b in zip(x, y, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_references(folder: Path) -> dict[str, Path]:
    """A clay with its RIR, a second one with a weighed corundum mixture, one without a sidecar and one
    whose file and sidecar state no wavelength."""
    clay = _pattern(folder / "clay.xy", list(CLAY_PEAKS))
    (folder / "clay.json").write_text(
        json.dumps({"name": "kaolinite", "formula": "Al2Si2O5(OH)4", "rir": 1.1, "wavelength": WAVELENGTH}),
        encoding="utf-8",
    )
    shifted = [(c + 1.7, h, w) for c, h, w in CLAY_PEAKS]
    illite = _pattern(folder / "illite.xy", shifted)
    standard = corundum(Library(WAVELENGTH, (10.0, 100.0)))[1]
    heights = zip(standard.two_theta, standard.intensity, strict=True)
    sticks = [(float(t), 0.5 * float(i) / 100.0, 0.12) for t, i in heights]
    _pattern(folder / "illite_corundum.xy", [(c, 0.5 * h, w) for c, h, w in shifted] + sticks)
    (folder / "illite.toml").write_text(
        'name = "illite"\nformula = "KAl2Si3AlO10(OH)2"\nwavelength = 1.5406\n'
        '[mixture]\npattern = "illite_corundum.xy"\ncorundum_wt_percent = 50\n',
        encoding="utf-8",
    )
    stray = _pattern(folder / "stray.xy", list(CLAY_PEAKS))
    unknown = _pattern(folder / "no_wavelength.xy", list(CLAY_PEAKS))
    (folder / "no_wavelength.json").write_text(
        json.dumps({"name": "mystery", "formula": "SiO2", "rir": 2.0}), encoding="utf-8"
    )
    return {"clay": clay, "illite": illite, "stray": stray, "no_wavelength": unknown}


def test_new_project_adds_measured_references_as_the_cli_does(
    qtbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from labeltune.cli import main
    from labeltune.ui.xrd_new_dialog import XrdNewProjectDialog

    cifs = tmp_path / "cifs"
    write_cif(cifs, "9006758", "_chemical_name_mineral Manganosite")
    refs = write_references(tmp_path / "refs")
    dialog = XrdNewProjectDialog()
    qtbot.addWidget(dialog)
    dialog.save_in_edit.setText(str(tmp_path))
    dialog.name_edit.setText("lab")
    dialog.library_edit.setText(str(cifs))
    dialog.model_edit.clear()
    panel = dialog.references_panel
    panel.add_files([refs["clay"], refs["illite"], refs["stray"], refs["clay"]])  # the second clay: once
    assert [panel.list.item(i).text() for i in range(panel.list.count())] == [
        "clay.xy: kaolinite (Al2Si2O5(OH)4), RIR 1.1",
        "illite.xy: illite (KAl2Si3AlO10(OH)2), RIR from illite_corundum.xy (50 % corundum)",
        "⚠ stray.xy: a reference pattern needs a sidecar stray.json or .toml (name, formula and rir or a "
        "mixture with corundum)",
    ]
    assert "needs a sidecar stray.json" in dialog.error_label.text()  # said at once
    dialog.accept()  # refused while a listed file cannot be used: nothing is built
    assert dialog.project is None and not dialog.build_controller.is_running()
    assert not (tmp_path / "lab").exists() and "stray.xy" in dialog.error_label.text()
    panel.list.item(2).setSelected(True)
    panel.remove_button.click()
    panel.add_files([refs["no_wavelength"]])  # its sidecar is fine; the pattern is read in the worker
    with qtbot.waitSignal(dialog.build_controller.finished, timeout=60_000):
        dialog.accept()
    assert dialog.project is None
    assert 'no_wavelength.xy: the file states no wavelength; add "wavelength" to its sidecar' in (
        dialog.error_label.text()
    )
    assert not (tmp_path / "lab").exists()  # what was built for it is removed: OK can be pressed again
    assert dialog.button_box.button(dialog.button_box.StandardButton.Ok).isEnabled()
    panel.list.item(2).setSelected(True)
    panel.remove_button.click()
    with qtbot.waitSignal(dialog.accepted, timeout=60_000):
        dialog.accept()
    assert dialog.project is not None, dialog.error_label.text()
    library = XrdProject.open(tmp_path / "lab").library()
    assert library.names == ["MnO (manganosite)", "kaolinite", "illite"]
    assert [p.kind for p in library.phases] == ["cif", "measured", "measured"]
    assert library.phase("kaolinite").rir == pytest.approx(1.1)
    # the command line, from the same files, writes the same library
    out = tmp_path / "cli-library"
    args = ["xrd", "library", str(cifs), str(refs["clay"]), str(refs["illite"]), "--names", "cif"]
    assert main([*args, "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    cli = load_library(out)
    assert cli.names == library.names
    for name in cli.names:
        assert library.phase(name).rir == pytest.approx(cli.phase(name).rir)
        assert library.phase(name).formula == cli.phase(name).formula
        np.testing.assert_allclose(library.peaks[name].two_theta, cli.peaks[name].two_theta)
    illite_rir = library.phase("illite").rir
    assert illite_rir is not None and 0.2 < illite_rir < 20  # fitted from the mixture
    np.testing.assert_allclose(library.profiles["illite"].intensity, cli.profiles["illite"].intensity)


def test_references_join_an_existing_library_in_a_copy(qtbot, tmp_path: Path) -> None:
    from conftest import write_library
    from labeltune.ui.xrd_new_dialog import XrdNewProjectDialog

    source = write_library(tmp_path / "library")
    before = (source / "library.json").read_text(encoding="utf-8")
    refs = write_references(tmp_path / "refs")
    dialog = XrdNewProjectDialog()
    qtbot.addWidget(dialog)
    dialog.save_in_edit.setText(str(tmp_path))
    dialog.name_edit.setText("lab")
    dialog.library_edit.setText(str(source))
    dialog.model_edit.clear()
    dialog.references_panel.add_files([refs["clay"]])
    with qtbot.waitSignal(dialog.accepted, timeout=60_000):
        dialog.accept()
    project = XrdProject.open(tmp_path / "lab")
    assert project.library_dir == tmp_path / "lab" / "library"
    assert project.library().names == ["A_1", "B_2", "kaolinite"]
    assert (source / "library.json").read_text(encoding="utf-8") == before  # the original is untouched
