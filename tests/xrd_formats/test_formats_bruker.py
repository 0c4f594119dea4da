"""Bruker RAW v1 / RAW2 / RAW1.01, UXD text and BRML: real files where there are some, generated, damaged."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from format_files import XYLIB, brml_bytes, raw_v1_bytes, raw_v2_bytes, raw_v3_bytes, scan, write_uxd

from labeltune.core.xrd.pattern import PatternReadError
from labeltune.core.xrd.readers import read_pattern

needs_xylib = pytest.mark.skipif(not XYLIB.is_dir(), reason="shared xylib sample files not present")


@needs_xylib
def test_bt86_raw_and_its_uxd_copy_give_the_same_scan() -> None:
    raw = read_pattern(XYLIB / "BT86.raw")
    uxd = read_pattern(XYLIB / "BT86_.UXD")
    assert raw.format == "bruker_raw3" and uxd.format == "uxd"
    assert len(raw) == len(uxd) == 2374
    assert np.array_equal(raw.intensity, uxd.intensity)  # counts: identical
    # the UXD writes 2θ with two or three decimals, so the angles agree to its rounding
    assert np.max(np.abs(raw.two_theta - uxd.two_theta)) < 0.006
    assert raw.two_theta[0] == 3.0 and raw.two_theta[1] - raw.two_theta[0] == pytest.approx(0.0155922)
    for pattern in (raw, uxd):
        assert pattern.wavelength == pytest.approx(1.5406) and pattern.wavelength2 == pytest.approx(1.54439)
        assert pattern.ka2_ratio == pytest.approx(0.5) and pattern.radiation == "xray"
    assert raw.metadata["sample_id"] == "BT86" and raw.metadata["anode"] == "Cu"


@needs_xylib
@pytest.mark.parametrize("name", ["Cu3Au-1.raw", "Cu3Au-2.raw"])
def test_real_cu3au_raw_files(name: str) -> None:
    pattern = read_pattern(XYLIB / name)
    assert len(pattern) == 3901
    assert pattern.two_theta[0] == 22.0 and pattern.two_theta[-1] == pytest.approx(100.0)
    data = (XYLIB / name).read_bytes()  # the counts are the file's last 3901 float32 values
    assert np.array_equal(pattern.intensity, np.frombuffer(data[-4 * 3901 :], "<f4"))
    # Cu3Au (fcc, a = 3.75 Å): the (111) peak near 41.7° with Cu Kα1 is the strongest
    assert abs(float(pattern.two_theta[np.argmax(pattern.intensity)]) - 41.7) < 0.5


@needs_xylib
def test_real_three_range_raw_reads_the_first_and_says_so() -> None:
    pattern = read_pattern(XYLIB / "format1.raw")
    assert (
        len(pattern) == 101 and pattern.two_theta[0] == 10.0 and pattern.two_theta[-1] == pytest.approx(20.0)
    )
    assert any("3 ranges" in w for w in pattern.warnings)


def test_generated_raw_v3_with_supplementary_header(tmp_path: Path) -> None:
    x, y = scan(200, 12.0, 0.02)
    path = tmp_path / "gen.raw"
    path.write_bytes(raw_v3_bytes(12.0, 0.02, y, ranges=2, extra=40))
    pattern = read_pattern(path)
    assert np.allclose(pattern.two_theta, x) and np.array_equal(pattern.intensity, y)
    assert pattern.metadata["sample_id"] == "GEN1"
    assert any("2 ranges" in w for w in pattern.warnings) and not any(
        "experimental" in w for w in pattern.warnings
    )


@pytest.mark.parametrize("cut", [4, 4 * 200, 304 + 4 * 250])
def test_truncated_raw_v3_is_refused(tmp_path: Path, cut: int) -> None:
    _x, y = scan(200, 12.0, 0.02)
    path = tmp_path / "cut.raw"
    path.write_bytes(raw_v3_bytes(12.0, 0.02, y, ranges=2)[:-cut])  # the second range is damaged
    with pytest.raises(PatternReadError, match="truncated"):
        read_pattern(path)


@pytest.mark.parametrize(("make", "fmt"), [(raw_v1_bytes, "bruker_raw1"), (raw_v2_bytes, "bruker_raw2")])
def test_generated_raw_v1_and_v2(tmp_path: Path, make: object, fmt: str) -> None:
    x, y = scan(150, 8.0, 0.04)
    path = tmp_path / f"{fmt}.raw"
    path.write_bytes(make(8.0, 0.04, y))  # type: ignore[operator]
    pattern = read_pattern(path)
    assert pattern.format == fmt
    assert np.allclose(pattern.two_theta, x, atol=1e-4)  # float32 start and step
    assert np.array_equal(pattern.intensity, y)
    assert pattern.wavelength == pytest.approx(1.5406, abs=1e-6) and pattern.radiation == "xray"
    assert any("experimental" in w for w in pattern.warnings)
    path.write_bytes(make(8.0, 0.04, y)[:-10])  # type: ignore[operator]
    with pytest.raises(PatternReadError, match="more than the file holds"):
        read_pattern(path)


@pytest.mark.parametrize("pairs", [False, True], ids=["counts", "2theta-counts"])
def test_generated_uxd(tmp_path: Path, pairs: bool) -> None:
    x, y = scan(203, 5.0, 0.02)
    pattern = read_pattern(write_uxd(tmp_path / "gen.uxd", 5.0, 0.02, y, pairs=pairs))
    assert np.allclose(pattern.two_theta, x, atol=1e-4) and np.array_equal(pattern.intensity, y)
    assert pattern.wavelength == pytest.approx(1.5406)


def test_uxd_with_fewer_counts_than_its_stepcount_is_refused(tmp_path: Path) -> None:
    _x, y = scan(203, 5.0, 0.02)
    path = write_uxd(tmp_path / "short.uxd", 5.0, 0.02, y)
    path.write_text(path.read_text().rsplit("\n", 2)[0] + "\n")  # the last row of counts is gone
    with pytest.raises(PatternReadError, match="_STEPCOUNT=203 but 200 counts"):
        read_pattern(path)


def test_generated_brml(tmp_path: Path) -> None:
    x, y = scan(120, 10.0, 0.05)
    path = tmp_path / "gen.brml"
    path.write_bytes(brml_bytes(x, y))
    pattern = read_pattern(path)
    assert pattern.format == "brml"
    assert np.allclose(pattern.two_theta, x, atol=1e-4) and np.array_equal(pattern.intensity, y)
    assert pattern.wavelength == pytest.approx(1.5406) and pattern.wavelength2 == pytest.approx(1.54439)
    assert any("experimental" in w for w in pattern.warnings)


def test_brml_with_missing_records_or_an_unsafe_member_is_refused(tmp_path: Path) -> None:
    x, y = scan(120, 10.0, 0.05)
    path = tmp_path / "short.brml"
    path.write_bytes(brml_bytes(x[:-5], y[:-5], points=120))
    with pytest.raises(PatternReadError, match="120 points announced but 115"):
        read_pattern(path)
    evil = tmp_path / "evil.brml"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../Experiment0/RawData0.xml", "<RawData/>")
    with pytest.raises(PatternReadError, match="unsafe path"):
        read_pattern(evil)
