"""Every reader of untrusted files, fuzzed: image decoding, XRD patterns (all formats) and CIFs.

Inputs are arbitrary bytes behind each format's magic, and real fixtures (shipped demo data, and
``../shared/data`` where present) with bits flipped, bytes inserted or the file cut short. Each call runs
under a watchdog: it must end within `TIME_BOUND` seconds and raise nothing but the reader's documented
error (`ImageDecodeError`, `PatternReadError`, `CrystalError`). ``LABELTUNE_FUZZ_EXAMPLES`` raises the
number of examples for a longer run; the default keeps the suite quick and deterministic.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from corpus_xrd import GOOD_CIF, GOOD_PATTERN, good_columns, rasx_bytes, raw_zip, xrdml_text
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from labeltune.core import imaging
from labeltune.core.errors import ImageDecodeError
from labeltune.core.xrd.crystal import CrystalError
from labeltune.core.xrd.library import compute_peaks
from labeltune.core.xrd.pattern import PatternReadError
from labeltune.core.xrd.readers import SUPPORTED_EXTENSIONS, read_pattern

TIME_BOUND = 5.0
"""Seconds one read may take before it counts as a hang."""
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
EXAMPLES = int(os.environ.get("LABELTUNE_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: CI does not flake; raise EXAMPLES to explore
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def within_bound(read: Callable[[], object], allowed: type[Exception]) -> None:
    """Run ``read`` in a thread; fail on a hang, re-raise anything but ``allowed``."""
    outcome: list[BaseException] = []

    def target() -> None:
        try:
            read()
        except allowed:
            pass
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(TIME_BOUND)
    if worker.is_alive():
        pytest.fail(f"the read did not end within {TIME_BOUND} s")
    if outcome:
        raise outcome[0]


Mutation = list[tuple[str, float, bytes]]
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "cut", "insert", "replace"]),
        st.floats(0, 1, allow_nan=False),
        st.binary(min_size=1, max_size=8)
        | st.sampled_from([b"0", b"-", b"1e308", b"nan", b"\n", b"'", b"_"]),
    ),
    min_size=1,
    max_size=6,
)


def mutate(data: bytes, mutations: Mutation) -> bytes:
    """``data`` with each mutation applied at its relative position: a bit flip, a cut, an insertion..."""
    out = bytearray(data)
    for what, where, payload in mutations:
        if not out:
            break
        i = min(int(where * len(out)), len(out) - 1)
        if what == "flip":
            out[i] ^= 1 << (payload[0] % 8)
        elif what == "cut":
            del out[i:]
        elif what == "insert":
            out[i:i] = payload
        else:
            out[i : i + len(payload)] = payload
    return bytes(out)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example's file (each example overwrites the last)."""
    return tmp_path_factory.mktemp("fuzz")


def _xrd_fixtures() -> dict[str, bytes]:
    x, y = good_columns()
    some = slice(0, 400)
    profile = "".join(f"{a:.4f} {b:g} 1\n" for a, b in zip(x[some], y[some], strict=True))
    head = '*RAS_DATA_START\n*HW_XG_WAVE_LENGTH_ALPHA1 "1.5406"\n*RAS_INT_START\n'
    fixtures = {
        "demo.xy": GOOD_PATTERN.read_bytes()[:6000],
        "scan.xrdml": xrdml_text(x[some], y[some]).encode(),
        "scan.rasx": rasx_bytes(profile),
        "scan.ras": f"{head}{profile}*RAS_INT_END\n".encode(),
        "rruff.txt": b"##NAMES=Rutile\n##WAVELENGTH=1.5418\n"
        + "".join(f"{a:g}, {b:g}\n" for a, b in zip(x[some], y[some], strict=True)).encode(),
    }
    for name, relative, limit in (
        ("empyrean.xrdml", "xrd/formats/xylib/empyrean.xrdml", None),
        ("bruker.raw", "xrd/formats/bruker.raw", None),
        ("pd.cif", "xrd/formats/data.cif", 30000),
        ("psi.dat", "xrd/formats/xylib/PSI_DMC.dat", 8000),
        ("commas.txt", "xrd/formats/xylib/with_commas.txt", None),
    ):
        if (SHARED / relative).is_file():
            fixtures[name] = (SHARED / relative).read_bytes()[:limit]
    return fixtures


