"""RIET7/LHPM/ILL/PSI "start step end + counts" ``.dat`` files: real neutron files and generated ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from format_files import XYLIB, scan, write_riet7

from labeltune.core.xrd.pattern import PatternReadError
from labeltune.core.xrd.readers import read_pattern

needs_xylib = pytest.mark.skipif(not XYLIB.is_dir(), reason="shared xylib sample files not present")


def _numbers_after(path: Path, skip: int) -> list[float]:
    """Every number after the first ``skip`` lines up to the first line of words (an independent parse)."""
    out: list[float] = []
    for line in path.read_text().splitlines()[skip:]:
        try:
            out.extend(float(v) for v in line.split())
        except ValueError:
            break
    return out


@needs_xylib
def test_ill_d1a5_reads_counts_not_esds_and_says_neutron() -> None:
    path = XYLIB / "D1A5.dat"
    numbers = _numbers_after(path, 5)  # -10.0 0.1 157.9: 1680 counts, then 1680 esds
    assert len(numbers) == 2 * 1680
    pattern = read_pattern(path)
    assert pattern.format == "counts_dat"
    assert pattern.wavelength == pytest.approx(1.9114) and pattern.wavelength_source == "file"
    assert pattern.radiation == "neutron" and "D1A5" in pattern.metadata["radiation_from"]
    # the 100 points below 2θ = 0 are dropped with a warning; the rest keep their angle and count
    assert len(pattern) == 1580 and pattern.two_theta[0] == 0.0
    assert pattern.two_theta[-1] == pytest.approx(157.9)
    assert np.allclose(pattern.intensity, numbers[100:1680])
    assert pattern.esd is not None and np.allclose(pattern.esd, numbers[1680 + 100 :])
    assert any("below 2θ = 0" in w for w in pattern.warnings)


@needs_xylib
def test_psi_dmc_reads_3200_counts_and_keeps_the_trailer() -> None:
    path = XYLIB / "PSI_DMC.dat"
    numbers = _numbers_after(path, 3)
    assert len(numbers) == 6400
    pattern = read_pattern(path)
    assert pattern.wavelength == pytest.approx(1.494)
    assert pattern.radiation == "neutron" and "HRPT" in pattern.metadata["radiation_from"]
    assert len(pattern) == 3200
    assert pattern.two_theta[0] == pytest.approx(2.948) and pattern.two_theta[-1] == pytest.approx(162.898)
    assert np.allclose(np.diff(pattern.two_theta), 0.05)
    assert np.array_equal(pattern.intensity, numbers[:3200])
    assert pattern.esd is not None and np.array_equal(pattern.esd, numbers[3200:])
    # the esds follow counting statistics (about √counts): they were not read as counts
    counted = pattern.intensity > 0
    assert 0.9 < float(np.median(pattern.esd[counted] / np.sqrt(pattern.intensity[counted]))) < 1.1
    assert "Numor=2455 2490" in pattern.metadata["trailer"]


def test_generated_lhpm_file_with_wavelength_in_the_title(tmp_path: Path) -> None:
    x, y = scan(301, 10.0, 0.05)
    path = write_riet7(tmp_path / "sample.dat", 10.0, 0.05, y, title="CeO2 Rietica  lambda=1.5406")
    pattern = read_pattern(path)
    assert np.allclose(pattern.two_theta, x) and np.array_equal(pattern.intensity, y)
    assert pattern.wavelength == pytest.approx(1.5406) and pattern.esd is None
    assert pattern.radiation == "unknown"
    assert (
        read_pattern(write_riet7(tmp_path / "t.dat", 10.0, 0.05, y, title="Cu tube 1.5406 A")).wavelength
        == 1.5406
    )
    assert (
        read_pattern(write_riet7(tmp_path / "n.dat", 10.0, 0.05, y, title="no wavelength")).wavelength is None
    )


def test_generated_file_with_an_esd_block(tmp_path: Path) -> None:
    _x, y = scan(200, 5.0, 0.1)
    esd = np.round(np.sqrt(y), 2)
    pattern = read_pattern(write_riet7(tmp_path / "esd.dat", 5.0, 0.1, y, esd=esd, per_row=10))
    assert np.array_equal(pattern.intensity, y) and np.allclose(pattern.esd, esd)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cut", "message"),
    [(1, "announces 301 points .* holds 300 numbers"), (-150, "holds 452 numbers")],
    ids=["truncated", "half-an-esd-block"],
)
def test_wrong_count_of_numbers_is_refused(tmp_path: Path, cut: int, message: str) -> None:
    _x, y = scan(301, 10.0, 0.05)
    if cut > 0:
        path = write_riet7(tmp_path / "short.dat", 10.0, 0.05, y[:-cut], end=25.0)  # header still says 301
    else:
        path = write_riet7(tmp_path / "odd.dat", 10.0, 0.05, np.concatenate([y, np.sqrt(y)[:cut]]), end=25.0)
    with pytest.raises(PatternReadError, match=message):
        read_pattern(path)


def test_mismatched_step_is_refused(tmp_path: Path) -> None:
    _x, y = scan(301, 10.0, 0.05)  # 10 to 25 by 0.05 is 301 points; by 0.1 it would be 151
    with pytest.raises(PatternReadError, match="announces 151 points"):
        read_pattern(write_riet7(tmp_path / "step.dat", 10.0, 0.1, y, end=25.0))


def test_numbers_after_the_trailer_are_refused(tmp_path: Path) -> None:
    _x, y = scan(40, 10.0, 0.5)
    path = write_riet7(tmp_path / "two.dat", 10.0, 0.5, y)
    path.write_text(path.read_text() + "second block\n 1 2 3\n")
    with pytest.raises(PatternReadError, match="numbers after the text"):
        read_pattern(path)


def test_a_plain_three_column_table_is_still_xy(tmp_path: Path) -> None:
    x, y = scan(50, 10.0, 0.5)
    path = tmp_path / "table.dat"
    path.write_text("\n".join(f"{a:.2f} {b:.0f} {np.sqrt(b):.2f}" for a, b in zip(x, y, strict=True)))
    pattern = read_pattern(path)
    assert pattern.format == "xy" and np.allclose(pattern.two_theta, x)
