"""The new readers, fuzzed: damaged generated files and arbitrary bytes behind each magic raise only
`PatternReadError` (one line), never another exception, and end promptly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from format_files import (
    XYLIB,
    brml_bytes,
    raw_v1_bytes,
    raw_v2_bytes,
    raw_v3_bytes,
    rd_bytes,
    scan,
    write_cpi,
    write_gsas,
    write_riet7,
    write_udf,
    write_uxd,
)  # fmt: skip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labeltune.core.xrd.pattern import Pattern, PatternReadError
from labeltune.core.xrd.readers import read_pattern

FUZZ = settings(
    max_examples=int(os.environ.get("LABELTUNE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def _fixtures(folder: Path) -> dict[str, bytes]:
    x, y = scan(120, 10.0, 0.05)
    made = {
        "a.dat": write_riet7(folder / "a.dat", 10.0, 0.05, y, esd=np.sqrt(y)),
        "a.uxd": write_uxd(folder / "a.uxd", 10.0, 0.05, y),
        "a.gsa": write_gsas(folder / "a.gsa", 10.0, 0.05, y, kind="STD"),
        "a.fxye": write_gsas(folder / "a.fxye", 10.0, 0.05, y, kind="FXYE"),
        "a.cpi": write_cpi(folder / "a.cpi", 10.0, 0.05, y),
        "a.udf": write_udf(folder / "a.udf", 10.0, 0.05, y),
    }
    out = {name: path.read_bytes() for name, path in made.items()}
    out |= {
        "v3.raw": raw_v3_bytes(10.0, 0.05, y, ranges=2, extra=8),
        "v1.raw": raw_v1_bytes(10.0, 0.05, y),
        "v2.raw": raw_v2_bytes(10.0, 0.05, y),
        "a.rd": rd_bytes(10.0, 0.05, np.sqrt(100 * y).astype(np.uint16)),
        "a.brml": brml_bytes(x, y),
    }
    for name in ("D1A5.dat", "BT86.raw", "BT86_.UXD"):
        if (XYLIB / name).is_file():
            out["real_" + name] = (XYLIB / name).read_bytes()[:12000]
    return out


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _fixtures(tmp_path_factory.mktemp("made"))


def _read(path: Path) -> None:
    try:
        pattern = read_pattern(path)
    except PatternReadError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(path.name)
        return
    assert isinstance(pattern, Pattern) and len(pattern) >= 10
    assert np.all(np.isfinite(pattern.two_theta)) and np.all(np.diff(pattern.two_theta) > 0)
    assert pattern.esd is None or pattern.esd.shape == pattern.intensity.shape


@FUZZ
@given(
    pick=st.integers(0, 100),
    cuts=st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from(["cut", "flip", "insert"])), min_size=1, max_size=4
    ),
)
def test_damaged_files_are_read_or_refused_in_one_line(
    tmp_path: Path, fixtures: dict[str, bytes], pick: int, cuts: list[tuple[float, str]]
) -> None:
    name = sorted(fixtures)[pick % len(fixtures)]
    data = bytearray(fixtures[name])
    for where, what in cuts:
        i = min(int(where * len(data)), len(data) - 1)
        if what == "cut":
            del data[i:]
        elif what == "flip":
            data[i] ^= 0x10
        else:
            data[i:i] = b"9 "
        if not data:
            break
    path = tmp_path / name
    path.write_bytes(bytes(data))
    _read(path)


MAGICS = [
    b"RAW1.01",
    b"RAW2",
    b"RAW ",
    b"V3RD",
    b"V5RD",
    b"SIETRONICS XRD SCAN\n",
    b"SampleIdent",
    b"_FILEVERSION=1\n",
]


@FUZZ
@given(magic=st.sampled_from(MAGICS), body=st.binary(max_size=2000))
def test_arbitrary_bytes_behind_each_magic(tmp_path: Path, magic: bytes, body: bytes) -> None:
    path = tmp_path / "any.bin"
    path.write_bytes(magic + body)
    _read(path)
