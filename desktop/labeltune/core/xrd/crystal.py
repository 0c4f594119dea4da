"""Powder diffraction physics over gemmi's crystal model: reflections, structure factors, intensities.

gemmi reads the CIF (symmetry, sites, occupancies, isotropic or anisotropic displacement parameters)
and evaluates each structure factor (IT92 form factors, symmetry images, Debye-Waller factors).
On top of it this module adds what a powder pattern needs:

* anomalous dispersion: Cromer-Liberman f' and f'' at the wavelength (gemmi's ``cromer_liberman``).
  gemmi's addends are real, so F = A + i (B - A), where A is calculated with f' added to each form
  factor and B with f' + f''; B - A is then the sum of f'' times the thermal and phase factors;
* multiplicity: every (h, k, l) of the full reciprocal-space sphere is enumerated and reflections with
  the same d-spacing are merged, so multiplicity = number of merged reflections (this also works for
  CIFs written in P 1, where the space group gives no equivalences);
* Lorentz-polarisation for an unpolarised laboratory source, (1 + cos^2 2θ) / (sin^2 θ cos θ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gemmi
import numpy as np

from labeltune.core.xrd.bragg import d_spacing

CU_KA1 = 1.54056
"""Cu Kα1 wavelength in Å (the default: measured peaks' maxima sit at Kα1, not at the Kα mean)."""

CU_KA_MEAN = 1.54184
"""Weighted mean of Cu Kα1 and Kα2 in Å (for comparison only)."""

_AMU_TO_G = 1.66053907e-24
_HC_EV_ANGSTROM = 12398.419843320026

# Pauling electronegativities, used only to order elements in a formula like pymatgen does
# (cations first); elements not listed sort as 1.5 (a typical metal).
_ELECTRONEGATIVITY: dict[str, float] = {
    "H": 2.20, "Li": 0.98, "Be": 1.57, "B": 2.04, "C": 2.55, "N": 3.04, "O": 3.44, "F": 3.98,
    "Na": 0.93, "Mg": 1.31, "Al": 1.61, "Si": 1.90, "P": 2.19, "S": 2.58, "Cl": 3.16, "K": 0.82,
    "Ca": 1.00, "Sc": 1.36, "Ti": 1.54, "V": 1.63, "Cr": 1.66, "Mn": 1.55, "Fe": 1.83, "Co": 1.88,
    "Ni": 1.91, "Cu": 1.90, "Zn": 1.65, "Ga": 1.81, "Ge": 2.01, "As": 2.18, "Se": 2.55, "Br": 2.96,
    "Rb": 0.82, "Sr": 0.95, "Y": 1.22, "Zr": 1.33, "Nb": 1.6, "Mo": 2.16, "Ru": 2.2, "Rh": 2.28,
    "Pd": 2.20, "Ag": 1.93, "Cd": 1.69, "In": 1.78, "Sn": 1.96, "Sb": 2.05, "Te": 2.1, "I": 2.66,
    "Cs": 0.79, "Ba": 0.89, "La": 1.10, "Ce": 1.12, "Nd": 1.14, "Hf": 1.3, "Ta": 1.5, "W": 2.36,
    "Pt": 2.28, "Au": 2.54, "Hg": 2.00, "Tl": 1.62, "Pb": 2.33, "Bi": 2.02, "U": 1.38,
}  # fmt: skip


MIN_CELL_LENGTH = 1.0
"""Shortest unit-cell edge (Å) accepted: no crystal has a shorter one (graphite's a is 2.46 Å)."""
MAX_CELL_LENGTH = 500.0
"""Longest unit-cell edge (Å) accepted: larger cells are typing errors (or proteins), not powders."""
MAX_HKL = 10_000_000
"""Most (h, k, l) triples enumerated for one pattern: bounds the memory a large cell can take."""
MAX_REFLECTIONS = 250_000
"""Most reflections computed for a pattern (60 000 Å^3 at d = 1 Å): bounds the time (~1 s per 100 000)."""
OCCUPANCY_TOLERANCE = 0.01
"""Occupancies up to 1.01 are rounding (e.g. 0.334 x 3); beyond that a site is refused."""


class CrystalError(ValueError):
    """A CIF cannot be used to compute a pattern (unreadable, no atoms, no cell...)."""


@dataclass(frozen=True)
class Reflections:
    """Merged powder reflections (one row per distinct d-spacing), strongest-first order not implied.

    ``intensity`` is absolute: multiplicity-summed |F|^2 (electrons^2) times Lorentz-polarisation.
    """

    two_theta: np.ndarray
    d: np.ndarray
    intensity: np.ndarray
    hkl: np.ndarray
    multiplicity: np.ndarray


@dataclass(frozen=True)
class CrystalFacts:
    """Facts about a structure read from its CIF."""

    formula: str
    space_group: str
    space_group_number: int
    cell: tuple[float, float, float, float, float, float]
    volume: float
    density: float
    z: int
    cell_mass: float
    element_counts: dict[str, float]


def read_structure(cif_path: str | Path) -> tuple[Any, CrystalFacts]:
    """Read a CIF's first structure with gemmi: (structure ready for structure factors, its facts).

    The facts use the CIF's chemical occupancies; the returned structure then gets crystallographic
    occupancies (divided by the number of symmetry images that coincide on a special position),
    which gemmi's structure-factor sum over all symmetry operations expects. Raises ``CrystalError``.
    """
    path = Path(cif_path)
    if not path.is_file():
        raise CrystalError(f"{path}: no such file")
    try:
        empty = not path.read_bytes().strip()
    except OSError as exc:
        raise CrystalError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    if empty:
        raise CrystalError(f"{path.name}: the file is empty")
    try:
        small = gemmi.read_small_structure(str(path))
    except Exception as exc:  # gemmi raises RuntimeError / ValueError with a parser message
        reason = str(exc).replace(str(path), path.name)
        raise CrystalError(f"{path.name}: not a readable CIF ({reason})") from exc
    if small is None:
        raise CrystalError(f"{path.name}: no structure block in the CIF")
    if not small.sites:
        raise CrystalError(f"{path.name}: the CIF has no atom sites (_atom_site_fract_x/y/z)")
    cell = small.cell
    if not (cell.a > 0 and cell.b > 0 and cell.c > 0) or not cell.volume > 0:
        raise CrystalError(f"{path.name}: the CIF has no valid unit cell")
    if max(cell.a, cell.b, cell.c) > MAX_CELL_LENGTH or min(cell.a, cell.b, cell.c) < MIN_CELL_LENGTH:
        raise CrystalError(
            f"{path.name}: implausible unit cell ({cell.a:g} x {cell.b:g} x {cell.c:g} Å; "
            f"edges of {MIN_CELL_LENGTH:g} to {MAX_CELL_LENGTH:g} Å are expected)"
        )
    _check_sites(small, path.name)
    sg_label: tuple[str, int] | None = None
    if small.spacegroup is None:
        small, sg_label = _expand_to_p1(small, path.name)
    for site in small.sites:
        if site.element.atomic_number == 0:
            raise CrystalError(f"{path.name}: unknown element for site {site.label!r}")
    small.setup_cell_images()
    try:
        facts = crystal_facts(small)
        if sg_label is not None:
            facts = replace(facts, space_group=sg_label[0], space_group_number=sg_label[1])
    except Exception as exc:
        raise CrystalError(f"{path.name}: cannot compute the composition ({exc})") from exc
    if facts.cell_mass <= 0:
        raise CrystalError(f"{path.name}: the atom sites have zero occupancy")
    small.change_occupancies_to_crystallographic()
    small.setup_cell_images()
    return small, facts


def _check_sites(small: Any, file_name: str) -> None:
    """Refuse sites whose coordinates are not numbers or whose occupancy is not between 0 and 1."""
    for site in small.sites:
        fract = (site.fract.x, site.fract.y, site.fract.z)
        if not all(math.isfinite(v) for v in fract):
            raise CrystalError(f"{file_name}: the coordinates of site {site.label!r} are not numbers")
        if max(abs(v) for v in fract) > 100:
            raise CrystalError(
                f"{file_name}: site {site.label!r} has implausible fractional coordinates {fract!r}"
            )
        if not math.isfinite(site.occ) or site.occ < 0 or site.occ > 1 + OCCUPANCY_TOLERANCE:
            raise CrystalError(
                f"{file_name}: site {site.label!r} has occupancy {site.occ:g} (it must be between 0 and 1)"
            )


def _expand_to_p1(small: Any, file_name: str) -> tuple[Any, tuple[str, int]]:
    """Apply the CIF's own symmetry operations to a structure whose space group gemmi cannot name.

    Happens with non-standard settings (e.g. a rhombohedral cell with a shifted origin). The images
    are deduplicated and the result is in P 1. Anisotropic displacements are replaced by their mean
    diagonal (an approximation: rotating them into each image is not done here). Returns the P 1
    structure and the best space-group label found (Hall symbol, else H-M/number from the CIF).
    """
    if not small.symops:
        raise CrystalError(f"{file_name}: the CIF's space group / symmetry operations are not understood")
    try:
        ops = [gemmi.Op(text) for text in small.symops]
    except Exception as exc:
        raise CrystalError(f"{file_name}: unreadable symmetry operation ({exc})") from exc
    label = (str(small.spacegroup_hm or "?"), int(small.spacegroup_number or 0))
    try:
        small.determine_and_set_spacegroup("H")
        if small.spacegroup is not None:
            label = (small.spacegroup.hm, int(small.spacegroup.number))
    except Exception:  # the Hall symbol is missing or inconsistent: keep the CIF's label
        pass
    p1 = gemmi.SmallStructure()
    p1.name = small.name
    p1.cell = small.cell
    p1.spacegroup_hm = "P 1"
    p1.determine_and_set_spacegroup("2")
    for site in small.sites:
        u = site.u_iso
        if site.aniso.nonzero():
            u = (site.aniso.u11 + site.aniso.u22 + site.aniso.u33) / 3.0
        images: list[np.ndarray] = []
        for op in ops:
            xyz = np.mod(np.array(op.apply_to_xyz([site.fract.x, site.fract.y, site.fract.z])), 1.0)
            if any(np.all(np.minimum(np.abs(xyz - o), 1 - np.abs(xyz - o)) < 1e-3) for o in images):
                continue
            images.append(xyz)
            image = site.clone()
            image.fract = gemmi.Fractional(*xyz)
            image.u_iso = u
            image.aniso = gemmi.SMat33d(0, 0, 0, 0, 0, 0)
            p1.add_site(image)
    return p1, label


def _format_count(value: float) -> str:
    if abs(value - 1.0) <= 0.01:
        return ""
    if abs(value - round(value)) <= 0.01 * value:
        return str(round(value))
    return f"{value:.3g}"


def reduced_formula(counts: dict[str, float]) -> tuple[str, int]:
    """Reduced formula (cations first, by electronegativity) and the number of formula units."""
    counts = {el: n for el, n in counts.items() if n > 1e-9}
    if not counts:
        return "", 0
    z = 1
    # near-integer counts (within 1 %, as partial occupancies often give) are reduced by their gcd
    if all(round(n) >= 1 and abs(n - round(n)) <= 0.01 * n for n in counts.values()):
        z = 0
        for n in counts.values():
            z = math.gcd(z, round(n))
        z = max(z, 1)
    order = sorted(counts, key=lambda el: (_ELECTRONEGATIVITY.get(el, 1.5), el))
    return "".join(f"{el}{_format_count(counts[el] / z)}" for el in order), z


def crystal_facts(small: Any) -> CrystalFacts:
    """Formula, space group, cell, volume, density and Z of a gemmi structure (chemical occupancies)."""
    counts: dict[str, float] = {}
    mass = 0.0
    for site in small.get_all_unit_cell_sites():
        el = site.element
        counts[el.name] = counts.get(el.name, 0.0) + site.occ
        mass += site.occ * el.weight
    formula, z = reduced_formula(counts)
    cell = small.cell
    sg = small.spacegroup
    return CrystalFacts(
        formula=formula,
        space_group=sg.hm,
        space_group_number=int(sg.number),
        cell=(cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma),
        volume=float(cell.volume),
        density=mass * _AMU_TO_G / (cell.volume * 1e-24),
        z=z,
        cell_mass=mass,
        element_counts={el: round(n, 6) for el, n in counts.items()},
    )


def _hkl_sphere(small: Any, d_min: float, d_max: float) -> tuple[np.ndarray, np.ndarray]:
    """All (h, k, l) with d_min <= d <= d_max over the full sphere (Friedel mates included)."""
    cell = small.cell
    frac = np.array(cell.frac.mat.tolist())  # rows: a*, b*, c* in Cartesian coordinates
    hmax = [math.ceil(length / d_min) for length in (cell.a, cell.b, cell.c)]
    expected = 4.0 / 3.0 * math.pi * (d_min**-3 - d_max**-3) * cell.volume  # reflections in the shell
    if math.prod(2 * m + 1 for m in hmax) > MAX_HKL or expected > MAX_REFLECTIONS:
        raise CrystalError(
            f"the cell ({cell.a:g} x {cell.b:g} x {cell.c:g} Å) is too large: about {expected:.3g} "
            f"reflections down to d = {d_min:.2f} Å (at most {MAX_REFLECTIONS})"
        )
    ranges = [np.arange(-m, m + 1) for m in hmax]
    grid = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    s = grid @ frac  # reciprocal vector of each hkl, in 1/Å
    inv_d = np.sqrt(np.einsum("ij,ij->i", s, s))
    with np.errstate(divide="ignore"):
        d = np.where(inv_d > 0, 1.0 / np.maximum(inv_d, 1e-300), np.inf)
    keep = (d >= d_min) & (d <= d_max)
    return grid[keep].astype(np.int64), d[keep]


def _canonical_hkl(members: np.ndarray) -> np.ndarray:
    """The most readable index of a merged group: most non-negative components, then the largest."""
    keys = [(int(np.sum(m >= 0)), *(int(x) for x in m)) for m in members]
    return members[max(range(len(members)), key=lambda i: keys[i])]


def compute_reflections(
    small: Any,
    wavelength: float = CU_KA1,
    two_theta_range: tuple[float, float] = (10.0, 100.0),
    anomalous: bool = True,
    default_b_iso: float = 0.0,
) -> Reflections:
    """Powder reflections of ``small`` in ``two_theta_range`` (degrees) at ``wavelength`` (Å).

    ``anomalous`` adds Cromer-Liberman f' and f''. Sites without a displacement parameter in the CIF
    get ``default_b_iso`` (Å^2; 0 = no thermal damping, as pymatgen does).
    """
    lo, hi = two_theta_range
    if not (0.0 < lo < hi < 180.0):
        raise CrystalError(f"two-theta range {two_theta_range} must satisfy 0 < low < high < 180")
    if not wavelength > 0:
        raise CrystalError(f"wavelength {wavelength} must be positive")
    d_min, d_max = d_spacing(hi, wavelength), d_spacing(lo, wavelength)

    if default_b_iso > 0:
        u_default = default_b_iso / (8.0 * math.pi**2)
        for site in small.sites:
            if site.u_iso == 0.0 and not site.aniso.nonzero():
                site.u_iso = u_default
        small.setup_cell_images()

    calc_real = gemmi.StructureFactorCalculatorX(small.cell)
    calc_imag = gemmi.StructureFactorCalculatorX(small.cell)
    if anomalous:
        energy = _HC_EV_ANGSTROM / wavelength
        for el in {site.element.name for site in small.sites}:
            element = gemmi.Element(el)
            fp, fpp = gemmi.cromer_liberman(element.atomic_number, energy)
            calc_real.addends.set(element, fp)
            calc_imag.addends.set(element, fp + fpp)

    hkl, d = _hkl_sphere(small, d_min, d_max)
    f2 = np.empty(len(hkl))
    sf_real = calc_real.calculate_sf_from_small_structure
    sf_imag = calc_imag.calculate_sf_from_small_structure
    for i, index in enumerate(hkl.tolist()):
        a = sf_real(small, index)
        f = a + 1j * (sf_imag(small, index) - a) if anomalous else a
        f2[i] = f.real * f.real + f.imag * f.imag

    if len(f2) == 0 or not float(f2.max()) > 0:
        empty = np.zeros(0)
        return Reflections(empty, empty, empty, np.zeros((0, 3), np.int64), np.zeros(0, np.int64))
    present = f2 > 1e-10 * float(f2.max())  # drop systematic absences
    hkl, d, f2 = hkl[present], d[present], f2[present]
    order = np.argsort(-d, kind="stable")
    hkl, d, f2 = hkl[order], d[order], f2[order]
    # merge reflections with the same d (relative tolerance covers P 1 CIFs rounded to 8 digits)
    breaks = np.flatnonzero(np.abs(np.diff(d)) > 1e-6 * d[1:]) + 1
    starts = np.concatenate([[0], breaks]).astype(np.int64)
    sums = np.add.reduceat(f2, starts)
    mult = np.diff(np.concatenate([starts, [len(d)]]))
    d_group = np.array([d[s : s + m].mean() for s, m in zip(starts, mult, strict=True)])
    reps = np.array([_canonical_hkl(hkl[s : s + m]) for s, m in zip(starts, mult, strict=True)])

    theta = np.arcsin(np.clip(wavelength / (2.0 * d_group), -1.0, 1.0))
    two_theta = np.degrees(2.0 * theta)
    lp = (1.0 + np.cos(2.0 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    intensity = sums * lp
    return Reflections(
        two_theta=two_theta,
        d=d_group,
        intensity=intensity,
        hkl=reps.astype(np.int64),
        multiplicity=mult.astype(np.int64),
    )
