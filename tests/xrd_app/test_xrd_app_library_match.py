"""A model is refused for a library whose phases it was not trained on (core check, ``predict --library``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conftest import write_library, write_xy
from labeltune.cli import main
from labeltune.core.xrd.library import load_library
from labeltune.core.xrd.library_match import (
    LibraryMismatchError,
    check_model_knows,
    model_library_problem,
    unknown_to_model,
)
from labeltune.core.xrd.shipped import shipped_model_dir


def test_a_phase_is_known_by_name_or_by_formula_and_space_group(tmp_path: Path) -> None:
    model = load_library(write_library(tmp_path / "model", (("TiO2_141", "TiO2"), ("MnO_225", "MnO"))))
    same = load_library(write_library(tmp_path / "same", (("MnO_225", "MnO"),)))  # fewer phases: fine
    assert model_library_problem(model, same) is None
    # renamed (readable names): same formula and space group (write_library: P1, number 1)
    renamed = load_library(write_library(tmp_path / "renamed", (("TiO2 (anatase)", "TiO2"),)))
    assert model_library_problem(model, renamed) is None
    lab = load_library(
        write_library(tmp_path / "lab", (("In2O3 (bixbyite)", "In2O3"), ("MnO_225", "MnO"), ("ZnO", "ZnO")))
    )
    problem = model_library_problem(model, lab, "The model demo")
    assert problem == (
        "The model demo was trained on another phase library: it does not know 2 of the 3 phases of this "
        "one (In2O3 (bixbyite), ZnO), so it can never find them. Train a model for this library, or choose "
        "one trained on it."
    )
    with pytest.raises(LibraryMismatchError, match="does not know 2 of the 3"):
        check_model_knows(model, lab)


SHIPPED = shipped_model_dir()


@pytest.mark.skipif(SHIPPED is None, reason="the shipped XRD model is not in this checkout")
def test_predict_refuses_a_library_the_model_does_not_know(tmp_path: Path, capsys) -> None:
    assert SHIPPED is not None
    lab = write_library(tmp_path / "lab", (("In2O3 (bixbyite)", "In2O3"), ("La(OH)3_176", "LaH3O3")))
    pattern = write_xy(tmp_path / "p.xy")
    code = main(["predict", str(SHIPPED), str(pattern), "--library", str(lab), "--no-fit"])
    out = capsys.readouterr()
    assert code == 2
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "does not know 2 of the 2 phases" in lines[0], out.err
    assert "Traceback" not in out.err and out.out == ""
    # its own library is known: the patterns are identified
    code = main(["predict", str(SHIPPED), str(pattern), "--library", str(SHIPPED / "library"), "--no-fit",
                 "--wavelength", "1.5406", "--json"])  # fmt: skip
    assert code == 0
    assert '"phases"' in capsys.readouterr().out


def test_polymorphs_of_one_formula_are_told_apart_by_their_strongest_peaks(tmp_path: Path) -> None:
    from labeltune.core.xrd.library import build_library

    refs = Path(__file__).resolve().parents[2] / "desktop/labeltune/resources/demos/xrd/references"
    model = build_library([refs / "TiO2_141.cif"], tmp_path / "model")  # anatase, computed cell
    assert model.names == ["TiO2_141"]
    # COD's anatase (measured cell, 5 % smaller than the computed one) is the same phase; rutile is not
    lab = build_library([refs / "TiO2_141.cif", refs / "TiO2_136.cif"], tmp_path / "lab")
    lab.phases[0] = replace(lab.phases[0], name="TiO2 (anatase)", volume=130.4)
    lab.peaks["TiO2 (anatase)"] = lab.peaks.pop("TiO2_141")
    lab.peaks["TiO2 (anatase)"] = replace(
        lab.peaks["TiO2 (anatase)"], d=lab.peaks["TiO2 (anatase)"].d * 0.983
    )
    assert unknown_to_model(model, lab) == ["TiO2_136"]
    mo = build_library([refs / "TiO2_141.cif"], tmp_path / "mo", wavelength=0.7093, naming="cif")
    mo.phases[0] = replace(mo.phases[0], name="anatase at Mo")
    mo.peaks["anatase at Mo"] = mo.peaks.pop("TiO2_141")
    assert unknown_to_model(model, mo) == []  # other angles, the same d-spacings
