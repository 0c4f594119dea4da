"""Measured reference patterns into a library: sidecar, profile, and the RIR (given or from a mixture).

A reference is any readable pattern file with a sidecar of the same stem, ``.json`` or ``.toml``::

    {"name": "kaolinite", "formula": "Al2Si2O5(OH)4", "density": 2.6, "rir": 1.1}
    {"name": "kaolinite", "formula": "Al2Si2O5(OH)4",
     "mixture": {"pattern": "kaolinite_corundum.xy", "corundum_wt_percent": 50}}

``rir`` is the reference intensity ratio against corundum (I/Ic); ``mixture`` names a pattern of the
reference with corundum at a known weight per cent, from which the RIR is fitted (the reference profile
and the calculated corundum, the same fit as any sample). Optional: ``density`` (g/cm³, for the
microabsorption correction), ``wavelength`` (Å, when the file does not state it) and
``background_window_deg`` (the background-stripping window, 0 = the file is already net; default 6°).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from labeltune.core.errors import UnusableInputError
from labeltune.core.xrd.crystal import CrystalError
from labeltune.core.xrd.library import Library, Peaks, Phase, ReferenceProfile, compute_peaks
from labeltune.core.xrd.metrics import FormulaError, canonical_formula, parse_formula
from labeltune.core.xrd.pattern import Pattern
from labeltune.core.xrd.reference_patterns import (
    MEASURED,
    PROFILE_STEP,
    profile_peaks,
    strip_background,
    strongest_peak_area,
)

SIDECAR_SUFFIXES = (".json", ".toml")
BACKGROUND_WINDOW = 6.0
"""Default SNIP window (degrees): wider than clays' broad bands, narrower than the background's bends."""
CORUNDUM = "corundum"


class ReferencePatternError(UnusableInputError):
    """A measured reference (pattern or sidecar) cannot be used; the message names the file."""


@dataclass(frozen=True)
class Sidecar:
    """What a reference's sidecar says (see the module docstring)."""

    path: Path
    name: str
    formula: str
    rir: float | None = None
    density: float | None = None
    wavelength: float | None = None
    mixture_pattern: Path | None = None
    corundum_wt_percent: float | None = None
    background_window_deg: float = BACKGROUND_WINDOW


def find_sidecar(pattern_path: Path) -> Path | None:
    """The sidecar next to ``pattern_path`` (same stem, .json or .toml), or None."""
    for suffix in SIDECAR_SUFFIXES:
        candidate = pattern_path.with_suffix(suffix)
        if candidate.is_file() and candidate != pattern_path:
            return candidate
    return None


def _number(data: dict[str, Any], key: str, where: str, positive: bool = True) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ReferencePatternError(f"{where}: {key} must be a number, not {value!r}")
    if positive and value <= 0:
        raise ReferencePatternError(f"{where}: {key} must be positive")
    return float(value)


def read_sidecar(path: Path) -> Sidecar:
    """Read and check a sidecar (raises ``ReferencePatternError`` with one line naming the file)."""
    where = path.name
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, UnicodeError, ValueError) as exc:
        raise ReferencePatternError(f"{where}: cannot read the sidecar ({exc})") from None
    if not isinstance(data, dict):
        raise ReferencePatternError(f"{where}: expected a table of name, formula and rir or mixture")
    formula = data.get("formula")
    if not isinstance(formula, str):
        raise ReferencePatternError(f'{where}: give the phase\'s formula (e.g. "formula": "Al2Si2O5(OH)4")')
    try:
        parse_formula(formula)
    except FormulaError as exc:
        raise ReferencePatternError(f"{where}: {exc}") from None
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\:"):
        raise ReferencePatternError(f"{where}: the name must be plain text without / \\ or :")
    rir = _number(data, "rir", where)
    mixture = data.get("mixture")
    mixture_pattern: Path | None = None
    corundum: float | None = None
    if mixture is not None:
        if not isinstance(mixture, dict) or not isinstance(mixture.get("pattern"), str):
            raise ReferencePatternError(f"{where}: mixture needs a pattern file and corundum_wt_percent")
        corundum = _number(mixture, "corundum_wt_percent", where)
        if corundum is None or not 0 < corundum < 100:
            raise ReferencePatternError(f"{where}: mixture.corundum_wt_percent must be between 0 and 100")
        mixture_pattern = path.parent / str(mixture["pattern"])
    if (rir is None) == (mixture_pattern is None):
        raise ReferencePatternError(f"{where}: give either rir (against corundum) or a mixture with corundum")
    window = _number(data, "background_window_deg", where, positive=False)
    return Sidecar(
        path=path,
        name=name.strip(),
        formula=formula,
        rir=rir,
        density=_number(data, "density", where),
        wavelength=_number(data, "wavelength", where),
        mixture_pattern=mixture_pattern,
        corundum_wt_percent=corundum,
        background_window_deg=BACKGROUND_WINDOW if window is None else max(window, 0.0),
    )


