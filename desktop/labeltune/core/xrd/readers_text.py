"""Readers for text XRD formats: two/three-column text (xy, xye, csv...), RRUFF, Rigaku RAS."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from labeltune.core.xrd.pattern import Pattern, PatternReadError, make_pattern

COMMENT_PREFIXES = ("#", ";", "!", "//")
_SPLIT = re.compile(r"[\s,;]+")
_MAX_HEADER_LINES = 200  # header lines kept in metadata (the rest are still skipped)


def decode_text(data: bytes, name: str) -> str:
    """Decode a text file (UTF-8, UTF-16 with a BOM, else Latin-1); refuse binary content."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise PatternReadError(f"{name}: not valid UTF-16 text") from None
    if b"\x00" in data[:65536]:
        raise PatternReadError(f"{name}: binary content, not a text pattern (unknown format)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _numbers(line: str) -> list[float] | None:
    """The numbers on a data line, or None when it is not all numbers."""
    tokens = [t for t in _SPLIT.split(line.strip()) if t]
    if not tokens:
        return None
    try:
        return [float(t) for t in tokens]
    except (ValueError, OverflowError):
        return None


_DECIMAL_COMMA = re.compile(r"[-+]?\d+,\d+(?:[eE][-+]?\d+)?")
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:,\d*)?|,\d+)(?:[eE][-+]?\d+)?")
_DECIMAL_COMMA_SPLIT = re.compile(r"[\s;]+")
_WORDS = re.compile(r"[A-DF-Za-df-z]")


def uses_decimal_commas(lines: list[str]) -> bool:
    """Whether data lines write numbers with a decimal comma (``10,25 1234,5``), as European locales do.

    Only when it cannot be a comma-separated table: no ``.`` in the data, at least two numbers per line
    separated by blanks, tabs or semicolons, and a comma inside a number (``10,100`` alone stays CSV).
    """
    seen = False
    for raw in lines[:200]:
        line = raw.strip()
        if not line or line.startswith(COMMENT_PREFIXES) or _WORDS.search(line):
            continue  # a comment or a header line ("2Theta;Counts")
        if "." in line:
            return False
        tokens = [t for t in _DECIMAL_COMMA_SPLIT.split(line) if t]
        if len(tokens) < 2 or not all(_PLAIN_NUMBER.fullmatch(t) for t in tokens):
            return False
        seen = seen or any(_DECIMAL_COMMA.fullmatch(t) for t in tokens)
    return seen


