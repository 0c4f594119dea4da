"""Reference peak lists computed from CIF files, stored as a reusable library folder.

A library folder holds ``library.json`` (format version, wavelength, 2θ range, one entry of facts per
phase, the CIFs that were skipped and why) and ``peaks/<name>.csv`` with the columns
``two_theta,d,intensity,h,k,l,multiplicity`` (intensity relative to the phase's strongest peak = 100).
A *measured* reference (``Phase.kind == "measured"``, a pattern with a sidecar: ADR 0047,
``reference_patterns``) also has ``profiles/<name>.csv`` (``two_theta,intensity``: resampled,
background-stripped, its strongest peak of unit area) and its peak list is the profile's maxima.

Scattering-power facts stored per phase (used later to map weight fractions to intensities):

* ``abs_intensity_max``: the strongest peak's absolute intensity, multiplicity x |F|^2 (electrons^2)
  x Lorentz-polarisation, for the whole unit cell;
* ``abs_intensity_sum``: the same summed over every peak kept in the range;
* ``scattering_power``: ``abs_intensity_max / (density * volume^2)``. In a mixture with a common mass
  absorption coefficient, a phase's strongest-peak intensity is proportional to its weight fraction
  times this number, so the reference intensity ratio of phase A is
  ``scattering_power[A] / scattering_power[corundum]`` (both computed at the same wavelength).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from labeltune.core.xrd.crystal import CU_KA1, CrystalError, compute_reflections, read_structure
from labeltune.core.xrd.phase_names import CIF, FILE, NAMINGS, cif_common_name, phase_name, unique_name

LIBRARY_VERSION = 1
LIBRARY_FILE = "library.json"
PEAKS_DIR = "peaks"
PROFILES_DIR = "profiles"
_CSV_HEADER = ("two_theta", "d", "intensity", "h", "k", "l", "multiplicity")

LibraryProgress = Callable[[int, int, str], None]
"""Progress callback: (done, total, current CIF name)."""


class LibraryError(ValueError):
    """A library folder cannot be read (missing, wrong version, damaged files)."""


@dataclass(frozen=True)
class Phase:
    """One reference phase and the facts computed from its CIF."""

    name: str
    formula: str
    space_group: str
    space_group_number: int
    cell: tuple[float, float, float, float, float, float]
    volume: float
    density: float
    z: int
    source: str
    abs_intensity_max: float
    abs_intensity_sum: float
    scattering_power: float
    n_peaks: int = 0
    element_counts: dict[str, float] = field(default_factory=dict)
    kind: str = "cif"
    """``cif`` (calculated from a structure) or ``measured`` (a reference pattern, ``profiles``)."""
    rir: float | None = None
    """Reference intensity ratio against corundum (measured references; ``scattering_power`` follows it)."""

    def to_json(self) -> dict[str, object]:
        """The phase as a JSON-ready dict."""
        out = asdict(self)
        out["cell"] = list(self.cell)
        return out

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Phase:
        """Rebuild a phase from ``to_json`` output."""
        values = dict(data)
        cell = values["cell"]
        if not isinstance(cell, list) or len(cell) != 6:
            raise LibraryError(f"phase {values.get('name')!r}: bad cell {cell!r}")
        values["cell"] = tuple(float(v) for v in cell)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Peaks:
    """A phase's peak list, sorted by 2θ; ``intensity`` is relative to the strongest peak (= 100)."""

    two_theta: np.ndarray
    d: np.ndarray
    intensity: np.ndarray
    hkl: np.ndarray
    multiplicity: np.ndarray

    def __len__(self) -> int:
        return len(self.two_theta)

    def strongest(self, n: int) -> Peaks:
        """The ``n`` strongest peaks, strongest first."""
        order = np.argsort(-self.intensity, kind="stable")[:n]
        return Peaks(
            self.two_theta[order],
            self.d[order],
            self.intensity[order],
            self.hkl[order],
            self.multiplicity[order],
        )


@dataclass(frozen=True)
class ReferenceProfile:
    """A measured reference's net profile on an even 2θ grid; its strongest peak (Kα1) has unit area."""

    two_theta: np.ndarray
    intensity: np.ndarray


