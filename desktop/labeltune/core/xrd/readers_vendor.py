"""Readers for vendor XRD formats: PANalytical ``.xrdml``, Rigaku ``.rasx`` and Bruker RAW v4 (binary)."""

from __future__ import annotations

import io
import re
import struct
import xml.etree.ElementTree as ET
import zipfile
import zlib
from pathlib import Path

import numpy as np

from labeltune.core.xrd.pattern import Pattern, PatternReadError, make_pattern
from labeltune.core.xrd.readers_text import decode_text, parse_columns

_UNSAFE_XML = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
MAX_ZIP_MEMBER_BYTES = 64 * 1024 * 1024
"""The most a .rasx member may inflate to (a profile of a million points is about 30 MB)."""


def parse_xml_safely(data: bytes, name: str) -> ET.Element:
    """Parse XML after refusing DOCTYPE/ENTITY declarations (no external entities, no entity bombs)."""
    text = decode_text(data, name)
    if _UNSAFE_XML.search(text):
        raise PatternReadError(f"{name}: the XML declares a DOCTYPE or ENTITY, which is refused for safety")
    # the text is already decoded: drop the declaration so its encoding= cannot contradict it
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text, count=1)
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise PatternReadError(f"{name}: broken or truncated XML ({exc})") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(element: ET.Element, local: str) -> ET.Element | None:
    return next((e for e in element.iter() if _local(e.tag) == local), None)


def _float_of(element: ET.Element | None) -> float | None:
    if element is None or element.text is None:
        return None
    try:
        return float(element.text.strip())
    except ValueError:
        return None


_ANGSTROM_UNITS = {"": 1.0, "angstrom": 1.0, "angstroms": 1.0, "a": 1.0, "å": 1.0, "nm": 10.0, "pm": 0.01}


def _wavelength_of(element: ET.Element | None, name: str, notes: list[str]) -> float | None:
    """A wavelength element's value in Å, by its ``unit`` attribute; an unknown unit is refused."""
    value = _float_of(element)
    if element is None or value is None:
        return None
    unit = element.get("unit", "").strip()
    factor = _ANGSTROM_UNITS.get(unit.lower())
    if factor is None:
        raise PatternReadError(f"{name}: the wavelength <{_local(element.tag)}> has an unknown unit {unit!r}")
    if factor != 1.0 and not notes:
        notes.append(f"the wavelength is stated in {unit}: {value:g} {unit} read as {value * factor:g} Å")
    return value * factor


def read_xrdml(path: Path, data: bytes) -> Pattern:
    """A PANalytical ``.xrdml`` file: counts (or intensities) against 2Theta, first scan only."""
    name = path.name
    root = parse_xml_safely(data, name)
    if _local(root.tag) != "xrdMeasurements":
        raise PatternReadError(f"{name}: not an XRDML file (root element <{_local(root.tag)}>)")
    points = [e for e in root.iter() if _local(e.tag) == "dataPoints"]
    if not points:
        raise PatternReadError(f"{name}: the XRDML file holds no <dataPoints>")
    block = points[0]
    values = _find(block, "counts")
    if values is None:
        values = _find(block, "intensities")
    if values is None or not (values.text or "").strip():
        raise PatternReadError(f"{name}: no <counts> or <intensities> in the first scan")
    try:
        y = np.array(values.text.split(), dtype=np.float64)  # type: ignore[union-attr]
    except ValueError:
        raise PatternReadError(
            f"{name}: the <{_local(values.tag)}> element holds non-numeric values"
        ) from None
    axis = next(
        (e for e in block if _local(e.tag) == "positions" and e.get("axis", "").lower() == "2theta"), None
    )
    if axis is None:
        raise PatternReadError(f"{name}: the scan has no 2Theta positions")
    listed = _find(axis, "listPositions")
    if listed is not None and (listed.text or "").strip():
        try:
            x = np.array(listed.text.split(), dtype=np.float64)  # type: ignore[union-attr]
        except ValueError:
            raise PatternReadError(f"{name}: <listPositions> holds non-numeric values") from None
    else:
        start, end = _float_of(_find(axis, "startPosition")), _float_of(_find(axis, "endPosition"))
        if start is None or end is None:
            raise PatternReadError(f"{name}: the 2Theta axis has no start/end positions")
        x = np.linspace(start, end, y.size) if y.size else np.empty(0)
    if x.size != y.size:
        raise PatternReadError(f"{name}: {x.size} 2Theta positions but {y.size} intensities")
    used = _find(root, "usedWavelength")
    metadata: dict[str, str] = {"unit": values.get("unit", "")}
    if used is not None and used.get("intended"):
        metadata["intended_wavelength"] = used.get("intended", "")
    sample = _find(root, "sample")
    if sample is not None and _find(sample, "id") is not None:
        metadata["sample_id"] = (_find(sample, "id").text or "").strip()  # type: ignore[union-attr]
    anode = _find(root, "anodeMaterial")
    if anode is not None and anode.text:
        metadata["anode"] = anode.text.strip()
    if len(points) > 1:
        metadata["scans_in_file"] = str(len(points))
    notes: list[str] = []
    return make_pattern(
        x,
        y,
        source=path,
        format="xrdml",
        wavelength=_wavelength_of(_find(used, "kAlpha1"), name, notes) if used is not None else None,
        wavelength2=_wavelength_of(_find(used, "kAlpha2"), name, notes) if used is not None else None,
        ka2_ratio=_float_of(_find(used, "ratioKAlpha2KAlpha1")) if used is not None else None,
        metadata=metadata,
        notes=notes,
        radiation="xray",
    )


