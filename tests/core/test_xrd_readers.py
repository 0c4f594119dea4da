"""XRD pattern readers: real measured files from /work/shared/data/xrd, synthetic variants, bad files."""

from __future__ import annotations

import contextlib
import io
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labeltune.core.errors import UnusableInputError
from labeltune.core.xrd.pattern import MissingWavelengthError, Pattern, PatternReadError, make_pattern
from labeltune.core.xrd.readers import SUPPORTED_EXTENSIONS, read_pattern

DATA = Path("/work/shared/data/xrd")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared XRD data not present")


def _peak(pattern: Pattern) -> float:
    return float(pattern.two_theta[int(np.argmax(pattern.intensity))])


def _xy_lines(n: int = 50, start: float = 10.0, step: float = 0.5) -> list[tuple[float, float]]:
    x = start + step * np.arange(n)
    y = 100.0 + 1000.0 * np.exp(-(((x - 30.0) / 0.3) ** 2))
    return list(zip(x.tolist(), y.tolist(), strict=True))


# --- real files --------------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize(
    "path", sorted((DATA / "li_mn_ti_o_f" / "patterns").glob("*.xy")), ids=lambda p: p.name
)
def test_real_xy_patterns(path: Path) -> None:
    pattern = read_pattern(path)
    assert pattern.format == "xy"
    assert len(pattern) == 9001
    assert pattern.two_theta[0] == pytest.approx(10.0) and pattern.two_theta[-1] == pytest.approx(100.0)
    assert np.allclose(np.diff(pattern.two_theta), 0.01, atol=1e-6)
    assert pattern.two_theta.dtype == np.float64 and pattern.intensity.dtype == np.float64
    assert pattern.wavelength is None and pattern.wavelength_source == "unknown"
    assert pattern.intensity.max() > 5 * np.median(pattern.intensity)  # it has peaks
    filled = read_pattern(path, default_wavelength=1.5406)
    assert filled.wavelength == 1.5406 and filled.wavelength_source == "setting"


@needs_data
def test_real_xrdml_patterns_match_the_xml() -> None:
    files = sorted((DATA / "dara_mixtures").glob("*/*.xrdml"))
    assert len(files) >= 40
    for path in files:
        pattern = read_pattern(path, default_wavelength=0.7093)  # the file's own value wins
        root = ET.parse(path).getroot()  # trusted fixture: parsed independently here
        ns = {"x": root.tag[1:].split("}")[0]}
        k_alpha1 = float(root.find(".//x:usedWavelength/x:kAlpha1", ns).text)  # type: ignore[union-attr]
        counts = root.find(".//x:dataPoints/x:counts", ns)
        if counts is None:
            counts = root.find(".//x:dataPoints/x:intensities", ns)
        assert pattern.format == "xrdml"
        assert pattern.wavelength == pytest.approx(k_alpha1) and pattern.wavelength_source == "file"
        assert pattern.wavelength == pytest.approx(1.5406, abs=1e-4)
        assert pattern.wavelength2 == pytest.approx(1.5444, abs=1e-3)
        assert pattern.ka2_ratio == pytest.approx(0.5)
        assert len(pattern) == len(counts.text.split())  # type: ignore[union-attr]
        assert 9.9 < pattern.two_theta[0] < 10.1 and 99.9 < pattern.two_theta[-1] < 100.1
        assert np.all(np.diff(pattern.two_theta) > 0)


@needs_data
def test_real_rruff_profiles() -> None:
    corundum = read_pattern(next((DATA / "rruff").glob("Corundum*.txt")))
    assert corundum.format == "rruff"
    assert corundum.metadata["NAMES"] == "Corundum" and corundum.metadata["RRUFFID"] == "R040096"
    assert len(corundum) == 8501 and corundum.two_theta[0] == 5.0 and corundum.two_theta[-1] == 90.0
    assert _peak(corundum) == pytest.approx(35.15, abs=0.1)  # corundum 104 is the strongest line here
    assert corundum.wavelength is None and corundum.wavelength_source == "unknown"
    calcite = read_pattern(next((DATA / "rruff").glob("Calcite*.txt")))
    assert _peak(calcite) == pytest.approx(29.4, abs=0.1)  # calcite 104
    quartz = read_pattern(next((DATA / "rruff").glob("Quartz*.txt")))
    assert _peak(quartz) == pytest.approx(26.64, abs=0.1)  # quartz 101