XRD_FIXTURES = _xrd_fixtures()
MAGICS = [b"", b"RAW4.00", b"RAW_", b"PK\x03\x04", b"<xrdMeasurements>", b"*RAS_", b"##", b"data_x\n_pd_"]


@FUZZ
@given(name=st.sampled_from(sorted(XRD_FIXTURES)), mutations=MUTATIONS)
def test_pattern_readers_survive_damaged_real_files(work: Path, name: str, mutations: Mutation) -> None:
    path = work / name
    path.write_bytes(mutate(XRD_FIXTURES[name], mutations))
    within_bound(lambda: read_pattern(path), PatternReadError)


@FUZZ
@given(
    magic=st.sampled_from(MAGICS),
    body=st.binary(max_size=3000),
    suffix=st.sampled_from(SUPPORTED_EXTENSIONS),
)
def test_pattern_readers_survive_arbitrary_bytes(work: Path, magic: bytes, body: bytes, suffix: str) -> None:
    path = work / f"any{suffix}"
    path.write_bytes(magic + body)
    within_bound(lambda: read_pattern(path), PatternReadError)


NUMBER = st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.sampled_from(
    ["1e999", "-0", "0x10", "1_000", "١٢", "", "?", "1(2)", "9" * 500]
)


@FUZZ
@given(
    rows=st.lists(st.lists(NUMBER, min_size=1, max_size=4), max_size=60),
    separator=st.sampled_from([" ", "\t", ",", ";", ", "]),
    header=st.sampled_from(["", "# 2theta intensity\n", "d (A) I\n", "##WAVELENGTH=0.154 nm\n"]),
    suffix=st.sampled_from([".xy", ".csv", ".txt", ".dat"]),
)
def test_text_pattern_reader_survives_any_table(
    work: Path, rows: list[list[str]], separator: str, header: str, suffix: str
) -> None:
    path = work / f"table{suffix}"
    path.write_text(header + "\n".join(separator.join(row) for row in rows), encoding="utf-8")
    within_bound(lambda: read_pattern(path), PatternReadError)


@FUZZ
@given(
    names=st.lists(
        st.sampled_from(
            ["Data0/Profile0.txt", "Data0/MesurementConditions0.xml", "../x", "a/profile1.txt", "/abs"]
        )
        | st.text(min_size=1, max_size=20),
        min_size=1,
        max_size=4,
    ),
    contents=st.lists(st.binary(max_size=400), min_size=4, max_size=4),
    lie=st.integers(0, 2**32 - 1),
)
def test_rasx_reader_survives_any_archive(
    work: Path, names: list[str], contents: list[bytes], lie: int
) -> None:
    import zlib

    members = []
    for i, name in enumerate(names):
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        stream = packer.compress(contents[i]) + packer.flush()
        members.append((name, stream, zlib.crc32(contents[i]), lie if i == 0 else len(contents[i])))
    path = work / "archive.rasx"
    path.write_bytes(raw_zip(members))
    within_bound(lambda: read_pattern(path), PatternReadError)


def _image_fixtures() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    fixtures: dict[str, bytes] = {}
    for name, fmt, mode in (
        ("a.png", "PNG", "RGB"), ("p.png", "PNG", "P"), ("la.png", "PNG", "LA"), ("i16.png", "PNG", "I;16"),
        ("a.jpg", "JPEG", "RGB"), ("c.jpg", "JPEG", "CMYK"), ("a.gif", "GIF", "P"), ("a.tif", "TIFF", "RGB"),
        ("f.tif", "TIFF", "F"), ("a.bmp", "BMP", "RGB"), ("a.webp", "WEBP", "RGB"), ("a.ppm", "PPM", "RGB"),
    ):  # fmt: skip
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buffer, fmt)
        fixtures[name] = buffer.getvalue()
    for folder in (SHARED / "corn_leaf" / "images", SHARED / "fish4knowledge" / "images"):
        if folder.is_dir():
            real = sorted(p for p in folder.rglob("*") if imaging.is_image_file(p))[:1]
            for path in real:
                fixtures["real" + path.suffix.lower()] = path.read_bytes()[:300_000]
    return fixtures


