"""Readers for text XRD formats: two/three-column text (xy, xye, csv...), RRUFF, Rigaku RAS, pdCIF."""

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


def parse_columns(text: str, name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Parse angle/intensity columns; return 2θ, intensity and the header/comment lines.

    Blank lines and lines starting with ``#``, ``;``, ``!`` or ``//`` are comments; lines of words
    before the data are a header. A third column (an esd) or more are ignored.
    """
    xs: list[float] = []
    ys: list[float] = []
    header: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(COMMENT_PREFIXES):
            if len(header) < _MAX_HEADER_LINES:
                header.append(line)
            continue
        values = _numbers(line)
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
    if not xs:
        raise PatternReadError(f"{name}: no numeric data found (empty or not a 2θ/intensity table)")
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64), header


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


def read_xy(path: Path, data: bytes) -> Pattern:
    """Two/three-column text: ``.xy``, ``.xye``, ``.txt``, ``.dat``, ``.csv``; the wavelength is unknown."""
    x, y, header = parse_columns(decode_text(data, path.name), path.name)
    check_angle_unit(x, header, path.name)
    metadata = {"header": "\n".join(header)} if header else {}
    return make_pattern(x, y, source=path, format="xy", metadata=metadata)


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
    )


# --- pdCIF -------------------------------------------------------------------------------------

_CIF_TOKEN = re.compile(r"""'[^']*'(?=\s|$)|"[^"]*"(?=\s|$)|#.*|\S+""")
ANGLE_TAGS = ("_pd_meas_2theta_scan", "_pd_meas_angle_2theta", "_pd_proc_2theta_corrected", "_pd_meas_2theta")
INTENSITY_TAGS = (
    "_pd_meas_counts_total",
    "_pd_meas_intensity_total",
    "_pd_proc_intensity_total",
    "_pd_meas_counts_net",
    "_pd_proc_intensity_net",
)


def _cif_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith(";"):  # a text field runs to the next line starting with ';'
            field = [line[1:]]
            index += 1
            while index < len(lines) and not lines[index].startswith(";"):
                field.append(lines[index])
                index += 1
            tokens.append("\n".join(field).strip())
            index += 1
            continue
        for token in _CIF_TOKEN.findall(line):
            if token.startswith("#"):
                break
            if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
                token = token[1:-1]
            tokens.append(token)
        index += 1
    return tokens


def parse_cif(text: str) -> tuple[dict[str, str], list[tuple[list[str], list[str]]]]:
    """Parse CIF text into scalar items and loops (tags, flat values) across all data blocks, in order."""
    tokens = _cif_tokens(text)
    scalars: dict[str, str] = {}
    loops: list[tuple[list[str], list[str]]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        lower = token.lower()
        if lower == "loop_":
            tags: list[str] = []
            i += 1
            while i < len(tokens) and tokens[i].startswith("_"):
                tags.append(tokens[i].lower())
                i += 1
            values: list[str] = []
            while i < len(tokens):
                low = tokens[i].lower()
                if tokens[i].startswith("_") or low == "loop_" or low.startswith(("data_", "save_")):
                    break
                values.append(tokens[i])
                i += 1
            loops.append((tags, values))
        elif token.startswith("_"):
            if i + 1 < len(tokens):
                scalars.setdefault(lower, tokens[i + 1])
            i += 2
        else:
            i += 1
    return scalars, loops


def cif_number(value: str) -> float:
    """A CIF number without its standard uncertainty (``123(4)`` -> 123); NaN for ``?`` and ``.``."""
    value = value.strip()
    if value in ("?", "."):
        return math.nan
    return float(value.split("(", 1)[0])


def read_pdcif(path: Path, data: bytes) -> Pattern:
    """A powder CIF (pdCIF): the first loop of measured/processed intensities; 2θ listed or as a range."""
    name = path.name
    scalars, loops = parse_cif(decode_text(data, name))
    for tags, values in loops:
        y_tag = next((t for t in INTENSITY_TAGS if t in tags), None)
        if y_tag is None:
            continue
        width = len(tags)
        if len(values) % width:
            raise PatternReadError(
                f"{name}: the {y_tag} loop has {len(values)} values, not a multiple of {width}"
            )
        rows = len(values) // width
        try:
            y = np.array([cif_number(values[r * width + tags.index(y_tag)]) for r in range(rows)])
            x_tag = next((t for t in ANGLE_TAGS if t in tags), None)
            if x_tag is not None:
                x = np.array([cif_number(values[r * width + tags.index(x_tag)]) for r in range(rows)])
            else:
                x = _cif_range(scalars, rows, name)
        except ValueError as exc:
            raise PatternReadError(f"{name}: a pdCIF value is not a number ({exc})") from None
        keep = ~(np.isnan(x) | np.isnan(y))  # CIF nulls ('.', '?') are missing points
        w1, w2, ratio = _cif_wavelengths(scalars, loops)
        metadata = {k: v for k, v in scalars.items() if k.startswith(("_pd_", "_diffrn_", "_chemical_"))}
        return make_pattern(
            x[keep], y[keep], source=path, format="pdcif", wavelength=w1, wavelength2=w2,
            ka2_ratio=ratio, metadata=metadata,
        )  # fmt: skip
    if any("_atom_site_fract_x" in tags for tags, _values in loops):
        raise PatternReadError(
            f"{name}: a crystal structure, not a measured pattern: add it to the reference library instead"
        )
    raise PatternReadError(f"{name}: no powder intensities (_pd_meas_counts_total...) in this CIF")


def _cif_range(scalars: dict[str, str], rows: int, name: str) -> np.ndarray:
    for prefix in ("_pd_meas_2theta_range_", "_pd_proc_2theta_range_"):
        if prefix + "min" in scalars and prefix + "inc" in scalars:
            start = cif_number(scalars[prefix + "min"])
            step = cif_number(scalars[prefix + "inc"])
            return start + step * np.arange(rows, dtype=np.float64)
    raise PatternReadError(f"{name}: the intensities have no 2θ values and no _pd_meas_2theta_range_*")


def _cif_wavelengths(
    scalars: dict[str, str], loops: list[tuple[list[str], list[str]]]
) -> tuple[float | None, float | None, float | None]:
    for tags, values in loops:
        if "_diffrn_radiation_wavelength" in tags and values:
            width = len(tags)
            col = tags.index("_diffrn_radiation_wavelength")
            wt = (
                tags.index("_diffrn_radiation_wavelength_wt")
                if "_diffrn_radiation_wavelength_wt" in tags
                else None
            )
            rows = len(values) // width
            try:
                w = [cif_number(values[r * width + col]) for r in range(rows)]
                weights = [cif_number(values[r * width + wt]) for r in range(rows)] if wt is not None else []
            except ValueError:
                return None, None, None
            w1 = w[0] if w and math.isfinite(w[0]) else None
            w2 = w[1] if len(w) > 1 and math.isfinite(w[1]) else None
            ratio = weights[1] / weights[0] if len(weights) > 1 and weights[0] > 0 else None
            return w1, w2, ratio
    for key in ("_diffrn_radiation_wavelength", "_pd_proc_wavelength"):
        if key in scalars:
            try:
                value = cif_number(scalars[key])
            except ValueError:
                continue
            if math.isfinite(value):
                return value, None, None
    return None, None, None
