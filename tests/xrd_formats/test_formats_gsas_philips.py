"""GSAS raw (STD / ESD / FXYE), Philips ``.rd`` and ``.udf``, Sietronics ``.cpi``: generated files, damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from format_files import rd_bytes, scan, write_cpi, write_gsas, write_udf

from labeltune.core.xrd.pattern import PatternReadError
from labeltune.core.xrd.readers import read_pattern


@pytest.mark.parametrize(("kind", "suffix"), [("STD", ".gsa"), ("ESD", ".gss"), ("FXYE", ".fxye")])
def test_generated_gsas_banks(tmp_path: Path, kind: str, suffix: str) -> None:
    x, y = scan(257, 10.0, 0.05)
    pattern = read_pattern(write_gsas(tmp_path / f"gen{suffix}", 10.0, 0.05, y, kind=kind))
    assert pattern.format == "gsas" and pattern.metadata["records"] == kind
    assert np.allclose(pattern.two_theta, x, atol=1e-6)  # centidegrees in the file
    assert np.allclose(pattern.intensity, y)
    assert pattern.esd is not None and np.allclose(pattern.esd, np.sqrt(y), rtol=1e-3)
    assert pattern.wavelength is None  # it lives in the instrument parameter file
    assert any("experimental GSAS" in w for w in pattern.warnings)


def test_gsas_std_counters_scale_the_esd(tmp_path: Path) -> None:
    _x, y = scan(20, 10.0, 0.5)
    path = write_gsas(tmp_path / "nc.gsa", 10.0, 0.5, y)
    lines = path.read_text().splitlines()
    lines[3] = " 4" + lines[3][2:]  # the first value was summed over four counters
    path.write_text("\n".join(lines) + "\n")
    pattern = read_pattern(path)
    assert pattern.esd[0] == pytest.approx(np.sqrt(y[0] / 4)) and pattern.esd[1] == pytest.approx(
        np.sqrt(y[1])
    )  # type: ignore[index]


@pytest.mark.parametrize("kind", ["STD", "ESD", "FXYE"])
def test_truncated_gsas_is_refused(tmp_path: Path, kind: str) -> None:
    _x, y = scan(257, 10.0, 0.05)
    path = write_gsas(tmp_path / "cut.gsa", 10.0, 0.05, y, kind=kind)
    path.write_text("\n".join(path.read_text().splitlines()[:-2]) + "\n")
    with pytest.raises(PatternReadError, match="announces 257 points"):
        read_pattern(path)


def test_gsas_fxye_whose_angles_disagree_with_the_bank_line_is_refused(tmp_path: Path) -> None:
    _x, y = scan(100, 10.0, 0.05)
    path = write_gsas(tmp_path / "step.fxye", 10.0, 0.05, y, kind="FXYE")
    text = path.read_text().replace("CONST 1000.000 5.000", "CONST 1000.000 2.000")
    path.write_text(text)
    with pytest.raises(PatternReadError, match=r"step by 0\.05°, but the BANK line says 10° by 0\.02°"):
        read_pattern(path)


def test_gsas_time_of_flight_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tof.gsa"
    path.write_text("TOF data\nBANK 1 10 1 RALF 1000 20 1000 0.0005 ALT\n" + "1 2 3\n" * 10)
    with pytest.raises(PatternReadError, match="time-of-flight"):
        read_pattern(path)


@pytest.mark.parametrize("version", [b"V3", b"V5"])
def test_generated_philips_rd(tmp_path: Path, version: bytes) -> None:
    x, y = scan(180, 15.0, 0.02)
    packed = np.round(np.sqrt(100 * y)).astype(np.uint16)
    path = tmp_path / "gen.rd"
    path.write_bytes(rd_bytes(15.0, 0.02, packed, version))
    pattern = read_pattern(path)
    assert pattern.format == "philips_rd" and np.allclose(pattern.two_theta, x)
    assert np.array_equal(pattern.intensity, packed.astype(float) ** 2 / 100)
    assert np.allclose(pattern.intensity, y, rtol=0.01)
    assert pattern.wavelength is None and pattern.metadata["anode"] == "Cu"
    assert any("experimental Philips RD" in w for w in pattern.warnings)
    path.write_bytes(rd_bytes(15.0, 0.02, packed, version)[:-2])
    with pytest.raises(PatternReadError, match="needs 180 counts"):
        read_pattern(path)


def test_generated_udf_and_its_damage(tmp_path: Path) -> None:
    x, y = scan(161, 5.0, 0.02)
    pattern = read_pattern(write_udf(tmp_path / "gen.udf", 5.0, 0.02, y))
    assert np.allclose(pattern.two_theta, x) and np.array_equal(pattern.intensity, y)
    assert pattern.wavelength == pytest.approx(1.5406) and pattern.radiation == "xray"
    assert any("experimental Philips UDF" in w for w in pattern.warnings)
    with pytest.raises(PatternReadError, match="do not end with '/'"):
        read_pattern(write_udf(tmp_path / "open.udf", 5.0, 0.02, y, close=False))
    with pytest.raises(PatternReadError, match="has 161 points but the file holds 160 counts"):
        read_pattern(write_udf(tmp_path / "short.udf", 5.0, 0.02, y[:-1], end=8.2))


def test_generated_cpi_and_its_damage(tmp_path: Path) -> None:
    x, y = scan(141, 20.0, 0.01)
    pattern = read_pattern(write_cpi(tmp_path / "gen.cpi", 20.0, 0.01, y))
    assert (
        pattern.format == "cpi" and np.allclose(pattern.two_theta, x) and np.array_equal(pattern.intensity, y)
    )
    assert pattern.wavelength == pytest.approx(1.54056) and pattern.metadata["anode"] == "Cu"
    assert any("experimental Sietronics CPI" in w for w in pattern.warnings)
    with pytest.raises(PatternReadError, match="has 141 points but the file holds 140 counts"):
        read_pattern(write_cpi(tmp_path / "short.cpi", 20.0, 0.01, y[:-1], end=21.4))