def read_rasx(path: Path, data: bytes) -> Pattern:
    """A Rigaku ``.rasx`` zip: ``Data0/Profile0.txt`` (2θ, counts, attenuator) and the conditions XML."""
    name = path.name
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise PatternReadError(f"{name}: not a valid zip archive (.rasx)") from None
    with archive:
        infos = archive.infolist()
        unsafe = next((i.filename for i in infos if _unsafe_member_name(i.filename)), None)
        if unsafe is not None:
            raise PatternReadError(
                f"{name}: the archive holds a member with an unsafe path ({unsafe!r}); refused"
            )
        members = {info.filename.lower(): info for info in infos}
        profile = members.get("data0/profile0.txt") or next(
            (i for n, i in sorted(members.items()) if re.search(r"(^|/)profile\d*\.txt$", n)), None
        )
        if profile is None:
            raise PatternReadError(f"{name}: no Data0/Profile0.txt in the .rasx archive")
        conditions = members.get("data0/mesurementconditions0.xml") or members.get(
            "data0/measurementconditions0.xml"
        )
        try:
            text = decode_text(_read_member(archive, profile, name), name)
            xml = _read_member(archive, conditions, name) if conditions is not None else None
        except (
            zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError,
            NotImplementedError, zlib.error,
        ) as exc:  # fmt: skip
            raise PatternReadError(f"{name}: cannot read from the .rasx archive ({exc})") from None
    rows = [line for line in text.splitlines() if line.strip()]
    x, counts, _ = parse_columns("\n".join(rows), name)
    factors = _third_column(rows, counts.size)
    metadata: dict[str, str] = {}
    w1 = w2 = None
    if xml is not None:
        root = parse_xml_safely(xml, name)
        w1 = _float_of(_find(root, "WavelengthKalpha1"))
        w2 = _float_of(_find(root, "WavelengthKalpha2"))
        for key in ("TargetName", "SampleName", "ScanAxis"):
            found = _find(root, key)
            if found is not None and found.text:
                metadata[key] = found.text.strip()
    return make_pattern(
        x, counts * factors, source=path, format="rasx", wavelength=w1, wavelength2=w2, metadata=metadata,
        radiation="xray",
    )  # fmt: skip


