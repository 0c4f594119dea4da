"""Writers of generated files in the formats labs export, from known angles and counts (for reader tests).

Each writer follows the published layout of its format (xylib's readers, the GSAS manual, Bruker's XCH
appendix A) independently of the reader under test: a test reads the file back and compares with the
numbers written here.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np

XYLIB = Path("/work/shared/data/xrd/formats/xylib")


def scan(points: int = 300, start: float = 10.0, step: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """2θ and whole-number counts with two peaks (20° and 21°) on a flat background."""
    x = start + step * np.arange(points)
    y = 120 + 2000 * np.exp(-(((x - 20.0) / 0.2) ** 2)) + 700 * np.exp(-(((x - 21.0) / 0.3) ** 2))
    return x, np.round(y)


def write_riet7(
    path: Path, start: float, step: float, counts: np.ndarray, esd: np.ndarray | None = None,
    title: str = "Rietica LHPM data  lambda=1.5406", per_row: int = 8, end: float | None = None,
) -> Path:  # fmt: skip
    """A RIET7/LHPM ``.dat``: a title, ``start step end``, counts ``per_row`` a line, then esds if given."""
    last = end if end is not None else start + step * (counts.size - 1)
    lines = [title, f"  {start:.4f}  {step:.4f}  {last:.4f}"]
    for block in (counts, esd) if esd is not None else (counts,):
        for i in range(0, block.size, per_row):
            lines.append("".join(f"{v:9.2f}" for v in block[i : i + per_row]))
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def write_uxd(path: Path, start: float, step: float, counts: np.ndarray, pairs: bool = False) -> Path:
    """A Bruker UXD file: header keys, one range, ``_COUNTS`` (8 a line) or ``_2THETACOUNTS`` pairs."""
    lines = [
        "; generated", "_FILEVERSION=1", "_SAMPLE='gen'", "_WL1=1.540600", "_WL2=1.544390",
        "_WLRATIO=0.500000", "_ANODE='Cu'", "; range 1", "_DRIVE='COUPLED'", f"_STEPSIZE={step:.6f}",
        f"_START={start:.6f}", f"_STEPCOUNT={counts.size}",
    ]  # fmt: skip
    if pairs:
        lines.append("_2THETACOUNTS")
        lines += [f"{start + step * i:.4f}\t{c:.0f}" for i, c in enumerate(counts)]
    else:
        lines.append("_COUNTS")
        lines += ["".join(f"{c:10.0f}" for c in counts[i : i + 8]) for i in range(0, counts.size, 8)]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def raw_v3_bytes(start: float, step: float, counts: np.ndarray, ranges: int = 1, extra: int = 0) -> bytes:
    """A Bruker RAW1.01 file: 712-byte header, ``ranges`` copies of a 304-byte range header + float32."""
    head = bytearray(712)
    head[0:8] = b"RAW1.01\x00"
    struct.pack_into("<II", head, 8, 1, ranges)
    head[16:26] = b"01/02/03\x00\x00"
    head[326:330] = b"GEN1"
    head[608:610] = b"Cu"
    struct.pack_into("<5d", head, 616, 1.54184, 1.5406, 1.54439, 1.39222, 0.5)
    out = bytes(head)
    for r in range(ranges):
        rng = bytearray(304)
        struct.pack_into("<II", rng, 0, 304, counts.size)
        struct.pack_into("<dd", rng, 8, (start + r) / 2, start + r)
        struct.pack_into("<d", rng, 176, step)
        struct.pack_into("<d", rng, 240, 1.5406)
        struct.pack_into("<I", rng, 256, extra)
        out += bytes(rng) + b"\x7f" * extra + counts.astype("<f4").tobytes()
    return out


def raw_v1_bytes(start: float, step: float, counts: np.ndarray) -> bytes:
    """An early DIFFRAC-AT ``RAW `` file (xylib's version 1 layout), one range."""
    head = b"RAW " + struct.pack("<IffI", counts.size, 1.0, step, 0) + b"\x00" * 4
    head += struct.pack("<ffff", start, start / 2, -1e6, -1e6) + b"gen-v1".ljust(32, b"\x00")
    head += struct.pack("<ff", 1.5406, 1.54439) + b"\x00" * 72 + struct.pack("<I", 0)
    assert len(head) == 156
    return head + counts.astype("<f4").tobytes()


def raw_v2_bytes(start: float, step: float, counts: np.ndarray) -> bytes:
    """A DIFFRAC-AT ``RAW2`` file (xylib's version 2 layout), one range with a 56-byte header."""
    head = bytearray(256)
    head[0:4] = b"RAW2"
    struct.pack_into("<H", head, 4, 1)
    head[168:178] = b"2003-01-02"
    head[188:190] = b"Cu"
    struct.pack_into("<fff", head, 190, 1.5406, 1.54439, 0.5)
    rng = bytearray(56)
    struct.pack_into("<HH", rng, 0, 56, counts.size)
    struct.pack_into("<fff", rng, 8, 1.0, step, start)
    return bytes(head) + bytes(rng) + counts.astype("<f4").tobytes()


def rd_bytes(start: float, step: float, packed: np.ndarray, version: bytes = b"V3") -> bytes:
    """A Philips PC-APD ``.rd`` (V3RD: data from byte 250; V5RD: from 810); ``packed`` = √(100·counts)."""
    size = 250 if version == b"V3" else 810
    head = bytearray(size)
    head[0:4] = version + b"RD"
    head[84:87] = bytes([5, 0, 2])  # X'Pert MPD, Cu anode, long fine focus
    head[146:152] = b"gen-rd"
    end = start + step * (packed.size - 1)
    struct.pack_into("<3d", head, 214, step, start, end)
    return bytes(head) + packed.astype("<u2").tobytes()


def write_gsas(path: Path, start: float, step: float, counts: np.ndarray, kind: str = "STD") -> Path:
    """A GSAS raw file: title, BANK line (CONST, centidegrees), records of ``kind`` (STD, ESD or FXYE)."""
    n = counts.size
    esd = np.sqrt(counts)
    if kind == "STD":
        fields = [f"{'':2}{c:6.0f}" for c in counts]
        rows = ["".join(fields[i : i + 10]) for i in range(0, n, 10)]
    elif kind == "ESD":
        fields = [f"{c:8.1f}{e:8.2f}" for c, e in zip(counts, esd, strict=True)]
        rows = ["".join(fields[i : i + 5]) for i in range(0, n, 5)]
    else:
        rows = [
            f"{(start + step * i) * 100:12.4f}{c:12.2f}{e:12.4f}"
            for i, (c, e) in enumerate(zip(counts, esd, strict=True))
        ]
    bank = f"BANK 1 {n} {len(rows)} CONST {start * 100:.3f} {step * 100:.3f} 0 0 {kind}"
    lines = ["generated GSAS data".ljust(80), "Instrument parameter      gen.prm", bank.ljust(80)]
    path.write_text("\n".join(lines + [r.ljust(80) for r in rows]) + "\n", encoding="ascii")
    return path


def write_cpi(path: Path, start: float, step: float, counts: np.ndarray, end: float | None = None) -> Path:
    """A Sietronics ``.cpi``: start, end, step, anode, wavelength, date, step time, sample, SCANDATA."""
    last = end if end is not None else start + step * (counts.size - 1)
    head = ["SIETRONICS XRD SCAN", f"{start:.2f}", f"{last:.2f}", f"{step:.3f}", "Cu", "1.54056"]
    head += ["1-1-1900", "0.600", "generated sample", "SCANDATA"]
    path.write_text("\n".join(head + [f"{c:.0f}" for c in counts]) + "\n", encoding="ascii")
    return path


def write_udf(
    path: Path, start: float, step: float, counts: np.ndarray, close: bool = True, end: float | None = None
) -> Path:
    """A Philips ``.udf``: ``Key, value,/`` header, ``RawScan``, counts 8 a line, a final ``/``."""
    end = end if end is not None else start + step * (counts.size - 1)
    head = [
        "SampleIdent,gen ,/", "Title1,generated ,/", "Anode,Cu,/", "LabdaAlpha1,  1.54060,/",
        "LabdaAlpha2,  1.54439,/", f"DataAngleRange, {start:8.4f}, {end:8.4f},/",
        f"ScanStepSize, {step:8.3f},/",
        "RawScan",
    ]  # fmt: skip
    rows = [",".join(f"{c:8.0f}" for c in counts[i : i + 8]) for i in range(0, counts.size, 8)]
    text = "\n".join(head + [r + "," for r in rows[:-1]] + [rows[-1] + ("/" if close else "")])
    path.write_text(text + "\n", encoding="ascii")
    return path


def brml_bytes(two_theta: np.ndarray, counts: np.ndarray, points: int | None = None) -> bytes:
    """A Bruker ``.brml`` zip: Experiment0/RawData0.xml with DataViews and one ``<Datum>`` a step."""
    datums = "\n".join(
        f"<Datum>0.5,1,{x:.4f},{x / 2:.4f},{c:.0f}</Datum>" for x, c in zip(two_theta, counts, strict=True)
    )
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<RawData xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <FixedInformation><Instrument><Tube><WaveLengthAlpha1 Value="1.5406" Unit="Angstrom"/>
  <WaveLengthAlpha2 Value="1.54439" Unit="Angstrom"/><WaveLengthRatio Value="0.5"/></Tube></Instrument>
 </FixedInformation>
 <DataRoutes><DataRoute>
  <ScanInformation ScanName="Coupled TwoTheta/Theta">
   <MeasurementPoints>{points or counts.size}</MeasurementPoints>
  </ScanInformation>
  <DataViews>
   <RawDataView xsi:type="RecordedRawDataView" Start="0" Length="1" LogicName="MeasuredTime"/>
   <RawDataView xsi:type="RecordedRawDataView" Start="1" Length="1" LogicName="AbsorptionFactor"/>
   <RawDataView xsi:type="VaryingRawDataView" Start="2" Length="2"><Varying>
     <FieldDefinitions TwoTheta="Axis"/><FieldDefinitions Theta="Axis"/></Varying></RawDataView>
   <RawDataView xsi:type="RecordedRawDataView" Start="4" Length="1"><Recording LogicName="ScanCounter"/>
   </RawDataView>
  </DataViews>
{datums}
 </DataRoute></DataRoutes>
</RawData>
"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("experimentCollection.xml", "<ExperimentCollection/>")
        archive.writestr("Experiment0/RawData0.xml", xml)
    return buffer.getvalue()