def _read(path: Path, library: Library, wavelength: float | None) -> Pattern:
    from labeltune.core.xrd.readers import read_pattern

    pattern = read_pattern(path, default_wavelength=wavelength)
    if pattern.wavelength is None:
        raise ReferencePatternError(
            f'{path.name}: the file states no wavelength; add "wavelength" to its sidecar'
        )
    if abs(pattern.wavelength - library.wavelength) > 1e-3:
        pattern = pattern.converted(library.wavelength)
    return pattern


def net_profile(pattern: Pattern, library: Library, window_deg: float) -> ReferenceProfile:
    """The pattern on an even grid over the library's range, background stripped, strongest peak area 1."""
    lo = max(library.two_theta_range[0], float(pattern.two_theta[0]))
    hi = min(library.two_theta_range[1], float(pattern.two_theta[-1]))
    if hi - lo < 1.0:
        raise ReferencePatternError(f"{pattern.source.name}: does not cover the library's 2θ range")
    x = np.arange(lo, hi + 0.5 * PROFILE_STEP, PROFILE_STEP)
    y = np.interp(x, pattern.two_theta, pattern.intensity.astype(np.float64))
    if window_deg > 0:
        y = y - strip_background(x, y, window_deg)
    y = np.maximum(y, 0.0)
    if not float(y.max()) > 0:
        raise ReferencePatternError(f"{pattern.source.name}: no peaks above the background")
    area = strongest_peak_area(x, y, library.wavelength)
    return ReferenceProfile(x, y / area)


def corundum(library: Library) -> tuple[Phase, Peaks]:
    """Corundum (the RIR standard) computed from the shipped CIF at the library's wavelength and range."""
    cif = resources.files("labeltune") / "resources" / "xrd" / "corundum_cod1000017.cif"
    with resources.as_file(cif) as path:
        try:
            return compute_peaks(path, library.wavelength, library.two_theta_range, name=CORUNDUM)
        except CrystalError as exc:
            raise ReferencePatternError(f"the corundum standard cannot be computed: {exc}") from None


def _phase(sidecar: Sidecar, name: str, source: Path, power: float, rir: float, n_peaks: int) -> Phase:
    counts = parse_formula(sidecar.formula)
    return Phase(
        name=name,
        formula=canonical_formula(sidecar.formula),
        space_group="measured",
        space_group_number=0,
        cell=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        volume=0.0,
        density=sidecar.density or 0.0,
        z=0,
        source=str(source),
        abs_intensity_max=0.0,
        abs_intensity_sum=0.0,
        scattering_power=power,
        n_peaks=n_peaks,
        element_counts=counts,
        kind=MEASURED,
        rir=rir,
    )


def _stick_peaks(profile: ReferenceProfile, wavelength: float) -> Peaks:
    two_theta, d, intensity = profile_peaks(profile, wavelength)
    n = len(two_theta)
    return Peaks(two_theta, d, intensity, np.zeros((n, 3), dtype=np.int64), np.ones(n, dtype=np.int64))


