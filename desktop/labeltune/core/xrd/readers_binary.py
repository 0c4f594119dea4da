"""Binary and zipped vendor formats: Bruker RAW v1/v2/v3, Philips ``.rd`` and Bruker ``.brml``.

Bruker RAW "RAW ", "RAW2" and "RAW1.01", Philips V3RD/V5RD, and ``.brml`` (a zip of XML).

Layouts follow the public descriptions in xylib (``bruker_raw.cpp``, ``philips_raw.cpp``, after Bruker's
DIFFRAC XCH manual, appendix A). RAW1.01 is checked on real files (BT86, Cu3Au, format1); the others on
generated files only, so they are experimental (ADR 0045). Every offset is checked against the file's
length: a truncated file is refused, never read short.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np

from labeltune.core.xrd.pattern import Pattern, PatternReadError, make_pattern
from labeltune.core.xrd.readers_vendor import (
    _find,
    _local,
    _read_member,
    _unsafe_member_name,
    parse_xml_safely,
)


def _c_string(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def _floats(data: bytes, offset: int, count: int, name: str, what: str) -> np.ndarray:
    if offset + 4 * count > len(data):
        raise PatternReadError(
            f"{name}: the {what} announces {count} counts, more than the file holds (truncated?)"
        )
    return np.frombuffer(data, dtype="<f4", count=count, offset=offset).astype(np.float64)


def _range_note(ranges: int) -> list[str]:
    return [f"the file holds {ranges} ranges (scans): the first is read"] if ranges > 1 else []


# --- Bruker RAW1.01 (DIFFRAC-plus, "version 3" in xylib) --------------------------------------------
_V3_HEADER = 712
_V3_RANGE = 304


def read_bruker_raw_v3(path: Path, data: bytes) -> Pattern:
    """A Bruker DIFFRAC-plus ``RAW1.01`` file: a 712-byte header, then 304-byte range headers + float32."""
    name = path.name
    if len(data) < _V3_HEADER + _V3_RANGE:
        raise PatternReadError(f"{name}: {len(data)} bytes is too short for a RAW1.01 file (truncated?)")
    (ranges,) = struct.unpack_from("<I", data, 12)
    if not 1 <= ranges <= 10_000:
        raise PatternReadError(f"{name}: the RAW1.01 header announces {ranges} ranges")
    metadata = {
        "date": _c_string(data[16:26]), "time": _c_string(data[26:36]), "user": _c_string(data[36:108]),
        "sample_id": _c_string(data[326:386]), "anode": _c_string(data[608:612]),
    }  # fmt: skip
    _avg, w1, w2, _beta, ratio = struct.unpack_from("<5d", data, 616)
    pos = _V3_HEADER
    first: tuple[int, float, float, int] | None = None
    for index in range(ranges):  # walk every range so a truncated later one is noticed too
        if pos + _V3_RANGE > len(data):
            raise PatternReadError(f"{name}: range {index + 1} of {ranges} is missing (truncated file)")
        length, steps = struct.unpack_from("<II", data, pos)
        if length != _V3_RANGE:
            raise PatternReadError(f"{name}: range {index + 1} header is {length} bytes, not 304 (corrupt)")
        (start,) = struct.unpack_from("<d", data, pos + 16)
        (step,) = struct.unpack_from("<d", data, pos + 176)
        (extra,) = struct.unpack_from("<I", data, pos + 256)
        begin = pos + _V3_RANGE + extra
        if begin + 4 * steps > len(data):
            raise PatternReadError(
                f"{name}: range {index + 1} announces {steps} counts, more than the file holds (truncated?)"
            )
        if first is None:
            first = (begin, start, step, steps)
        pos = begin + 4 * steps
    assert first is not None
    begin, start, step, steps = first
    if not (np.isfinite(start) and np.isfinite(step) and step > 0):
        raise PatternReadError(f"{name}: implausible RAW1.01 scan start {start!r} / step {step!r}")
    notes = _range_note(ranges)
    if pos != len(data):
        notes.append(f"{len(data) - pos} bytes after the last range are not read")
    metadata.update(start_2theta=f"{start:g}", step_2theta=f"{step:g}")
    two_theta = start + step * np.arange(steps, dtype=np.float64)
    return make_pattern(
        two_theta, _floats(data, begin, steps, name, "range"), source=path, format="bruker_raw3",
        wavelength=w1, wavelength2=w2, ka2_ratio=ratio, metadata=metadata, notes=notes, radiation="xray",
    )  # fmt: skip


# --- Bruker RAW v1 ("RAW ") and v2 ("RAW2"): experimental -------------------------------------------
_V1_HEADER = 156  # "RAW " + steps ... + following-range flag, before the counts


def read_bruker_raw_v1(path: Path, data: bytes) -> Pattern:
    """An early DIFFRAC-AT ``RAW `` file: steps, float32 step/start, Kα1/Kα2, then float32 counts."""
    name = path.name
    if len(data) < _V1_HEADER:
        raise PatternReadError(f"{name}: {len(data)} bytes is too short for a Bruker RAW v1 file")
    (steps,) = struct.unpack_from("<I", data, 4)
    _time, step = struct.unpack_from("<ff", data, 8)
    (start,) = struct.unpack_from("<f", data, 24)
    sample = _c_string(data[40:72])
    w1, w2 = struct.unpack_from("<ff", data, 72)
    (following,) = struct.unpack_from("<I", data, 152)
    counts = _floats(data, _V1_HEADER, steps, name, "RAW v1 header")
    if not (np.isfinite(start) and np.isfinite(step) and step > 0):
        raise PatternReadError(f"{name}: implausible RAW v1 scan start {start!r} / step {step!r}")
    notes = _range_note(2) if following else []
    return make_pattern(
        float(start) + float(step) * np.arange(steps, dtype=np.float64), counts, source=path,
        format="bruker_raw1", wavelength=float(w1) or None, wavelength2=float(w2) or None,
        metadata={"sample": sample}, notes=notes, radiation="xray",
    )  # fmt: skip


def read_bruker_raw_v2(path: Path, data: bytes) -> Pattern:
    """A DIFFRAC-AT ``RAW2`` file: a 256-byte header (anode, λ1, λ2, ratio), ranges of 48+ bytes + float32."""
    name = path.name
    if len(data) < 256 + 48:
        raise PatternReadError(f"{name}: {len(data)} bytes is too short for a Bruker RAW2 file")
    (ranges,) = struct.unpack_from("<H", data, 4)
    w1, w2, ratio = struct.unpack_from("<fff", data, 190)
    header, steps = struct.unpack_from("<HH", data, 256)
    if header <= 48:
        raise PatternReadError(f"{name}: the RAW2 range header length {header} is implausible (corrupt)")
    step, start = struct.unpack_from("<ff", data, 256 + 12)
    counts = _floats(data, 256 + header, steps, name, "RAW2 range")
    if not (np.isfinite(start) and np.isfinite(step) and step > 0):
        raise PatternReadError(f"{name}: implausible RAW2 scan start {start!r} / step {step!r}")
    return make_pattern(
        float(start) + float(step) * np.arange(steps, dtype=np.float64), counts, source=path,
        format="bruker_raw2", wavelength=float(w1) or None, wavelength2=float(w2) or None,
        ka2_ratio=float(ratio),
        metadata={"anode": _c_string(data[188:190]), "date": _c_string(data[168:188])},
        notes=_range_note(ranges), radiation="xray",
    )  # fmt: skip


# --- Philips PC-APD .rd (V3RD / V5RD): experimental -------------------------------------------------
_RD_ANODES = ("Cu", "Mo", "Fe", "Cr", "Other")


def read_philips_rd(path: Path, data: bytes) -> Pattern:
    """A Philips ``.rd`` raw scan: float64 step/start/end at byte 214, uint16 √(100·counts) from 250.

    V5RD files hold their counts from byte 810.

    The file names the anode but not the wavelength, which therefore stays unknown (set it in the project).
    """
    name = path.name
    if len(data) < 250:
        raise PatternReadError(f"{name}: {len(data)} bytes is too short for a Philips RD file")
    step, start, end = struct.unpack_from("<3d", data, 214)
    if not (np.isfinite(step) and step > 0 and np.isfinite(start) and np.isfinite(end) and end > start):
        raise PatternReadError(f"{name}: implausible scan {start!r} to {end!r} by {step!r}")
    points = round((end - start) / step) + 1
    offset = 250 if data.startswith(b"V3") else 810
    if offset + 2 * points > len(data):
        raise PatternReadError(
            f"{name}: the scan {start:g} to {end:g} by {step:g} needs {points} counts, more than the file "
            "holds"
        )
    packed = np.frombuffer(data, dtype="<u2", count=points, offset=offset).astype(np.float64)
    anode = data[85] if data[85] < len(_RD_ANODES) else None
    metadata = {"sample": _c_string(data[146:166]), "anode": _RD_ANODES[anode] if anode is not None else ""}
    if offset + 2 * points != len(data):
        metadata["trailing_bytes"] = str(len(data) - offset - 2 * points)
    return make_pattern(
        start + step * np.arange(points, dtype=np.float64), packed * packed / 100.0, source=path,
        format="philips_rd", metadata=metadata, radiation="xray",
    )  # fmt: skip


# --- Bruker .brml (zip of XML): experimental --------------------------------------------------------


def read_brml(path: Path, data: bytes) -> Pattern:
    """A Bruker DIFFRAC.SUITE ``.brml`` zip: ``Experiment0/RawData0.xml``, its first ``DataRoute``.

    Each ``<Datum>`` is a comma-separated record; the 2θ column is the ``VaryingRawDataView`` field named
    TwoTheta, the counts the ``RecordedRawDataView`` whose recording is ``ScanCounter`` (else the last
    value). The tube's ``WaveLengthAlpha1``/``Alpha2`` (Å) give the wavelength.
    """
    name = path.name
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise PatternReadError(f"{name}: not a valid zip archive (.brml)") from None
    with archive:
        infos = archive.infolist()
        if any(_unsafe_member_name(i.filename) for i in infos):
            raise PatternReadError(f"{name}: the archive holds a member with an unsafe path; refused")
        raws = sorted(
            (i for i in infos if _local_name(i.filename).startswith("rawdata")),
            key=lambda i: i.filename.lower(),
        )
        if not raws:
            raise PatternReadError(f"{name}: no Experiment0/RawData0.xml in the .brml archive")
        try:
            xml = _read_member(archive, raws[0], name)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
            raise PatternReadError(f"{name}: cannot read from the .brml archive ({exc})") from None
    root = parse_xml_safely(xml, name)
    route = _find(root, "DataRoute")
    if route is None:
        raise PatternReadError(f"{name}: RawData0.xml holds no <DataRoute>")
    records = [(d.text or "").split(",") for d in route.iter() if _local(d.tag) == "Datum"]
    if not records:
        raise PatternReadError(f"{name}: the data route holds no <Datum> records")
    x_col, y_col = _brml_columns(route)
    try:
        table = np.array([[float(v) for v in r] for r in records], dtype=np.float64)
    except ValueError:
        raise PatternReadError(
            f"{name}: a <Datum> record is not all numbers (or records differ in length)"
        ) from None
    if table.ndim != 2 or x_col is None or x_col >= table.shape[1] or y_col >= table.shape[1]:
        raise PatternReadError(f"{name}: no TwoTheta column among the <Datum> records")
    stated = _find(route, "MeasurementPoints")
    if stated is not None and (stated.text or "").strip().isdigit() and int(stated.text or 0) != len(records):
        raise PatternReadError(f"{name}: {stated.text} points announced but {len(records)} <Datum> records")
    tube = {_local(e.tag): e.get("Value", "") for e in root.iter() if _local(e.tag).startswith("WaveLength")}
    metadata = {
        "rawdata": raws[0].filename,
        "data_routes": str(sum(1 for e in root.iter() if _local(e.tag) == "DataRoute")),
    }
    return make_pattern(
        table[:, x_col], table[:, y_col], source=path, format="brml",
        wavelength=_float(tube.get("WaveLengthAlpha1")),
        wavelength2=_float(tube.get("WaveLengthAlpha2")), ka2_ratio=_float(tube.get("WaveLengthRatio")),
        metadata=metadata, radiation="xray",
    )  # fmt: skip


def _local_name(member: str) -> str:
    return member.replace("\\", "/").rsplit("/", 1)[-1].lower()


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _brml_columns(route: object) -> tuple[int | None, int]:
    """The Datum columns of 2θ and the counts, from the route's ``RawDataView`` descriptions."""
    x_col: int | None = None
    y_col = -1
    for view in (e for e in route.iter() if _local(e.tag) == "RawDataView"):  # type: ignore[attr-defined]
        start = int(view.get("Start", "0"))
        kind = next((v for k, v in view.attrib.items() if _local(k) == "type"), "")
        if kind == "VaryingRawDataView":
            fields = [e for e in view.iter() if _local(e.tag) == "FieldDefinitions"]
            for i, field in enumerate(fields):
                if "TwoTheta" in field.attrib or field.get("FieldName") == "TwoTheta":
                    x_col = start + i
        elif kind == "RecordedRawDataView":
            recording = _find(view, "Recording")
            if recording is not None and recording.get("LogicName") == "ScanCounter":
                y_col = start
    return x_col, y_col
