"""Powder CIF (pdCIF) patterns: a small CIF tokenizer and the measured/processed intensity loops."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from labeltune.core.xrd.pattern import Pattern, PatternReadError, make_pattern
from labeltune.core.xrd.readers_text import decode_text

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