@needs_data
def test_real_bruker_raw4() -> None:
    pattern = read_pattern(DATA / "formats" / "bruker.raw")
    assert pattern.format == "bruker_raw4"
    assert len(pattern) == 4059
    assert pattern.two_theta[0] == pytest.approx(37.0001)
    assert np.diff(pattern.two_theta).mean() == pytest.approx(0.0204545, abs=1e-6)
    assert pattern.two_theta[-1] == pytest.approx(120.0, abs=0.01)
    assert pattern.wavelength == pytest.approx(1.5406) and pattern.wavelength_source == "file"
    assert pattern.wavelength2 == pytest.approx(1.54439) and pattern.ka2_ratio == pytest.approx(0.5)
    assert pattern.metadata["anode"] == "Cu" and pattern.metadata["scan_type"] == "Locked Coupled"
    assert np.all(pattern.intensity >= 0)
    assert pattern.intensity.max() > 10 * np.median(pattern.intensity)  # a sharp peak over the background
    # fcc Cu(-Ag): 111, 200, 220 and 311 peaks all index to one lattice parameter (about 3.64 Å)
    d = pattern.d_spacing()
    for (lo, hi), hkl in zip([(42, 45), (48, 52), (72, 76), (88, 92)], [3, 4, 8, 11], strict=True):
        window = (pattern.two_theta > lo) & (pattern.two_theta < hi)
        assert pattern.intensity[window].max() > 1.5 * np.median(pattern.intensity)
        a = d[window][np.argmax(pattern.intensity[window])] * np.sqrt(hkl)
        assert a == pytest.approx(3.64, abs=0.01)


@needs_data
def test_real_pdcif() -> None:
    pattern = read_pattern(DATA / "formats" / "data.cif")
    assert pattern.format == "pdcif"
    assert len(pattern) == 3728  # _pd_meas_number_of_points
    assert pattern.two_theta[0] == pytest.approx(8.0) and pattern.two_theta[-1] == pytest.approx(89.994)
    assert pattern.wavelength == pytest.approx(1.540598) and pattern.wavelength2 == pytest.approx(1.54439)
    assert pattern.ka2_ratio == pytest.approx(0.38)
    assert pattern.intensity[0] == 1733.0


@needs_data
def test_stoe_raw_is_refused_clearly() -> None:
    with pytest.raises(PatternReadError, match="STOE"):
        read_pattern(DATA / "formats" / "stoe.raw")


# --- synthetic text variants -------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "header", "row"),
    [
        ("a.csv", "2theta,intensity\n", "{x},{y}\n"),
        ("b.xy", "# comment\n; another\n! third\n", "{x} {y}\n"),
        ("c.dat", "Angle   Counts\n", "  {x}\t\t{y}  \n"),
        ("d.txt", "", "{x}; {y}\n"),
        ("e.xye", "# x y esd\n", "{x} {y} 3.5\n"),
        ("f.csv", "Two Theta, Intensity, Sigma\n", "{x}, {y}, 1e1\n"),
    ],
)
def test_text_variants(tmp_path: Path, name: str, header: str, row: str) -> None:
    rows = _xy_lines()
    path = _write(tmp_path, name, header + "".join(row.format(x=x, y=y) for x, y in rows))
    pattern = read_pattern(path)
    assert len(pattern) == len(rows)
    assert np.allclose(pattern.two_theta, [x for x, _ in rows])
    assert np.allclose(pattern.intensity, [y for _, y in rows])
    assert _peak(pattern) == pytest.approx(30.0)
    assert pattern.wavelength is None and pattern.wavelength_source == "unknown"


def test_descending_angles_are_sorted(tmp_path: Path) -> None:
    rows = _xy_lines()[::-1]
    pattern = read_pattern(_write(tmp_path, "desc.xy", "".join(f"{x}\t{y}\n" for x, y in rows)))
    assert np.all(np.diff(pattern.two_theta) > 0)
    assert _peak(pattern) == pytest.approx(30.0)