def _unsafe_member_name(member: str) -> bool:
    """Whether a zip member name is absolute or climbs out of the archive (``../``, ``C:``)."""
    parts = member.replace("\\", "/").split("/")
    return member.startswith(("/", "\\")) or ".." in parts or bool(re.match(r"^[A-Za-z]:", member))


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """A member's bytes, never more than `MAX_ZIP_MEMBER_BYTES` inflated, whatever its header claims."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise PatternReadError(f"{name}: {info.filename} is compressed with an unsupported method")
    if info.file_size > MAX_ZIP_MEMBER_BYTES:
        raise PatternReadError(f"{name}: {info.filename} is implausibly large ({info.file_size} bytes)")
    with archive.open(info) as member:
        data = member.read(MAX_ZIP_MEMBER_BYTES + 1)
    if len(data) > MAX_ZIP_MEMBER_BYTES:
        raise PatternReadError(f"{name}: {info.filename} inflates to more than {MAX_ZIP_MEMBER_BYTES} bytes")
    return data


def _third_column(rows: list[str], size: int) -> np.ndarray:
    factors = np.ones(size, dtype=np.float64)
    numeric = [r.split() for r in rows if r.strip() and r.strip()[0] in "+-.0123456789"]
    if len(numeric) == size:
        for i, parts in enumerate(numeric):
            if len(parts) >= 3:
                try:
                    value = float(parts[2])
                except ValueError:
                    continue
                factors[i] = value if np.isfinite(value) else 1.0
    return factors


# --- Bruker RAW v4 -----------------------------------------------------------------------------
# After a 61-byte preamble the file is a chain of (uint32 kind, uint32 length) segments. Kind 30 holds
# the tube: float64 Kα average/Kα1/Kα2/Kβ at +72/+80/+88/+96 and the Kα2:Kα1 ratio at +104. Kind 0
# or 160 starts a range: a 160-byte header (scan type text at +32, float64 start 2θ at +72, float64
# step at +80, uint32 step count at +88, uint32 record size at +136, uint32 size of the records that
# follow the header at +140), then the step records, whose first float32 is the intensity.
_RAW4_PREAMBLE = 61
_RAW4_RANGE_HEADER = 160


def read_bruker_raw4(path: Path, data: bytes) -> Pattern:
    """A Bruker RAW v4 (``RAW4.00``) binary file; the first range is read."""
    name = path.name
    if not data.startswith(b"RAW4.00"):
        raise PatternReadError(f"{name}: not a Bruker RAW4.00 file")
    metadata: dict[str, str] = {"date": _c_string(data[8:20]), "time": _c_string(data[24:34])}
    w1 = w2 = ratio = None
    pos = _RAW4_PREAMBLE
    while True:
        if pos + 8 > len(data):
            raise PatternReadError(f"{name}: the RAW4 file ends before any data range (truncated?)")
        kind, length = struct.unpack_from("<II", data, pos)
        if kind in (0, 160):
            break
        if length < 8:
            raise PatternReadError(
                f"{name}: corrupt RAW4 segment (kind {kind}, length {length}) at byte {pos}"
            )
        if kind == 10 and length >= 44:  # a text property: key at +12, value at +36
            key = _c_string(data[pos + 12 : pos + 36])
            if key:
                metadata[key] = _c_string(data[pos + 36 : pos + length])
        elif kind == 30 and length >= 112:
            _avg, w1, w2, _beta, ratio = struct.unpack_from("<5d", data, pos + 72)
            anode = _c_string(data[pos + 116 : pos + 120]) if length >= 120 else ""
            if anode:
                metadata["anode"] = anode
        pos += length
    if pos + _RAW4_RANGE_HEADER > len(data):
        raise PatternReadError(f"{name}: the RAW4 range header is truncated")
    metadata["scan_type"] = _c_string(data[pos + 32 : pos + 56])
    start, step = struct.unpack_from("<dd", data, pos + 72)
    (steps,) = struct.unpack_from("<I", data, pos + 88)
    record, extra = struct.unpack_from("<II", data, pos + 136)
    first = pos + _RAW4_RANGE_HEADER + extra
    if record < 4 or steps == 0 or first + steps * record > len(data):
        raise PatternReadError(
            f"{name}: the RAW4 range announces {steps} steps of {record} bytes, more than the file holds"
        )
    if not (np.isfinite(start) and np.isfinite(step) and step > 0):
        raise PatternReadError(f"{name}: implausible RAW4 scan start {start!r} / step {step!r}")
    records = np.frombuffer(data, dtype=np.uint8, count=steps * record, offset=first).reshape(steps, record)
    with np.errstate(invalid="ignore"):  # a NaN in the file is refused by make_pattern, not warned about
        intensity = records[:, :4].copy().view("<f4").reshape(-1).astype(np.float64)
    two_theta = start + step * np.arange(steps, dtype=np.float64)
    metadata["start_2theta"] = f"{start:g}"
    metadata["step_2theta"] = f"{step:g}"
    return make_pattern(
        two_theta, intensity, source=path, format="bruker_raw4", wavelength=w1, wavelength2=w2,
        ka2_ratio=ratio, metadata=metadata, radiation="xray",
    )  # fmt: skip


def _c_string(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()
