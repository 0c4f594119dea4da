"""The weighed dara mixtures: the CIFs LabelTune ships for their ten phases and their file-name labels.

The measured mixtures (jrneilson/dara, ``dataset/``) are named after what was weighed:
``Li2CO3_0p9001-ZrO2_0p1000--8min.xrdml`` is 90.01 wt% Li2CO3 + 10.00 wt% ZrO2, scanned for 8 minutes.
The CIFs under ``labeltune/resources/xrd/dara/`` were written from published structures (each cites its
paper) and are named after those formulas, so a library built from them labels phases as the files do
(docs/adr/0049).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DARA_PHASES", "DaraName", "dara_cif_dir", "dara_cifs", "parse_dara_name"]

DARA_PHASES = ("Bi2O3", "In2O3", "La(OH)3", "Li2CO3", "MnCO3", "NiO", "TiO2", "V2O5", "ZnO", "ZrO2")
"""The ten phases of the weighed mixtures (TiO2 is anatase: no rutile peak in any scan)."""

_PART = re.compile(r"^(?P<phase>[A-Za-z0-9()]+)_(?P<int>\d+)p(?P<frac>\d+)$")


@dataclass(frozen=True)
class DaraName:
    """What a dara file name says: the mixture (``Li2CO3_0p9001-ZrO2_0p1000``), its scan and its label."""

    mixture: str
    scan: str
    phases: tuple[str, ...]
    fractions: tuple[float, ...]
    """Weighed fractions normalised to sum 1 (the weighed ones sum to 1 within 0.3 %)."""


def dara_cif_dir() -> Path:
    """The folder of the shipped dara CIFs (package data)."""
    return Path(__file__).resolve().parents[2] / "resources" / "xrd" / "dara"


def dara_cifs() -> list[Path]:
    """The ten shipped CIFs, in ``DARA_PHASES`` order."""
    return [dara_cif_dir() / f"{name}.cif" for name in DARA_PHASES]


def parse_dara_name(file_name: str) -> DaraName:
    """Mixture, scan and weighed label of a dara file name; ``ValueError`` for a name of another form."""
    stem = Path(file_name).name.split(".")[0]
    mixture, sep, scan = stem.partition("--")
    parts = [_PART.match(p) for p in mixture.split("-")]
    if not sep or not parts or any(m is None for m in parts):
        raise ValueError(f"{file_name}: not a dara mixture name (PHASE_0pFRAC-...--SCAN)")
    phases = tuple(m["phase"] for m in parts if m is not None)
    weights = [float(f"{m['int']}.{m['frac']}") for m in parts if m is not None]
    total = sum(weights)
    if total <= 0 or len(set(phases)) != len(phases):
        raise ValueError(f"{file_name}: not a dara mixture name (fractions or phases)")
    return DaraName(mixture, scan, phases, tuple(w / total for w in weights))
