"""Readers for "start, step + rows of counts" text formats.

RIET7/LHPM/ILL/PSI ``.dat``, Bruker UXD, Sietronics ``.cpi`` and Philips ``.udf``.

These files give the scan as a start angle and a step and then only the counts, so a missing or extra
number would shift every angle after it: each reader checks the count of numbers against what the header
announces and refuses a file where they disagree (a truncated file, an esd block of the wrong length).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from labeltune.core.xrd.pattern import Pattern, PatternReadError, make_pattern
from labeltune.core.xrd.readers_text import decode_text

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WAVELENGTH_WORD = re.compile(r"\b(?:lambda|wavelength|wave|lam)\s*[=:]?\s*(\d+\.\d+)", re.I)
_WAVELENGTH_UNIT = re.compile(r"(?<![\d.])(\d+\.\d+)\s*(?:A|Å|Ang|Angstroms?)\b")
NEUTRON_HINT = re.compile(
    r"\b(?:neutrons?|D1A|D1B|D2B|D20|D4C|HRPT|DMC|ECHIDNA|WOMBAT|POLARIS|HRPD|GEM|WISH|SPODI|POWGEN|"
    r"NOMAD|BT-?1|HB-?2A|VULCAN)\d*\b",
    re.I,
)
"""Words in a header that say the pattern was measured with neutrons (a neutron powder diffractometer)."""


def neutron_hint(lines: list[str]) -> str | None:
    """The header's word that names a neutron instrument (or "neutron"), else None."""
    for line in lines:
        found = NEUTRON_HINT.search(line)
        if found:
            return found.group()
    return None


def _leading_numbers(line: str) -> list[float]:
    """The numbers a line starts with (``2.948 0.050 162.898 18000000., sample=...`` → four)."""
    out: list[float] = []
    for token in line.replace(",", " ").split():
        if not _NUMBER.fullmatch(token):
            break
        out.append(float(token))
    return out


def _all_numbers(line: str) -> list[float] | None:
    tokens = line.split()
    if not tokens or not all(_NUMBER.fullmatch(t) for t in tokens):
        return None
    return [float(t) for t in tokens]


def find_start_step_end(lines: list[str]) -> int | None:
    """The index of the ``start step end`` line among the first six, or None (then it is not this format).

    As xylib does: the line starts with three numbers whose ``(end - start) / step + 1`` is a whole
    number of at least 4, and the next line holds a different count of numbers (else it is an xy table).
    """
    for index, line in enumerate(lines[:6]):
        numbers = _leading_numbers(line)
        if len(numbers) < 3 or index + 1 >= len(lines):
            continue
        start, step, end = numbers[:3]
        if step <= 0 or end <= start:
            continue
        count = (end - start) / step + 1
        if round(count) < 4 or abs(count - round(count)) > 1e-2:
            continue
        if len(_leading_numbers(lines[index + 1])) != len(numbers):
            return index
    return None


def header_wavelength(lines: list[str]) -> float | None:
    """A wavelength stated in a header: ``lambda= 1.494``, or a number with Å in a title (``1.9114 A``)."""
    for pattern in (_WAVELENGTH_WORD, _WAVELENGTH_UNIT):
        for line in lines:
            found = pattern.search(line)
            if found:
                return float(found.group(1))
    return None


def read_start_step_counts(path: Path, data: bytes) -> Pattern:
    """RIET7/LHPM/CSRIET ``.dat`` and ILL D1A / PSI HRPT-DMC files: a header, ``start step end``, counts.

    The counts follow in rows (any number per row); an esd block of the same length may follow them
    (ILL and PSI write one) and becomes ``Pattern.esd``. Text after the numbers is kept as metadata.
    Points at 2θ below zero (detector positions before the direct beam) are dropped with a warning.
    """
    name = path.name
    lines = decode_text(data, name).splitlines()
    at = find_start_step_end(lines)
    if at is None:
        raise PatternReadError(f"{name}: no 'start step end' line in the first six lines")
    start, step, end = _leading_numbers(lines[at])[:3]
    points = round((end - start) / step) + 1
    values: list[float] = []
    trailer: list[str] = []
    for number, line in enumerate(lines[at + 1 :], start=at + 2):
        if not line.strip():
            continue
        row = _all_numbers(line)
        if row is None or trailer:
            if row is not None:
                raise PatternReadError(
                    f"{name}: line {number} holds numbers after the text that ends the data"
                )
            trailer.append(line.strip())
            continue
        values.extend(row)
    if len(values) not in (points, 2 * points):
        raise PatternReadError(
            f"{name}: the header announces {points} points ({start:g} to {end:g} by {step:g}) but the file "
            f"holds {len(values)} numbers (truncated, or not counts then esds)"
        )
    counts = np.asarray(values[:points], dtype=np.float64)
    esd = np.asarray(values[points:], dtype=np.float64) if len(values) == 2 * points else None
    two_theta = start + step * np.arange(points, dtype=np.float64)
    two_theta[np.abs(two_theta) < 1e-6 * step] = 0.0
    notes: list[str] = []
    keep = two_theta >= 0
    if not np.all(keep):
        notes.append(
            f"{int(np.count_nonzero(~keep))} point(s) below 2θ = 0° (before the direct beam): dropped"
        )
    header = lines[:at]
    metadata = {"header": "\n".join(h.strip() for h in header), "start_step_end": lines[at].strip()}
    if trailer:
        metadata["trailer"] = "\n".join(trailer[:20])
    radiation = "unknown"
    hint = neutron_hint(header + trailer)
    if hint is not None:
        radiation = "neutron"
        metadata["radiation_from"] = f"the header names {hint!r}, a neutron diffractometer"
    return make_pattern(
        two_theta[keep], counts[keep], source=path, format="counts_dat", wavelength=header_wavelength(header),
        metadata=metadata, notes=notes, esd=None if esd is None else esd[keep], radiation=radiation,
    )  # fmt: skip