def parse_columns(text: str, name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Parse angle/intensity columns; return 2θ, intensity and the header/comment lines.

    Blank lines and lines starting with ``#``, ``;``, ``!`` or ``//`` are comments; lines of words
    before the data are a header. A third column (an esd) or more are ignored here.
    """
    x, y, _third, header, _notes = parse_table(text, name)
    return x, y, header


def parse_table(
    text: str, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str], list[str]]:
    """`parse_columns` plus the third column (None unless every row has one) and notes (decimal commas)."""
    xs: list[float] = []
    ys: list[float] = []
    third: list[float] | None = []
    header: list[str] = []
    lines = text.splitlines()
    commas = uses_decimal_commas(lines)
    notes = ["numbers are written with decimal commas: read as decimal points"] if commas else []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(COMMENT_PREFIXES):
            if len(header) < _MAX_HEADER_LINES:
                header.append(line)
            continue
        values = _numbers(line.replace(",", ".").replace(";", " ") if commas else line)
        if values is None:
            if not xs:  # a header line before the data
                if len(header) < _MAX_HEADER_LINES:
                    header.append(line)
                continue
            raise PatternReadError(f"{name}: line {number} is not numeric: {_clip(line)!r}")
        if len(values) < 2:
            raise PatternReadError(f"{name}: line {number} has one column; expected 2θ and intensity columns")
        if not (math.isfinite(values[0]) and math.isfinite(values[1])):
            raise PatternReadError(f"{name}: line {number} holds NaN or infinite values")
        xs.append(values[0])
        ys.append(values[1])
        if third is not None:
            if len(values) >= 3:
                third.append(values[2])
            else:
                third = None
    if not xs:
        raise PatternReadError(f"{name}: no numeric data found (empty or not a 2θ/intensity table)")
    column = np.asarray(third, dtype=np.float64) if third else None
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64), column, header, notes


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


_UNIT_FACTORS = {"nm": 10.0, "pm": 0.01}  # to Å


def _wavelength_in(metadata: dict[str, str]) -> tuple[float | None, list[str]]:
    """The wavelength a header states, in Å (a value given in nm or pm is converted, with a note)."""
    for key, value in metadata.items():
        if "WAVELENGTH" in key.upper().replace(" ", "").replace("_", ""):
            match = re.search(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", value)
            if match:
                number = float(match.group())
                unit = re.match(r"\s*\(?\s*([a-zA-Z]+)", value[match.end() :])
                factor = _UNIT_FACTORS.get(unit.group(1).lower()) if unit else None
                if unit and factor is not None:
                    angstrom = number * factor
                    return angstrom, [
                        f"the wavelength is stated as {number:g} {unit.group(1)}: read as {angstrom:g} Å"
                    ]
                return number, []
    return None, []


_D_FIRST = re.compile(r"(d[-_ ]?spacings?|d[-_ ]?values?|d)\s*([\[(][^\])]*[\])])?(\s|,|;|$)", re.I)
_Q_FIRST = re.compile(r"q\s*([\[(][^\])]*[\])])?(\s|,|;|$)", re.I)
_RADIANS = math.pi
"""A first column that never exceeds π (and spans over 20°'s worth) holds radians, not degrees."""


def check_angle_unit(x: np.ndarray, header: list[str], name: str) -> None:
    """Refuse a first column that holds d-spacings, Q or radians instead of 2θ in degrees.

    ``x`` is in file order. d-spacings: a header line starts with d, or the values stay below 20 and either
    descend or step unevenly (d of an even 2θ scan does). Radians: no value above π, a span over
    0.35 (20°) and even steps. A Rietveld user expects 2θ in degrees as measured, so nothing is
    converted by guess: the message says what the column looks like and what to export (ADR 0038).
    """
    advice = "export 2θ in degrees"
    for line in header:  # a column header that starts with d or Q ("d-spacing (Å)  I", "Q(1/Å),I")
        first = line.lstrip("#;!/ \t")
        if _D_FIRST.match(first):
            raise PatternReadError(f"{name}: the header says the first column is d-spacing, not 2θ; {advice}")
        if _Q_FIRST.match(first):
            raise PatternReadError(
                f"{name}: the header says the first column is Q (scattering vector), not 2θ; {advice}"
            )
    if x.size < 3:
        return
    steps = np.abs(np.diff(x))
    steps = steps[steps > 0]
    if steps.size < 2:
        return
    low, high = float(x.min()), float(x.max())
    uneven = float(np.percentile(steps, 90)) > 3 * float(np.percentile(steps, 10))
    if high <= 20 and (bool(np.all(np.diff(x) < 0)) or uneven):
        where = f"from {x[0]:g} down to {x[-1]:g}" if x[0] > x[-1] else f"from {low:g} to {high:g} unevenly"
        raise PatternReadError(
            f"{name}: the first column runs {where}: these look like d-spacings (Å), not 2θ; {advice}"
        )
    if high <= _RADIANS and high - low >= 0.35 and not uneven:
        raise PatternReadError(
            f"{name}: 2θ runs from {low:g} to {high:g}: these look like radians, not degrees; {advice}"
        )


_ESD_WORDS = re.compile(r"\b(esd|e\.s\.d|sigma|sig|std|stdev|error|err|uncertainty|dy|dI)\b", re.I)


def read_xy(path: Path, data: bytes) -> Pattern:
    """Two/three-column text: ``.xy``, ``.xye``, ``.txt``, ``.dat``, ``.csv``; the wavelength is unknown.

    A third column is kept as the esd (``Pattern.esd``) when the file is ``.xye``, a header names it
    (esd, sigma, error...) or it follows counting statistics (about √I); otherwise it is ignored.
    """
    x, y, third, header, notes = parse_table(decode_text(data, path.name), path.name)
    check_angle_unit(x, header, path.name)
    metadata = {"header": "\n".join(header)} if header else {}
    esd = third if third is not None and _is_esd(third, y, path, header) else None
    if third is not None and esd is None:
        metadata["ignored_columns"] = "the third column is not read as an esd"
    return make_pattern(x, y, source=path, format="xy", metadata=metadata, notes=notes, esd=esd)


def _is_esd(third: np.ndarray, y: np.ndarray, path: Path, header: list[str]) -> bool:
    if path.suffix.lower() == ".xye" or any(_ESD_WORDS.search(line) for line in header[-3:]):
        return True  # a negative one is then refused by make_pattern, never dropped
    counted = (y > 0) & (third > 0)
    if np.any(third < 0) or np.count_nonzero(counted) < 0.9 * y.size:
        return False
    ratio = float(np.median(third[counted] / np.sqrt(y[counted])))
    return 0.5 <= ratio <= 2.0


def read_rruff(path: Path, data: bytes) -> Pattern:
    """A RRUFF powder profile: ``##KEY=value`` header lines, then ``twotheta, intensity`` rows."""
    text = decode_text(data, path.name)
    metadata: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("##") and "=" in line:
            key, _, value = line[2:].partition("=")
            if key.strip() and key.strip().upper() != "END":
                metadata[key.strip()] = value.strip()
    x, y, header = parse_columns(text, path.name)
    check_angle_unit(x, header, path.name)
    wavelength, notes = _wavelength_in(metadata)
    return make_pattern(
        x, y, source=path, format="rruff", wavelength=wavelength, metadata=metadata, notes=notes
    )


def read_ras(path: Path, data: bytes) -> Pattern:
    """A Rigaku ``.ras`` file: ``*KEY "value"`` headers, then ``*RAS_INT_START`` ... ``*RAS_INT_END`` points.

    Only the first scan is read. A third column is the attenuator factor: intensity = counts x factor.
    """
    text = decode_text(data, path.name)
    metadata: dict[str, str] = {}
    xs: list[float] = []
    ys: list[float] = []
    inside = False
    scans = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("*"):
            key, _, value = line[1:].partition(" ")
            if key == "RAS_INT_START":
                scans += 1
                inside = scans == 1
            elif key == "RAS_INT_END":
                inside = False
            elif scans == 0 and key not in metadata:
                metadata[key] = value.strip().strip('"')
            continue
        if not inside:
            continue
        values = _numbers(line)
        if values is None or len(values) < 2:
            raise PatternReadError(f"{path.name}: line {number} is not a '2θ intensity' row: {_clip(line)!r}")
        factor = values[2] if len(values) >= 3 else 1.0
        if not all(math.isfinite(v) for v in (values[0], values[1], factor)):
            raise PatternReadError(f"{path.name}: line {number} holds NaN or infinite values")
        xs.append(values[0])
        ys.append(values[1] * factor)
    if scans == 0:
        raise PatternReadError(f"{path.name}: no *RAS_INT_START data block (not a Rigaku RAS file?)")
    if scans > 1:
        metadata["scans_in_file"] = str(scans)

    def number_of(key: str) -> float | None:
        try:
            return float(metadata.get(key, ""))
        except ValueError:
            return None

    return make_pattern(
        xs,
        ys,
        source=path,
        format="ras",
        wavelength=number_of("HW_XG_WAVE_LENGTH_ALPHA1"),
        wavelength2=number_of("HW_XG_WAVE_LENGTH_ALPHA2"),
        metadata=metadata,
        radiation="xray",
    )