def test_rruff_header_wavelength_and_ras(tmp_path: Path) -> None:
    rows = _xy_lines()
    rruff = (
        "##NAMES=Test\n##X-RAY WAVELENGTH=1.541838\n" + "".join(f"{x}, {y}\n" for x, y in rows) + "##END=\n"
    )
    pattern = read_pattern(_write(tmp_path, "r.txt", rruff))
    assert pattern.format == "rruff" and pattern.wavelength == pytest.approx(1.541838)
    assert pattern.metadata["NAMES"] == "Test" and len(pattern) == len(rows)

    ras = (
        '*RAS_DATA_START\n*RAS_HEADER_START\n*HW_XG_WAVE_LENGTH_ALPHA1 "1.540593"\n'
        '*HW_XG_WAVE_LENGTH_ALPHA2 "1.544414"\n*MEAS_SCAN_AXIS_X "TwoThetaTheta"\n*RAS_HEADER_END\n'
        "*RAS_INT_START\n"
        + "".join(f"{x:.4f} {y:.1f} 2.0000\n" for x, y in rows)
        + "*RAS_INT_END\n*RAS_DATA_END\n"
    )
    pattern = read_pattern(_write(tmp_path, "s.ras", ras))
    assert pattern.format == "ras" and len(pattern) == len(rows)
    assert pattern.wavelength == pytest.approx(1.540593) and pattern.wavelength2 == pytest.approx(1.544414)
    assert pattern.intensity[0] == pytest.approx(2 * round(rows[0][1], 1))  # attenuator factor applied


def test_rasx_zip(tmp_path: Path) -> None:
    rows = _xy_lines()
    conditions = (
        '<?xml version="1.0" encoding="utf-8"?><MeasurementConditions><HWConfigurations><XrayGenerator>'
        "<TargetName>Cu</TargetName><WavelengthKalpha1>1.540593</WavelengthKalpha1>"
        "<WavelengthKalpha2>1.544414</WavelengthKalpha2></XrayGenerator></HWConfigurations></MeasurementConditions>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Data0/Profile0.txt", "".join(f"{x}\t{y}\t1\n" for x, y in rows))
        archive.writestr("Data0/MesurementConditions0.xml", conditions)
    path = tmp_path / "scan.rasx"
    path.write_bytes(buffer.getvalue())
    pattern = read_pattern(path)
    assert pattern.format == "rasx" and len(pattern) == len(rows)
    assert pattern.wavelength == pytest.approx(1.540593) and pattern.metadata["TargetName"] == "Cu"
    assert _peak(pattern) == pytest.approx(30.0)


def test_synthetic_pdcif_with_esds(tmp_path: Path) -> None:
    rows = _xy_lines()
    text = (
        "data_test\n_diffrn_radiation_wavelength 0.7093\n"
        "loop_\n_pd_meas_2theta_scan\n_pd_meas_intensity_total\n"
        + "".join(f"{x:.3f} {y:.0f}({int(np.sqrt(y))})\n" for x, y in rows)
    )
    pattern = read_pattern(_write(tmp_path, "p.cif", text))
    assert len(pattern) == len(rows) and pattern.wavelength == pytest.approx(0.7093)
    assert pattern.intensity[0] == round(rows[0][1])


def _xrdml(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/2.0">'
        '<xrdMeasurement><usedWavelength intended="K-Alpha 1"><kAlpha1 unit="Angstrom">1.78897</kAlpha1>'
        "</usedWavelength><scan><dataPoints>"
        + body
        + "</dataPoints></scan></xrdMeasurement></xrdMeasurements>"
    )


def test_xrdml_list_positions_and_intensities(tmp_path: Path) -> None:
    rows = _xy_lines()
    body = (
        '<positions axis="2Theta" unit="deg"><listPositions>'
        + " ".join(str(x) for x, _ in rows)
        + '</listPositions></positions><intensities unit="counts">'
        + " ".join(str(y) for _, y in rows)
        + "</intensities>"
    )
    pattern = read_pattern(_write(tmp_path, "l.xrdml", _xrdml(body)))
    assert len(pattern) == len(rows) and pattern.wavelength == pytest.approx(1.78897)
    assert np.allclose(pattern.two_theta, [x for x, _ in rows])


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10)
    )
    + "]>\n<xrdMeasurements>&lol9;</xrdMeasurements>\n"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'
    "<xrdMeasurements><comment>&xxe;</comment></xrdMeasurements>\n"
)


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion_laughs", "external_entity"])
def test_xml_attacks_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(PatternReadError, match="DOCTYPE or ENTITY"):
        read_pattern(_write(tmp_path, "attack.xrdml", text))
    utf16 = tmp_path / "attack16.xrdml"
    utf16.write_bytes(text.replace('"1.0"?>', '"1.0" encoding="UTF-16"?>').encode("utf-16"))
    with pytest.raises(PatternReadError, match="DOCTYPE or ENTITY"):
        read_pattern(utf16)