# --- Bruker / Siemens UXD ---------------------------------------------------------------------------


def is_uxd(data: bytes) -> bool:
    """Whether the first line that is not a ``;`` comment starts with ``_FILEVERSION``."""
    for raw in data[:4096].splitlines():
        line = raw.strip().lstrip(b"\xef\xbb\xbf")
        if line and not line.startswith(b";"):
            return line.upper().startswith(b"_FILEVERSION")
    return False


def read_uxd(path: Path, data: bytes) -> Pattern:
    """A Bruker/Siemens DIFFRAC ``.uxd`` text file: ``_KEY=value`` lines, ``_COUNTS`` or ``_2THETACOUNTS``.

    The first range is read (``_START``/``_STEPSIZE`` with ``_COUNTS``/``_CPS``, or 2θ-count pairs);
    ``_WL1``/``_WL2``/``_WLRATIO`` give the wavelengths and an ``_ANODE`` makes it X-ray data.
    """
    name = path.name
    keys: dict[str, str] = {}
    ranges = 0
    mode = ""
    x: list[float] = []
    y: list[float] = []
    for number, raw in enumerate(decode_text(data, name).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("_"):
            key, _, value = line[1:].partition("=")
            key = key.strip().upper()
            if key in ("COUNTS", "CPS", "2THETACOUNTS", "2THETACPS", "2THETACOUNTSTIME"):
                ranges += 1
                mode = key if ranges == 1 else ""
            elif key in ("D-I", "2THETA-I"):
                mode = ""  # a peak list, not the scan
            elif ranges == 0:
                keys[key] = value.strip().strip("'\"")
            continue
        if not mode:
            continue
        row = _all_numbers(line.replace(",", " "))
        if row is None:
            raise PatternReadError(f"{name}: line {number} is not numeric: {line[:60]!r}")
        if mode.startswith("2THETA"):
            if len(row) < 2:
                raise PatternReadError(f"{name}: line {number} has one column; expected 2θ and counts")
            x.append(row[0])
            y.append(row[1])
        else:
            y.extend(row)
    if ranges == 0:
        raise PatternReadError(f"{name}: no _COUNTS or _2THETACOUNTS data in the UXD file")
    metadata = {
        k: v for k, v in keys.items() if k in ("SAMPLE", "ANODE", "DATEMEASURED", "STEPTIME", "DRIVE")
    }
    notes = [f"the file holds {ranges} ranges: the first is read"] if ranges > 1 else []
    if not mode.startswith("2THETA"):
        start, step = _number(keys, "START", name), _number(keys, "STEPSIZE", name)
        stated = keys.get("STEPCOUNT")
        if stated is not None and stated.isdigit() and int(stated) != len(y):
            raise PatternReadError(f"{name}: _STEPCOUNT={stated} but {len(y)} counts follow (truncated?)")
        x = list(start + step * np.arange(len(y)))
    unit = keys.get("WL_UNIT", "A").upper()
    factor = {"A": 1.0, "NM": 10.0}.get(unit)
    if factor is None:
        raise PatternReadError(f"{name}: unknown wavelength unit _WL_UNIT={unit!r}")
    w1 = _optional(keys, "WL1")
    w2 = _optional(keys, "WL2")
    return make_pattern(
        x, y, source=path, format="uxd", wavelength=None if w1 is None else w1 * factor,
        wavelength2=None if w2 is None else w2 * factor, ka2_ratio=_optional(keys, "WLRATIO"),
        metadata=metadata, notes=notes, radiation="xray" if keys.get("ANODE") else "unknown",
    )  # fmt: skip


def _optional(keys: dict[str, str], key: str) -> float | None:
    try:
        return float(keys[key])
    except (KeyError, ValueError):
        return None


def _number(keys: dict[str, str], key: str, name: str) -> float:
    value = _optional(keys, key)
    if value is None:
        raise PatternReadError(f"{name}: the header has no numeric _{key}")
    return value


def _counted_scan(name: str, start: float, end: float, step: float, counts: list[float]) -> np.ndarray:
    """2θ of a start-end-step scan, refusing a count of points that does not fit the range."""
    if not (step > 0 and end > start):
        raise PatternReadError(f"{name}: implausible scan range {start:g} to {end:g} by {step:g}")
    points = round((end - start) / step) + 1
    if points != len(counts):
        raise PatternReadError(
            f"{name}: the scan {start:g} to {end:g} by {step:g} has {points} points but the file holds "
            f"{len(counts)} counts (truncated, or a wrong step)"
        )
    return start + step * np.arange(points, dtype=np.float64)


# --- Sietronics CPI, Philips UDF (experimental: generated files only) -------------------------------


def read_cpi(path: Path, data: bytes) -> Pattern:
    """A Sietronics ``.cpi`` file: start, end, step, anode, wavelength, ..., ``SCANDATA``, a count a line."""
    name = path.name
    lines = [line.strip() for line in decode_text(data, name).splitlines()]
    if not lines or not lines[0].upper().startswith("SIETRONICS XRD SCAN"):
        raise PatternReadError(f"{name}: not a Sietronics CPI file (first line)")
    if "SCANDATA" not in (line.upper() for line in lines) or len(lines) < 10:
        raise PatternReadError(f"{name}: no SCANDATA line in the CPI file")
    try:
        start, end, step = float(lines[1]), float(lines[2]), float(lines[3])
    except ValueError:
        raise PatternReadError(f"{name}: lines 2-4 must be the start, end and step of the scan") from None
    first = [line.upper() for line in lines].index("SCANDATA") + 1
    counts: list[float] = []
    for number, line in enumerate(lines[first:], start=first + 1):
        if not line:
            continue
        row = _all_numbers(line)
        if row is None or len(row) != 1:
            raise PatternReadError(f"{name}: line {number} is not one count: {line[:60]!r}")
        counts.extend(row)
    two_theta = _counted_scan(name, start, end, step, counts)
    anode = lines[4]
    try:
        wavelength: float | None = float(lines[5])
    except ValueError:
        wavelength = None
    metadata = {"anode": anode, "date": lines[6], "sample": lines[8] if len(lines) > 8 else ""}
    return make_pattern(
        two_theta, counts, source=path, format="cpi", wavelength=wavelength, metadata=metadata,
        radiation="xray" if anode else "unknown",
    )  # fmt: skip


def read_udf(path: Path, data: bytes) -> Pattern:
    """A Philips ``.udf`` file: ``Key, value,/`` lines, ``RawScan``, counts (commas) ending in ``/``."""
    name = path.name
    lines = decode_text(data, name).splitlines()
    keys: dict[str, str] = {}
    at = next((i for i, line in enumerate(lines) if line.strip() == "RawScan"), None)
    if at is None:
        raise PatternReadError(f"{name}: no RawScan line in the UDF file")
    for line in lines[:at]:
        key, _, value = line.partition(",")
        keys[key.strip()] = value.strip().rstrip("/").rstrip().rstrip(",")
    counts: list[float] = []
    closed = False
    for number, line in enumerate(lines[at + 1 :], start=at + 2):
        body, slash, _ = line.partition("/")
        row = _all_numbers(body.replace(",", " ")) if body.strip() else []
        if row is None:
            raise PatternReadError(f"{name}: line {number} is not a row of counts: {line[:60]!r}")
        counts.extend(row)
        if slash:
            closed = True
            break
    if not closed:
        raise PatternReadError(f"{name}: the counts do not end with '/' (truncated file?)")
    try:
        start, end = (float(v) for v in keys["DataAngleRange"].split(",")[:2])
        step = float(keys["ScanStepSize"])
    except (KeyError, ValueError):
        raise PatternReadError(f"{name}: no numeric DataAngleRange and ScanStepSize in the header") from None
    two_theta = _counted_scan(name, start, end, step, counts)
    w1 = next((_optional(keys, k) for k in keys if re.fullmatch(r"la?m?bda_?alpha_?1", k, re.I)), None)
    w2 = next((_optional(keys, k) for k in keys if re.fullmatch(r"la?m?bda_?alpha_?2", k, re.I)), None)
    anode = next((v for k, v in keys.items() if k.lower() == "anode"), "")
    metadata: dict[str, str] = {k: keys[k] for k in ("SampleIdent", "Title1", "Title2") if k in keys}
    if anode:
        metadata["anode"] = anode
    return make_pattern(
        two_theta, counts, source=path, format="udf", wavelength=w1, wavelength2=w2, metadata=metadata,
        radiation="xray" if anode else "unknown",
    )  # fmt: skip
