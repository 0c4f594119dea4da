"""Readable phase names for a library built from CIFs: ``Al2O3 (corundum)`` rather than ``1000017``.

A COD file is named by its database number, which says nothing to a person ticking phases. The CIF
itself usually carries the mineral name (``_chemical_name_mineral``) or a common name
(``_chemical_name_common``). The name is then the formula with that name in brackets; without one it is
the file's name when a person chose it (``MnO_225.cif``), else — a bare database number — the formula and
the space-group number (``TiO2_136``, the style of the shipped demo library). The file's
stem (the COD number) stays in :attr:`Phase.source`, shown as a detail. Names are unique within a library
(the COD number is added to a repeat) and free of the characters a label cannot hold.

Only new libraries are named this way (``build_library(..., naming="cif")``): the names of an existing
library are its labels' vocabulary and are never changed behind the user's back (ADR 0048).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["CIF", "FILE", "NAMINGS", "cif_common_name", "phase_name", "unique_name"]

FILE = "file"
"""Phases named after their CIF file (``1000017``): the historical behaviour."""
CIF = "cif"
"""Phases named from the CIF's mineral/common name and formula (``Al2O3 (corundum)``)."""
NAMINGS = (FILE, CIF)

_NAME_TAGS = ("_chemical_name_mineral", "_chemical_name_common")
_FORBIDDEN = re.compile(r'[;,"\'\n\r\t/\\:*?<>|]+')
"""Characters a label (``;`` ``,`` quotes, line breaks) or a peak-list file name cannot hold."""
_MAX_NAME = 40


def _clean(text: str) -> str:
    """``text`` without forbidden characters and repeated spaces (empty when nothing usable is left)."""
    text = _FORBIDDEN.sub(" ", text)
    text = " ".join(text.split())
    if text in ("?", "."):
        return ""
    return text[:_MAX_NAME].strip()


def cif_common_name(cif_path: str | Path) -> str:
    """The CIF's mineral name, else its common name ("" when it states neither or cannot be read)."""
    try:
        import gemmi

        block = gemmi.cif.read(str(cif_path)).sole_block()
    except Exception:  # unreadable CIFs are refused (with a reason) by the peak computation itself
        return ""
    for tag in _NAME_TAGS:
        raw = block.find_value(tag)
        if raw is None:
            continue
        name = _clean(gemmi.cif.as_string(raw))
        if name:
            return name
    return ""


def phase_name(formula: str, common_name: str, space_group_number: int, file_stem: str = "") -> str:
    """``Al2O3 (corundum)`` with a common name; without one, the file's own name or ``TiO2_136``.

    The file's name is kept unless it is a bare database number (``1530150``): then the formula and the
    space-group number.
    """
    formula = _clean(formula) or "phase"
    if common_name:
        plain = common_name[1:] == common_name[1:].lower()  # Corundum, not BaSO4-HP or Ca-Tschermak
        name = common_name[0].lower() + common_name[1:] if plain else common_name
        return f"{formula} ({name})"
    stem = _clean(file_stem)
    if stem and not stem.isdigit():
        return stem  # a name a person gave the file (MnO_225.cif): theirs to keep
    return f"{formula}_{space_group_number}"


def unique_name(name: str, taken: set[str], detail: str = "") -> str:
    """``name``, or ``name detail`` (e.g. the COD number), or ``name 2``... when it is already taken."""
    if name not in taken:
        return name
    if detail and f"{name} {detail}" not in taken:
        return f"{name} {detail}"
    i = 2
    while f"{name} {i}" in taken:
        i += 1
    return f"{name} {i}"
