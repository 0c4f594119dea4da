"""`read_pattern`: one measured XRD file of any supported format into a `Pattern`.

The format is chosen by content first (magic bytes, XML root, RAS/RRUFF/CIF/UXD/GSAS/CPI/UDF markers, a
RIET7 "start step end" line), then by the file extension. Readers tested on generated files only are
listed in `EXPERIMENTAL_READERS` and say so in each pattern's warnings (ADR 0045). The X-ray wavelength
is never assumed: it comes from the file where the file states it, else from the caller's
`default_wavelength` (the project setting), else it stays unknown.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from labeltune.core.xrd.pattern import RADIATIONS, Pattern, PatternReadError, valid_wavelength
from labeltune.core.xrd.readers_binary import (
    read_brml,
    read_bruker_raw_v1,
    read_bruker_raw_v2,
    read_bruker_raw_v3,
    read_philips_rd,
)
from labeltune.core.xrd.readers_counts import (
    find_start_step_end,
    is_uxd,
    read_cpi,
    read_start_step_counts,
    read_udf,
    read_uxd,
)
from labeltune.core.xrd.readers_gsas import is_gsas, read_gsas
from labeltune.core.xrd.readers_pdcif import read_pdcif
from labeltune.core.xrd.readers_text import read_ras, read_rruff, read_xy
from labeltune.core.xrd.readers_vendor import read_bruker_raw4, read_rasx, read_xrdml

__all__ = [
    "EXPERIMENTAL_READERS",
    "MAX_FILE_BYTES",
    "SUPPORTED_EXTENSIONS",
    "Pattern",
    "PatternReadError",
    "read_pattern",
]

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".xy", ".xye", ".txt", ".dat", ".csv", ".xrdml", ".ras", ".rasx", ".raw", ".cif",
    ".uxd", ".gsa", ".gss", ".fxye", ".brml", ".rd", ".sd", ".udf", ".cpi",
)  # fmt: skip
"""File extensions (lower case) that `read_pattern` accepts."""

MAX_FILE_BYTES = 512 * 1024 * 1024
"""Larger files are refused rather than read into memory."""

Reader = Callable[[Path, bytes], Pattern]
_BY_EXTENSION: dict[str, Reader] = {
    ".xrdml": read_xrdml, ".ras": read_ras, ".rasx": read_rasx, ".raw": read_bruker_raw4, ".cif": read_pdcif,
    ".uxd": read_uxd, ".gsa": read_gsas, ".gss": read_gsas, ".fxye": read_gsas, ".brml": read_brml,
    ".rd": read_philips_rd, ".sd": read_philips_rd, ".udf": read_udf, ".cpi": read_cpi,
}  # fmt: skip

EXPERIMENTAL_READERS: dict[Reader, str] = {
    read_bruker_raw_v1: "Bruker RAW v1", read_bruker_raw_v2: "Bruker RAW2", read_philips_rd: "Philips RD",
    read_brml: "Bruker BRML", read_gsas: "GSAS", read_cpi: "Sietronics CPI", read_udf: "Philips UDF",
}  # fmt: skip
"""Readers tested on generated files only (no real file of the format was at hand): each pattern they
read carries a warning saying so (ADR 0045)."""

_BINARY_MAGIC: tuple[tuple[bytes, Reader], ...] = (
    (b"RAW4.00", read_bruker_raw4), (b"RAW1.01", read_bruker_raw_v3), (b"RAW2", read_bruker_raw_v2),
    (b"RAW ", read_bruker_raw_v1), (b"V3RD", read_philips_rd), (b"V5RD", read_philips_rd),
)  # fmt: skip


def _sniff(data: bytes, suffix: str = "") -> Reader | None:
    """The reader the content calls for, or None to fall back on the extension."""
    for magic, reader in _BINARY_MAGIC:
        if data.startswith(magic):
            return reader
    if data.startswith(b"PK\x03\x04"):
        return read_brml if suffix == ".brml" or b"RawData" in data[: 1 << 20] else read_rasx
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"SIETRONICS XRD SCAN"):
        return read_cpi
    if head.startswith(b"SampleIdent"):
        return read_udf
    if is_uxd(data):
        return read_uxd
    if is_gsas(data):
        return read_gsas
    if head.startswith(b"<") and b"xrdMeasurements" in data[:8192]:
        return read_xrdml
    if head.startswith(b"*RAS_"):
        return read_ras
    if head.startswith(b"##"):
        return read_rruff
    if re.search(rb"^data_\S*", data[: 1 << 20], re.MULTILINE) and b"_pd_" in data:
        return read_pdcif
    if b"\x00" not in data[:4096]:
        lines = data[:8192].decode("latin-1").splitlines()
        if find_start_step_end(lines) is not None:
            return read_start_step_counts
    return None


def _refuse_other_binaries(path: Path, data: bytes) -> None:
    if data.startswith(b"RAW_"):
        raise PatternReadError(f"{path.name}: STOE binary .raw files are not supported; export as .xy")
    if data.startswith(b"RAW"):
        version = data[:7].decode("latin-1", "replace").strip("\x00 ")
        raise PatternReadError(
            f"{path.name}: Bruker RAW version {version!r} is not supported (RAW, RAW2, RAW1.01, RAW4.00 are)"
        )


def read_pattern(
    path: str | Path, default_wavelength: float | None = None, radiation: str | None = None
) -> Pattern:
    """Read one measured powder pattern.

    `default_wavelength` (Å, the project setting) fills in the wavelength when the file does not
    state it, with ``wavelength_source="setting"``; without it such a pattern has
    ``wavelength=None`` and ``wavelength_source="unknown"``. `radiation` ("xray" or "neutron") is what
    the user says the data are, and wins over what the file suggests. Raises `PatternReadError` (one
    line) for any file that cannot be read as a pattern.
    """
    path = Path(path)
    if radiation is not None and radiation not in RADIATIONS:
        raise ValueError(f"radiation must be one of {RADIATIONS}, not {radiation!r}")
    fallback = None
    if default_wavelength is not None:
        fallback = valid_wavelength(default_wavelength)
        if fallback is None:
            raise ValueError(f"not a usable wavelength: {default_wavelength!r} (Å, expected 0.01-10)")
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise PatternReadError(f"{path.name}: not a file")
        if size > MAX_FILE_BYTES:
            raise PatternReadError(f"{path.name}: {size} bytes is too large for a powder pattern")
        data = path.read_bytes()
    except OSError as exc:
        raise PatternReadError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise PatternReadError(f"{path.name}: the file is empty")
    suffix = path.suffix.lower()
    reader = _sniff(data, suffix)
    if reader is None:
        _refuse_other_binaries(path, data)
        if suffix == ".raw":
            raise PatternReadError(f"{path.name}: unknown binary .raw format (not Bruker RAW)")
        reader = _BY_EXTENSION.get(suffix, read_xy)
    try:
        pattern = reader(path, data)
    except PatternReadError:
        raise
    except (
        ValueError, IndexError, KeyError, OverflowError, struct.error, ET.ParseError,
        zipfile.BadZipFile, UnicodeError, EOFError, OSError, NotImplementedError, zlib.error,
    ) as exc:  # fmt: skip
        raise PatternReadError(f"{path.name}: cannot be read as {reader.__name__[5:]} ({exc})") from None
    if pattern.wavelength is None and fallback is not None:
        pattern = dataclasses.replace(pattern, wavelength=fallback, wavelength_source="setting")
    if reader in EXPERIMENTAL_READERS:
        note = (
            f"read by an experimental {EXPERIMENTAL_READERS[reader]} reader (tested on generated files "
            "only): compare it with your instrument's software"
        )
        pattern = dataclasses.replace(pattern, warnings=(*pattern.warnings, note))
    if radiation is not None and radiation != pattern.radiation:
        metadata = {**pattern.metadata, "radiation_from": "stated by the user"}
        pattern = dataclasses.replace(pattern, radiation=radiation, metadata=metadata)
    return pattern
