"""Neutron patterns are read, but refused by the X-ray library and models (predict, fine-tune, import)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from format_files import XYLIB, scan, write_riet7

from conftest import write_library, write_xy
from labeltune.core.xrd.library import load_library
from labeltune.core.xrd.measured import grid_of, pattern_on_grid
from labeltune.core.xrd.pattern import NeutronDataError, require_xray
from labeltune.core.xrd.pattern_import import import_pattern_files
from labeltune.core.xrd.readers import read_pattern
from labeltune.core.xrd.shipped import shipped_model_dir


def _neutron_file(folder: Path) -> Path:
    _x, y = scan(301, 10.0, 0.05)
    return write_riet7(folder / "hrpd_run.dat", 10.0, 0.05, y, title="D2B  lambda=1.594  sample LaB6")


def test_a_neutron_pattern_is_read_with_its_radiation(tmp_path: Path) -> None:
    pattern = read_pattern(_neutron_file(tmp_path))
    assert pattern.radiation == "neutron" and pattern.wavelength == pytest.approx(1.594)
    assert "D2B" in pattern.metadata["radiation_from"]
    with pytest.raises(
        NeutronDataError, match=r"hrpd_run\.dat: neutron diffraction data .*computed for X-rays"
    ):
        require_xray(pattern)


def test_the_model_input_refuses_neutron_data(tmp_path: Path) -> None:
    library = load_library(write_library(tmp_path / "library"))
    grid = grid_of(library)
    with pytest.raises(NeutronDataError, match=r"hrpd_run\.dat"):
        pattern_on_grid(read_pattern(_neutron_file(tmp_path)), library, grid)
    xray = read_pattern(write_xy(tmp_path / "xray.xy"), default_wavelength=1.5406)
    assert pattern_on_grid(xray, library, grid).max() == pytest.approx(1.0)


def test_the_user_says_what_the_radiation_is(tmp_path: Path) -> None:
    library = load_library(write_library(tmp_path / "library"))
    said_xray = read_pattern(_neutron_file(tmp_path), radiation="xray")  # e.g. a sample named "D20"
    assert said_xray.radiation == "xray" and said_xray.metadata["radiation_from"] == "stated by the user"
    assert np.isfinite(pattern_on_grid(said_xray, library, grid_of(library))).all()
    said_neutron = read_pattern(write_xy(tmp_path / "plain.xy"), default_wavelength=1.5, radiation="neutron")
    with pytest.raises(NeutronDataError, match=r"plain\.xy: .*stated by the user"):
        pattern_on_grid(said_neutron, library, grid_of(library))


def test_project_import_refuses_neutron_files_and_keeps_the_others(tmp_path: Path) -> None:
    neutron = _neutron_file(tmp_path)
    xray = write_xy(tmp_path / "xray.xy")
    added, skipped = import_pattern_files([neutron, xray], tmp_path / "project" / "patterns", 1.5406)
    assert [p.name for p in added] == ["xray.xy"]
    assert len(skipped) == 1 and skipped[0][0] == str(neutron)
    assert "hrpd_run.dat: neutron diffraction data" in skipped[0][1]
    assert not (tmp_path / "project" / "patterns" / "hrpd_run.dat").exists()


@pytest.mark.skipif(not XYLIB.is_dir(), reason="shared xylib sample files not present")
def test_real_neutron_files_are_refused_for_import(tmp_path: Path) -> None:
    files = [XYLIB / "D1A5.dat", XYLIB / "PSI_DMC.dat"]
    added, skipped = import_pattern_files(files, tmp_path / "patterns", 1.5406)
    assert added == [] and [Path(p).name for p, _ in skipped] == ["D1A5.dat", "PSI_DMC.dat"]
    assert all("neutron" in reason for _p, reason in skipped)


@pytest.mark.skipif(shipped_model_dir() is None, reason="the shipped XRD model is not in this checkout")
def test_predict_skips_a_neutron_file_naming_it(tmp_path: Path) -> None:
    from labeltune.core.xrd.inference import predict_patterns

    predictions, skipped = predict_patterns(shipped_model_dir(), [_neutron_file(tmp_path)], fit=False)  # type: ignore[arg-type]
    assert predictions == []
    assert len(skipped) == 1 and "hrpd_run.dat: neutron diffraction data" in skipped[0][1]