# --- bad files ---------------------------------------------------------------------------------

_GOOD = "".join(f"{x} {y}\n" for x, y in _xy_lines())
BAD_FILES = {
    "empty.xy": ("", "empty"),
    "blank.xy": ("\n \n\t\n", "empty"),
    "one_column.xy": ("".join(f"{x}\n" for x, _ in _xy_lines()), "one column"),
    "nan.xy": (_GOOD + "60.0 nan\n", "NaN"),
    "inf.csv": ("10,1\n" + _GOOD.replace("100.0", "inf", 1), "NaN or infinite"),
    "junk.txt": (_GOOD + "hello world\n", "not numeric"),
    "words.dat": ("just some words\nand more words\n", "no numeric data"),
    "few.xy": ("10 1\n11 2\n12 3\n", "only 3 data points"),
    "angles.xy": ("".join(f"{x * 10} {y}\n" for x, y in _xy_lines()), "between 0 and 180"),
    "truncated.xrdml": (_xrdml('<positions axis="2Theta"><startPosition>10')[:-40], "XML"),
    "no_counts.xrdml": (
        _xrdml('<positions axis="2Theta"><startPosition>10</startPosition></positions>'),
        "counts",
    ),
    "few.cif": ("data_x\nloop_\n_pd_meas_2theta_scan\n_pd_meas_counts_total\n10 1\n11 2\n", "only 2"),
    "nointensity.cif": ("data_x\n_cell_length_a 4.0\n", "no powder intensities"),
    "bad.ras": ("*RAS_INT_START\n10 1 1\nxx yy\n*RAS_INT_END\n", "not a '2θ intensity' row"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_text_files(tmp_path: Path, name: str) -> None:
    text, message = BAD_FILES[name]
    with pytest.raises(PatternReadError, match=message) as caught:
        read_pattern(_write(tmp_path, name, text))
    assert "\n" not in str(caught.value) and str(caught.value).startswith(name)
    assert isinstance(caught.value, UnusableInputError)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("unknown.raw", bytes(range(256)) * 8, "unknown binary"),
        ("binary.xy", b"\x00\x01\x02" * 100, "binary"),
        ("trunc.raw", b"RAW4.00\x00" + b"\x00" * 80, "RAW4"),
        ("v3.raw", b"RAW1.01" + b"\x00" * 900, "too short for a RAW1.01"),
        ("broken.rasx", b"PK\x03\x04garbage", "zip"),
        ("missing.xy", None, "cannot be read"),
    ],
)
def test_bad_binary_files(tmp_path: Path, name: str, data: bytes | None, message: str) -> None:
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(PatternReadError, match=message):
        read_pattern(path)


@needs_data
def test_truncated_real_files(tmp_path: Path) -> None:
    for source in (DATA / "formats" / "bruker.raw", next((DATA / "dara_mixtures").glob("*/*.xrdml"))):
        data = source.read_bytes()
        for cut in (10, 100, 500, len(data) // 2, len(data) - 7):
            path = tmp_path / source.name
            path.write_bytes(data[:cut])
            with pytest.raises(PatternReadError):
                read_pattern(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), suffix=st.sampled_from(SUPPORTED_EXTENSIONS))
def test_fuzz_random_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        pattern = read_pattern(path)
    except PatternReadError:
        return
    assert isinstance(pattern, Pattern)


_TOKEN = st.sampled_from(
    ["10", "-1", "1e3", "nan", "inf", "1e999", "abc", ",", ";", "#", "\t", " ", "0.5", "(3)", "*"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.lists(_TOKEN, max_size=6).map("".join), max_size=30), numeric=st.integers(0, 20))
