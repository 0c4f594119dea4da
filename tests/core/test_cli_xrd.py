"""``labeltune xrd library``: CIF files to a reusable reference library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labeltune.cli import main
from labeltune.core.xrd.library import load_library

CIFS = Path(__file__).resolve().parents[3] / "shared" / "data" / "xrd" / "cod_cifs"


@pytest.mark.skipif(not CIFS.is_dir(), reason="../shared/data/xrd is not present")
def test_library_from_a_folder_and_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_broken\n_cell_length_a 4.0\n")
    code = main(["xrd", "library", str(CIFS / "1000017.cif"), str(CIFS / "1530150.cif"), str(bad),
                 "--out", str(tmp_path / "lib"), "--json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in summary["phases"]] == ["1000017", "1530150"]
    assert {p["formula"] for p in summary["phases"]} == {"Al2O3", "TiO2"}
    assert summary["wavelength"] == pytest.approx(1.5406)
    assert [Path(s["path"]).name for s in summary["skipped"]] == ["broken.cif"]
    library = load_library(tmp_path / "lib")
    corundum = library.peaks["1000017"]
    strongest = sorted(corundum.two_theta[i] for i in corundum.intensity.argsort()[-3:])
    assert strongest == pytest.approx([35.15, 43.36, 57.50], abs=0.1)


@pytest.mark.parametrize(
    "args",
    [
        ["xrd", "library", "/nonexistent/dir", "--out", "OUT"],
        ["xrd", "library", "CIF", "--out", "OUT", "--two-theta", "50", "10"],
        ["xrd", "library", "CIF", "--out", "OUT", "--wavelength", "154"],
    ],
)
def test_library_usage_errors(tmp_path, capsys, args):
    cif = tmp_path / "x.cif"
    cif.write_text("data_x\n")
    args = [str(cif) if a == "CIF" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