IMAGE_FIXTURES = _image_fixtures()
IMAGE_MAGICS = [
    b"",
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"P6\n",
]


@FUZZ
@given(name=st.sampled_from(sorted(IMAGE_FIXTURES)), mutations=MUTATIONS, size=st.sampled_from([None, 1, 64]))
def test_image_reader_survives_damaged_images(
    work: Path, name: str, mutations: Mutation, size: int | None
) -> None:
    path = work / name
    path.write_bytes(mutate(IMAGE_FIXTURES[name], mutations))
    within_bound(lambda: imaging.probe(path), ImageDecodeError)
    within_bound(lambda: imaging.decode_rgb(path, size), ImageDecodeError)


@FUZZ
@given(
    magic=st.sampled_from(IMAGE_MAGICS),
    body=st.binary(max_size=2000),
    suffix=st.sampled_from([".jpg", ".png", ".tif"]),
)
def test_image_reader_survives_arbitrary_bytes(work: Path, magic: bytes, body: bytes, suffix: str) -> None:
    path = work / f"any{suffix}"
    path.write_bytes(magic + body)
    within_bound(lambda: imaging.load_array(path, 32), ImageDecodeError)


def _cif_fixtures() -> dict[str, bytes]:
    fixtures = {"rutile.cif": GOOD_CIF.read_bytes()}
    for name in ("1000017.cif", "1010928.cif"):  # corundum, calcite: real symmetry loops
        if (SHARED / "xrd" / "cod_cifs" / name).is_file():
            fixtures[name] = (SHARED / "xrd" / "cod_cifs" / name).read_bytes()
    return fixtures


CIF_FIXTURES = _cif_fixtures()


@FUZZ
@given(name=st.sampled_from(sorted(CIF_FIXTURES)), mutations=MUTATIONS)
def test_cif_reader_survives_damaged_cifs(work: Path, name: str, mutations: Mutation) -> None:
    path = work / name
    path.write_bytes(mutate(CIF_FIXTURES[name], mutations))
    within_bound(lambda: compute_peaks(path), CrystalError)


CIF_NUMBER = st.sampled_from(
    ["0", "-1", "1e308", "1e-308", "nan", "?", ".", "1e5", "180", "3(", "2.5"]
) | st.floats(-1e6, 1e6).map(repr)


@FUZZ
@given(
    name=st.sampled_from(sorted(CIF_FIXTURES)),
    picks=st.lists(st.tuples(st.floats(0, 1), CIF_NUMBER), min_size=1, max_size=4),
)
@example(name="rutile.cif", picks=[(0.0, "4.65e-198")])  # found: a cell that tiny divided by zero
@example(name="rutile.cif", picks=[(0.0, "1e6"), (0.1, "1e6")])  # found: a 10^6 Å cell ran out of memory
def test_cif_reader_survives_wrong_numbers(work: Path, name: str, picks: list[tuple[float, str]]) -> None:
    """Cell lengths, angles, coordinates, occupancies replaced by absurd values."""
    import re

    text = CIF_FIXTURES[name].decode("utf-8", "replace")
    spots = list(re.finditer(r"-?\d+\.\d+", text))
    chosen = {min(int(where * len(spots)), len(spots) - 1): value for where, value in picks}
    for index in sorted(chosen, reverse=True):
        text = text[: spots[index].start()] + chosen[index] + text[spots[index].end() :]
    path = work / name
    path.write_text(text, encoding="utf-8")
    within_bound(lambda: compute_peaks(path), CrystalError)
