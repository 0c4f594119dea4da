"""GSAS raw powder data (``.gsa``, ``.gss``, ``.fxye``): a title, ``BANK`` lines, STD / ESD / FXYE records.

Only constant-wavelength banks (``CONST``, angles in centidegrees) are read; time-of-flight banks (``RALF``,
``SLOG``, ``TIME_MAP``) are refused, as they are not 2θ scans. The first bank is read. A GSAS data file does
not hold the wavelength (it lives in the instrument parameter file), so it stays unknown. Experimental:
tested on generated files only (ADR 0045).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from labeltune.core.xrd.pattern import Pattern, PatternReadError, make_pattern
from labeltune.core.xrd.readers_counts import neutron_hint
from labeltune.core.xrd.readers_text import decode_text


def is_gsas(data: bytes) -> bool:
    """Whether a line among the first few starts with ``BANK`` after a title (and optional comments)."""
    lines = data[:8192].splitlines()[1:8]
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(b"#") or line.startswith(b"Instrument parameter"):
            continue
        return line.startswith((b"BANK ", b"TIME_MAP"))
    return False


def read_gsas(path: Path, data: bytes) -> Pattern:
    """A GSAS standard powder data file; the first constant-wavelength bank (STD, ESD or FXYE records)."""
    name = path.name
    lines = decode_text(data, name).splitlines()
    banks = [i for i, line in enumerate(lines) if line.startswith("BANK")]
    if not banks:
        raise PatternReadError(f"{name}: no BANK line (not a GSAS powder data file)")
    at = banks[0]
    fields = lines[at].split()
    if len(fields) < 5:
        raise PatternReadError(f"{name}: the BANK line is incomplete: {lines[at][:60]!r}")
    try:
        points = int(fields[2])
    except ValueError:
        raise PatternReadError(f"{name}: the BANK line's point count is not a number") from None
    bintyp = fields[4].upper()
    if bintyp != "CONST":
        raise PatternReadError(
            f"{name}: the bank is {bintyp} (time-of-flight), not a constant-wavelength 2θ scan"
        )
    kind = fields[-1].upper() if fields[-1].upper() in ("STD", "ESD", "FXYE", "ALT") else "STD"
    try:
        start, step = float(fields[5]) / 100.0, float(fields[6]) / 100.0  # centidegrees
    except (IndexError, ValueError):
        raise PatternReadError(f"{name}: the CONST bank has no numeric start and step") from None
    end = banks[1] if len(banks) > 1 else len(lines)
    body = [line for line in lines[at + 1 : end] if line.strip() and not line.startswith("#")]
    if kind == "FXYE":
        x, y, esd = _fxye(body, name)
    elif kind == "ESD":
        y, esd = _pairs(body, name)
        x = start + step * np.arange(y.size)
    elif kind == "STD":
        y, esd = _std(body, name)
        x = start + step * np.arange(y.size)
    else:
        raise PatternReadError(f"{name}: GSAS {kind} records (time-of-flight) are not read")
    if y.size != points:
        raise PatternReadError(
            f"{name}: the BANK line announces {points} points but {y.size} follow (truncated, or a wrong "
            "count)"
        )
    if kind == "FXYE" and x.size > 1 and step > 0:  # the listed angles must agree with the BANK line
        median = float(np.median(np.diff(x)))
        if abs(median - step) > 0.01 * step or abs(float(x[0]) - start) > 0.5 * step:
            raise PatternReadError(
                f"{name}: the listed angles start at {float(x[0]):g}° and step by {median:g}°, but the BANK "
                f"line says {start:g}° by {step:g}°"
            )
    metadata = {"title": lines[0].strip(), "bank": lines[at].strip(), "records": kind}
    notes = [f"the file holds {len(banks)} banks: the first is read"] if len(banks) > 1 else []
    radiation = "unknown"
    hint = neutron_hint(lines[:at])
    if hint is not None:
        radiation = "neutron"
        metadata["radiation_from"] = f"the header names {hint!r}"
    return make_pattern(
        x, y, source=path, format="gsas", metadata=metadata, notes=notes, esd=esd, radiation=radiation
    )


def _std(body: list[str], name: str) -> tuple[np.ndarray, np.ndarray]:
    """STD records: up to ten 8-character fields a line, each ``nc`` (2 chars, counters) + count (6)."""
    counts: list[float] = []
    counters: list[float] = []
    for number, line in enumerate(body, start=1):
        text = line.rstrip()
        for i in range(0, len(text), 8):
            field = text[i : i + 8]
            if not field.strip():
                continue
            try:
                nc = int(field[:2]) if field[:2].strip() else 1
                counts.append(float(field[2:]))
            except ValueError:
                raise PatternReadError(f"{name}: STD record {number} has a bad field {field!r}") from None
            counters.append(max(nc, 1))
    y = np.asarray(counts, dtype=np.float64)
    return y, np.sqrt(np.abs(y) / np.asarray(counters, dtype=np.float64))


def _pairs(body: list[str], name: str) -> tuple[np.ndarray, np.ndarray]:
    """ESD records: intensity, esd pairs (five a line, 8 characters each, or free format)."""
    values: list[float] = []
    for number, line in enumerate(body, start=1):
        text = line.rstrip()
        fields = [text[i : i + 8] for i in range(0, len(text), 8)] if len(text) % 8 == 0 else text.split()
        try:
            values.extend(float(f) for f in fields if f.strip())
        except ValueError:
            raise PatternReadError(f"{name}: ESD record {number} is not numeric: {text[:60]!r}") from None
    if len(values) % 2:
        raise PatternReadError(f"{name}: the ESD records hold an odd count of numbers (truncated?)")
    pairs = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def _fxye(body: list[str], name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FXYE records: 2θ (centidegrees), intensity, esd a line."""
    rows: list[list[float]] = []
    for number, line in enumerate(body, start=1):
        try:
            row = [float(v) for v in line.split()]
        except ValueError:
            raise PatternReadError(f"{name}: FXYE line {number} is not numeric: {line[:60]!r}") from None
        if len(row) != 3 or not all(math.isfinite(v) for v in row):
            raise PatternReadError(f"{name}: FXYE line {number} must hold 2θ, intensity and esd")
        rows.append(row)
    table = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    return table[:, 0] / 100.0, table[:, 1].copy(), table[:, 2].copy()