def test_fuzz_text_lines(tmp_path: Path, lines: list[str], numeric: int) -> None:
    body = [f"{10 + i} {i}" for i in range(numeric)]
    path = _write(tmp_path, "fuzz.xy", "\n".join(lines[: len(lines) // 2] + body + lines[len(lines) // 2 :]))
    try:
        pattern = read_pattern(path)
    except PatternReadError:
        return
    assert (
        len(pattern) >= 10
        and np.all(np.isfinite(pattern.intensity))
        and np.all(np.diff(pattern.two_theta) >= 0)
    )


# --- Pattern helpers ---------------------------------------------------------------------------


def _pattern(wavelength: float | None = 1.5406) -> Pattern:
    x = np.linspace(10, 100, 901)
    y = 10 + 1000 * np.exp(-(((x - 40.0) / 0.1) ** 2))
    return make_pattern(x, y, source=Path("synthetic.xy"), format="xy", wavelength=wavelength)


def test_d_spacing_and_conversion() -> None:
    cu = _pattern()
    d = cu.d_spacing()
    assert d[np.argmax(cu.intensity)] == pytest.approx(1.5406 / (2 * np.sin(np.radians(20.0))))
    mo = cu.converted(0.7093)
    assert mo.wavelength == 0.7093 and len(mo) == len(cu)  # a shorter wavelength keeps every point
    assert np.allclose(mo.d_spacing(), d)
    assert _peak(mo) == pytest.approx(np.degrees(2 * np.arcsin(0.7093 / (2 * d[np.argmax(cu.intensity)]))))
    wide = make_pattern(
        np.linspace(10, 170, 1601), np.ones(1601), source=Path("w.xy"), format="xy", wavelength=1.5406
    )
    co = wide.converted(1.78897)
    assert 100 < len(co) < len(wide) and co.two_theta.max() < 180  # points beyond the new limit are dropped
    assert np.all(np.diff(co.two_theta) > 0)
    with pytest.raises(MissingWavelengthError):
        _pattern(None).d_spacing()
    with pytest.raises(ValueError):
        cu.converted(-1.0)


def test_resample_and_normalise() -> None:
    cu = _pattern()
    grid = np.linspace(0, 120, 1201)
    resampled = cu.resampled(grid)
    assert len(resampled) == grid.size and np.all(np.isfinite(resampled.intensity))
    assert resampled.intensity[grid < 10].max() == 0 and resampled.intensity[grid > 100].max() == 0
    assert np.isnan(cu.resampled(grid, fill=np.nan).intensity[0])
    assert resampled.intensity[400] == pytest.approx(cu.intensity[300])  # 40° sits on both grids
    normal = cu.normalised()
    assert normal.intensity.max() == pytest.approx(1.0) and cu.intensity.max() > 1  # original untouched
    with pytest.raises(ValueError):
        cu.resampled(np.array([3.0, 2.0, 1.0]))


def test_default_wavelength_is_validated(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.xy", _GOOD)
    with pytest.raises(ValueError):
        read_pattern(path, default_wavelength=float("nan"))


def test_readers_import_without_qt() -> None:
    code = (
        "import sys, labeltune.core.xrd.readers, labeltune.core.xrd.pattern;"
        "print(any(m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


@needs_data
def test_mutated_real_files_give_a_pattern_or_the_error(tmp_path: Path) -> None:
    rnd = random.Random(0)
    seeds = {
        "m.raw": (DATA / "formats" / "bruker.raw").read_bytes(),
        "m.cif": (DATA / "formats" / "data.cif").read_bytes()[-20000:],
        "m.xrdml": next((DATA / "dara_mixtures").glob("*/*2min.xrdml")).read_bytes(),
    }
    for _ in range(300):
        name, seed = rnd.choice(sorted(seeds.items()))
        data = bytearray(seed)
        for _ in range(rnd.randint(1, 6)):
            at = rnd.randrange(len(data))
            if rnd.random() < 0.6:
                data[at] = rnd.randrange(256)
            else:
                del data[at : at + rnd.randint(1, 64)]
        path = tmp_path / name
        path.write_bytes(bytes(data))
        with contextlib.suppress(PatternReadError):
            assert isinstance(read_pattern(path), Pattern)
