"""Column text: ``.xye`` esds kept (through sorting and resampling), decimal commas, CR-only line ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from format_files import XYLIB, scan

from labeltune.core.xrd.pattern import PatternReadError, make_pattern
from labeltune.core.xrd.readers import read_pattern

needs_xylib = pytest.mark.skipif(not XYLIB.is_dir(), reason="shared xylib sample files not present")


def test_xye_keeps_its_esd_column(tmp_path: Path) -> None:
    x, y = scan(100, 10.0, 0.1)
    e = np.round(0.03 * y + 1, 2)  # a synchrotron esd, not √I: kept because the file is .xye
    path = tmp_path / "sync.xye"
    path.write_text("".join(f"{a:.3f} {b:.1f} {c:.2f}\n" for a, b, c in zip(x, y, e, strict=True)))
    pattern = read_pattern(path)
    assert pattern.esd is not None and np.allclose(pattern.esd, e)


def test_synchrotron_dat_esd_column_by_header_or_statistics(tmp_path: Path) -> None:
    x, y = scan(100, 10.0, 0.1)
    named = tmp_path / "named.dat"
    named.write_text(
        "# 2theta  intensity  esd\n"
        + "".join(f"{a:.3f} {b:.1f} {0.5:.2f}\n" for a, b in zip(x, y, strict=True))
    )
    assert np.allclose(read_pattern(named).esd, 0.5)  # type: ignore[arg-type]
    poisson = tmp_path / "poisson.dat"
    poisson.write_text("".join(f"{a:.3f} {b:.1f} {np.sqrt(b):.3f}\n" for a, b in zip(x, y, strict=True)))
    assert np.allclose(read_pattern(poisson).esd, np.sqrt(y), atol=1e-3)  # type: ignore[arg-type]
    other = tmp_path / "background.dat"  # a third column that is a background, not an esd: not kept
    other.write_text("".join(f"{a:.3f} {b:.1f} {100.0:.1f}\n" for a, b in zip(x, y, strict=True)))
    pattern = read_pattern(other)
    assert pattern.esd is None and "ignored_columns" in pattern.metadata


def test_a_negative_esd_is_refused(tmp_path: Path) -> None:
    x, y = scan(30, 10.0, 0.1)
    path = tmp_path / "bad.xye"
    path.write_text("".join(f"{a:.3f} {b:.1f} {-1.0:.1f}\n" for a, b in zip(x, y, strict=True)))
    with pytest.raises(PatternReadError, match="esd"):
        read_pattern(path)


def test_esds_follow_sorting_merging_resampling_and_conversion(tmp_path: Path) -> None:
    x = np.array([14.0, 13.0, 12.0, 12.0, 11.0, 10.0, 9.0, 8.0, 7.0, 6.0, 5.0])
    y = np.arange(11, dtype=float) * 10
    e = np.arange(11, dtype=float) + 1
    pattern = make_pattern(x, y, source=tmp_path / "p.xye", format="xy", esd=e, wavelength=1.5406)
    assert np.array_equal(pattern.two_theta, np.arange(5.0, 15.0))
    assert pattern.esd is not None and pattern.esd[0] == 11.0 and pattern.esd[-1] == 1.0
    assert pattern.esd[7] == pytest.approx(np.sqrt(3.0**2 + 4.0**2) / 2)  # the mean of two points at 12°
    grid = np.linspace(5.0, 14.0, 19)
    assert pattern.resampled(grid).esd.shape == (19,)  # type: ignore[union-attr]
    converted = pattern.converted(1.0)
    assert converted.esd is not None and converted.esd.shape == converted.intensity.shape
    with pytest.raises(PatternReadError, match="11 intensities but 3 esd"):
        make_pattern(x, y, source=tmp_path / "p.xye", format="xy", esd=e[:3])


def test_decimal_commas_are_read_as_decimal_points(tmp_path: Path) -> None:
    x, y = scan(40, 10.0, 0.25)
    path = tmp_path / "komma.txt"
    path.write_text(
        "2Theta;Counts\n" + "".join(f"{a:.2f};{b:.1f}\n".replace(".", ",") for a, b in zip(x, y, strict=True))
    )
    pattern = read_pattern(path)
    assert np.allclose(pattern.two_theta, x) and np.allclose(pattern.intensity, y)
    assert any("decimal commas" in w for w in pattern.warnings)
    blanks = tmp_path / "blanks.xy"
    blanks.write_text("".join(f"{a:.2f}\t{b:.1f}\n".replace(".", ",") for a, b in zip(x, y, strict=True)))
    assert np.allclose(read_pattern(blanks).two_theta, x)
    csv = tmp_path / "plain.csv"  # comma-separated with decimal points stays a CSV
    csv.write_text("".join(f"{a:.2f},{b:.1f}\n" for a, b in zip(x, y, strict=True)))
    assert np.allclose(read_pattern(csv).intensity, y)


@needs_xylib
def test_the_gas_analyser_export_with_decimal_commas_is_refused_not_misread() -> None:
    # "41110,0001736 0,29 -0,75 390,05": a date-time stamp, not 2θ; read as 41110.0001736 it is refused
    with pytest.raises(PatternReadError, match="2θ values run from 41110"):
        read_pattern(XYLIB / "with_commas.txt")


@needs_xylib
def test_cr_only_line_ends_and_a_too_short_sigma_file() -> None:
    raw = (XYLIB / "pesa.txt").read_bytes()
    assert b"\n" not in raw and raw.count(b"\r") >= 40
    rows = [line.split("\t") for line in raw.decode().split("\r") if line.strip()]
    pattern = read_pattern(XYLIB / "pesa.txt")
    assert len(pattern) == len(rows) == 41
    assert np.allclose(pattern.two_theta, [float(r[0]) for r in rows])
    assert np.allclose(pattern.intensity, [float(r[1]) for r in rows])
    with pytest.raises(PatternReadError, match="only 3 data points"):
        read_pattern(XYLIB / "with_sigma.txt")
