"""`read_pattern`: one measured XRD file of any supported format into a `Pattern`.

The format is chosen by content first (magic bytes, XML root, RAS/RRUFF/CIF markers), then by the
file extension. The X-ray wavelength is never assumed: it comes from the file where the file states
it, else from the caller's `default_wavelength` (the project setting), else it stays unknown.
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

from labeltune.core.xrd.pattern import Pattern, PatternReadError, valid_wavelength
from labeltune.core.xrd.readers_text import read_pdcif, read_ras, read_rruff, read_xy
from labeltune.core.xrd.readers_vendor import read_bruker_raw4, read_rasx, read_xrdml

__all__ = ["MAX_FILE_BYTES", "SUPPORTED_EXTENSIONS", "Pattern", "PatternReadError", "read_pattern"]

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".xy", ".xye", ".txt", ".dat", ".csv", ".xrdml", ".ras", ".rasx", ".raw", ".cif",
)  # fmt: skip
"""File extensions (lower case) that `read_pattern` accepts."""

MAX_FILE_BYTES = 512 * 1024 * 1024
"""Larger files are refused rather than read into memory."""

Reader = Callable[[Path, bytes], Pattern]
_BY_EXTENSION: dict[str, Reader] = {
    ".xrdml": read_xrdml,
    ".ras": read_ras,
    ".rasx": read_rasx,
    ".raw": read_bruker_raw4,
    ".cif": read_pdcif,
}


def _sniff(data: bytes) -> Reader | None:
    """The reader the content calls for, or None to fall back on the extension."""
    if data.startswith(b"RAW4.00"):
        return read_bruker_raw4
    if data.startswith(b"PK\x03\x04"):
        return read_rasx
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<") and b"xrdMeasurements" in data[:8192]:
        return read_xrdml
    if head.startswith(b"*RAS_"):
        return read_ras
    if head.startswith(b"##"):
        return read_rruff
    if re.search(rb"^data_\S*", data[: 1 << 20], re.MULTILINE) and b"_pd_" in data:
        return read_pdcif
    return None


def _refuse_other_binaries(path: Path, data: bytes) -> None:
    if data.startswith(b"RAW_"):
        raise PatternReadError(f"{path.name}: STOE binary .raw files are not supported; export as .xy")
    if data.startswith((b"RAW ", b"RAW2", b"RAW1.01")):
        version = data[:7].decode("latin-1", "replace").strip("\x00 ")
        raise PatternReadError(f"{path.name}: Bruker RAW version {version!r} is not supported (only RAW4.00)")


def read_pattern(path: str | Path, default_wavelength: float | None = None) -> Pattern:
    """Read one measured powder pattern.

    `default_wavelength` (Å, the project setting) fills in the wavelength when the file does not
    state it, with ``wavelength_source="setting"``; without it such a pattern has
    ``wavelength=None`` and ``wavelength_source="unknown"``. Raises `PatternReadError` (one line)
    for any file that cannot be read as a pattern.
    """
    path = Path(path)
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
    reader = _sniff(data)
    if reader is None:
        _refuse_other_binaries(path, data)
        suffix = path.suffix.lower()
        if suffix == ".raw":
            raise PatternReadError(f"{path.name}: unknown binary .raw format (not Bruker RAW4.00)")
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
    return pattern