@dataclass
class Library:
    """Reference phases with their peak lists; ``skipped`` lists (CIF path, reason) of unusable CIFs."""

    wavelength: float
    two_theta_range: tuple[float, float]
    phases: list[Phase] = field(default_factory=list)
    peaks: dict[str, Peaks] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    path: Path | None = None
    profiles: dict[str, ReferenceProfile] = field(default_factory=dict)
    """Measured references' profiles by phase name (see ``Phase.kind``)."""

    def phase(self, name: str) -> Phase:
        """The phase called ``name`` (raises ``KeyError``)."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        """Phase names in library order."""
        return [p.name for p in self.phases]


def compute_peaks(
    cif_path: str | Path,
    wavelength: float = CU_KA1,
    two_theta_range: tuple[float, float] = (10.0, 100.0),
    min_relative_intensity: float = 0.05,
    *,
    name: str | None = None,
    anomalous: bool = True,
    default_b_iso: float = 0.0,
) -> tuple[Phase, Peaks]:
    """Compute a phase's facts and powder peak list from a CIF.

    ``wavelength`` in Å (default Cu Kα1), ``two_theta_range`` in degrees, ``min_relative_intensity``
    in percent of the strongest peak (weaker peaks are dropped). ``name`` defaults to the file name
    without extension. ``anomalous`` adds Cromer-Liberman f'/f''; sites without a displacement
    parameter get ``default_b_iso`` (Å^2). Raises ``CrystalError`` for an unusable CIF.
    """
    path = Path(cif_path)
    small, facts = read_structure(path)
    try:
        refl = compute_reflections(
            small, wavelength, two_theta_range, anomalous=anomalous, default_b_iso=default_b_iso
        )
    except CrystalError as exc:  # its message does not name the file
        raise CrystalError(f"{path.name}: {exc}") from None
    if len(refl.intensity) == 0 or not float(refl.intensity.max()) > 0:
        raise CrystalError(
            f"{path.name}: no reflections between {two_theta_range[0]} and {two_theta_range[1]}°"
        )
    top = float(refl.intensity.max())
    if not (math.isfinite(top) and facts.density > 0 and math.isfinite(facts.density)):
        raise CrystalError(f"{path.name}: the structure gives no usable intensities (check its numbers)")
    rel = 100.0 * refl.intensity / top
    keep = rel >= min_relative_intensity
    order = np.argsort(refl.two_theta[keep], kind="stable")
    peaks = Peaks(
        two_theta=refl.two_theta[keep][order],
        d=refl.d[keep][order],
        intensity=rel[keep][order],
        hkl=refl.hkl[keep][order],
        multiplicity=refl.multiplicity[keep][order],
    )
    phase = Phase(
        name=name if name is not None else path.stem,
        formula=facts.formula,
        space_group=facts.space_group,
        space_group_number=facts.space_group_number,
        cell=facts.cell,
        volume=facts.volume,
        density=facts.density,
        z=facts.z,
        source=str(path),
        abs_intensity_max=top,
        abs_intensity_sum=float(refl.intensity[keep].sum()),
        scattering_power=top / (facts.density * facts.volume**2),
        n_peaks=len(peaks),
        element_counts=facts.element_counts,
    )
    return phase, peaks


def _write_peaks(path: Path, peaks: Peaks) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(_CSV_HEADER)
        for i in range(len(peaks)):
            h, k, l = (int(v) for v in peaks.hkl[i])  # noqa: E741
            writer.writerow(
                [
                    f"{peaks.two_theta[i]:.5f}",
                    f"{peaks.d[i]:.6f}",
                    f"{peaks.intensity[i]:.4f}",
                    h,
                    k,
                    l,
                    int(peaks.multiplicity[i]),
                ]
            )


def _read_peaks(path: Path) -> Peaks:
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{path}: cannot read the peak list ({exc})") from exc
    if data.size == 0:
        data = np.zeros((0, 7))
    if data.shape[1] != len(_CSV_HEADER):
        raise LibraryError(f"{path}: expected {len(_CSV_HEADER)} columns, found {data.shape[1]}")
    return Peaks(
        two_theta=data[:, 0],
        d=data[:, 1],
        intensity=data[:, 2],
        hkl=data[:, 3:6].astype(np.int64),
        multiplicity=data[:, 6].astype(np.int64),
    )


def _write_profile(path: Path, profile: ReferenceProfile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.column_stack([profile.two_theta, profile.intensity])
    np.savetxt(path, rows, fmt=("%.5f", "%.7g"), delimiter=",", header="two_theta,intensity", comments="")


def _read_profile(path: Path) -> ReferenceProfile:
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{path}: cannot read the measured reference profile ({exc})") from exc
    if data.shape[1] != 2 or len(data) < 2:
        raise LibraryError(f"{path}: expected two columns two_theta,intensity")
    return ReferenceProfile(data[:, 0], data[:, 1])


def _unique_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"


def save_library(library: Library, out_dir: str | Path) -> Path:
    """Write ``library`` to ``out_dir`` (``library.json`` + ``peaks/<name>.csv``); returns the folder."""
    out = Path(out_dir)
    (out / PEAKS_DIR).mkdir(parents=True, exist_ok=True)
    for phase in library.phases:
        _write_peaks(out / PEAKS_DIR / f"{phase.name}.csv", library.peaks[phase.name])
        if phase.name in library.profiles:
            _write_profile(out / PROFILES_DIR / f"{phase.name}.csv", library.profiles[phase.name])
    meta = {
        "version": LIBRARY_VERSION,
        "wavelength": library.wavelength,
        "two_theta_range": list(library.two_theta_range),
        "phases": [p.to_json() for p in library.phases],
        "skipped": [{"path": p, "reason": r} for p, r in library.skipped],
    }
    tmp = out / (LIBRARY_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    tmp.replace(out / LIBRARY_FILE)
    library.path = out
    return out


def build_library(
    cif_paths: Iterable[str | Path],
    out_dir: str | Path,
    wavelength: float = CU_KA1,
    two_theta_range: tuple[float, float] = (10.0, 100.0),
    progress: LibraryProgress | None = None,
    *,
    min_relative_intensity: float = 0.05,
    anomalous: bool = True,
    naming: str = FILE,
) -> Library:
    """Compute every CIF's peak list and write the library folder ``out_dir``.

    A CIF that cannot be used is recorded in ``Library.skipped`` as (path, reason) and the build goes
    on. With ``naming="file"`` phase names are the file names without extension (``_2``, ``_3``... added
    to duplicates); with ``naming="cif"`` they come from the CIF's mineral/common name and formula
    (``Al2O3 (corundum)``; :mod:`labeltune.core.xrd.phase_names`), the file stays in ``Phase.source``.
    """
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {', '.join(NAMINGS)}, not {naming!r}")
    paths = [Path(p) for p in cif_paths]
    library = Library(
        wavelength=float(wavelength), two_theta_range=(float(two_theta_range[0]), float(two_theta_range[1]))
    )
    taken: set[str] = set()
    for i, path in enumerate(paths):
        if progress is not None:
            progress(i, len(paths), path.name)
        try:
            phase, peaks = compute_peaks(
                path,
                wavelength,
                library.two_theta_range,
                min_relative_intensity,
                name=_unique_name(path.stem, taken),
                anomalous=anomalous,
            )
            if naming == CIF:
                name = phase_name(phase.formula, cif_common_name(path), phase.space_group_number, path.stem)
                phase = replace(phase, name=unique_name(name, taken, path.stem))
        except CrystalError as exc:
            library.skipped.append((str(path), str(exc)))
            continue
        except Exception as exc:  # any other failure inside gemmi/numpy: skip the file, keep going
            library.skipped.append((str(path), f"{path.name}: {type(exc).__name__}: {exc}"))
            continue
        taken.add(phase.name)
        library.phases.append(phase)
        library.peaks[phase.name] = peaks
    if progress is not None:
        progress(len(paths), len(paths), "")
    save_library(library, out_dir)
    # what every later command reads: the files round the peak lists, and a fit of the library in memory
    # could decide otherwise than the same fit of the library read back (ADR 0078)
    return load_library(out_dir)


def load_library(directory: str | Path) -> Library:
    """Read a library folder written by ``build_library`` (raises ``LibraryError``)."""
    folder = Path(directory)
    meta_path = folder / LIBRARY_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise LibraryError(f"{folder}: not a peak library (no {LIBRARY_FILE})") from exc
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{meta_path}: cannot read ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("version") != LIBRARY_VERSION:
        raise LibraryError(f"{meta_path}: unsupported library version {meta.get('version')!r}")
    try:
        lo, hi = (float(v) for v in meta["two_theta_range"])
        library = Library(
            wavelength=float(meta["wavelength"]),
            two_theta_range=(lo, hi),
            skipped=[(str(s["path"]), str(s["reason"])) for s in meta.get("skipped", [])],
            path=folder,
        )
        for entry in meta["phases"]:
            phase = Phase.from_json(entry)
            library.phases.append(phase)
            library.peaks[phase.name] = _read_peaks(folder / PEAKS_DIR / f"{phase.name}.csv")
            if phase.kind == "measured":
                library.profiles[phase.name] = _read_profile(folder / PROFILES_DIR / f"{phase.name}.csv")
    except (KeyError, TypeError) as exc:
        raise LibraryError(f"{meta_path}: damaged library ({exc})") from exc
    return library