def rir_from_mixture(profile: ReferenceProfile, peaks: Peaks, sidecar: Sidecar, library: Library) -> float:
    """The RIR that makes the fit of the weighed reference + corundum mixture give its known weights."""
    from labeltune.core.xrd.quantify import fit_phases

    assert sidecar.mixture_pattern is not None and sidecar.corundum_wt_percent is not None
    standard, standard_peaks = corundum(library)
    trial = _phase(sidecar, "reference", sidecar.path, 1.0, 1.0, len(peaks))
    work = Library(library.wavelength, library.two_theta_range, [trial, standard])
    work.peaks = {"reference": peaks, CORUNDUM: standard_peaks}
    work.profiles = {"reference": profile}
    mixture = _read(sidecar.mixture_pattern, library, sidecar.wavelength)
    result = {p.name: p for p in fit_phases(mixture, work, ["reference", CORUNDUM]).phases}
    ref, cor = result["reference"], result[CORUNDUM]
    if not (ref.scale > 0 and cor.scale > 0):
        missing = "reference" if cor.scale > 0 else "corundum"
        raise ReferencePatternError(
            f"{sidecar.mixture_pattern.name}: the fit finds no {missing} in the mixture; check the files"
        )
    known = (100.0 - sidecar.corundum_wt_percent) / sidecar.corundum_wt_percent  # w_ref / w_corundum
    amount_ref = ref.scale * ref.lattice_scale**3  # / power_ref, the unknown
    amount_cor = cor.scale * cor.lattice_scale**3 / standard.scattering_power
    power = amount_ref / (known * amount_cor)
    return power / standard.scattering_power


def measured_reference(path: Path, library: Library, name: str) -> tuple[Phase, Peaks, ReferenceProfile]:
    """A library phase from a reference pattern and its sidecar (raises ``UnusableInputError``)."""
    sidecar_path = find_sidecar(path)
    if sidecar_path is None:
        raise ReferencePatternError(
            f"{path.name}: a reference pattern needs a sidecar {path.stem}.json or .toml "
            "(name, formula and rir or a mixture with corundum)"
        )
    sidecar = read_sidecar(sidecar_path)
    pattern = _read(path, library, sidecar.wavelength)
    profile = net_profile(pattern, library, sidecar.background_window_deg)
    peaks = _stick_peaks(profile, library.wavelength)
    rir = sidecar.rir if sidecar.rir is not None else rir_from_mixture(profile, peaks, sidecar, library)
    if not (math.isfinite(rir) and rir > 0):
        raise ReferencePatternError(f"{path.name}: no usable RIR came out ({rir})")
    power = rir * corundum(library)[0].scattering_power
    return _phase(sidecar, name, path, power, rir, len(peaks)), peaks, profile


def add_measured_references(library: Library, paths: list[Path]) -> None:
    """Append measured references to ``library``; an unusable one goes to ``skipped`` with the reason."""
    taken = set(library.names)
    for path in paths:
        try:
            sidecar_path = find_sidecar(path)
            wanted = read_sidecar(sidecar_path).name if sidecar_path is not None else path.stem
            name = wanted
            i = 2
            while name in taken:
                name, i = f"{wanted}_{i}", i + 1
            phase, peaks, profile = measured_reference(path, library, name)
        except (UnusableInputError, ValueError) as exc:
            library.skipped.append((str(path), str(exc)))
            continue
        taken.add(name)
        library.phases.append(phase)
        library.peaks[name] = peaks
        library.profiles[name] = profile


def library_inputs(items: list[str | Path]) -> tuple[list[Path], list[Path]]:
    """(CIF files, reference patterns) named by files and folders (raises ``UnusableInputError``).

    In a folder a pattern counts as a reference only with a sidecar (a weighed mixture that a sidecar
    names is not one); a pattern file named directly is one, and is skipped with the reason without one.
    """
    from labeltune.core.xrd.pattern_files import PATTERN_SUFFIXES

    cifs: list[Path] = []
    references: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.suffix.lower() == ".cif":
                    cifs.append(child)
                elif child.suffix.lower() in PATTERN_SUFFIXES and find_sidecar(child) is not None:
                    references.append(child)
        elif path.is_file():
            (cifs if path.suffix.lower() == ".cif" else references).append(path)
        else:
            raise UnusableInputError(f"{path} does not exist")
    return cifs, references
