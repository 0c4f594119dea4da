"""Does a library phase's structure agree with a measured pattern, peak by peak? (docs/adr/0055).

After a least-squares fit of known phases (:func:`~labeltune.core.xrd.quantify.fit_phases`), the part of
the measurement that belongs to one phase is what is left when the background and the other phases'
fitted components are taken away. Around each of the phase's strong *free* peaks (no peak of another
fitted phase within ``separation``) that part is compared with the phase's own calculated component:

* the difference of their centroids is the position misfit (°): a wrong cell, axis order or space-group
  setting moves peaks by different amounts, which one lattice scale cannot absorb;
* the ratio of their integrals is the intensity misfit: wrong atom positions, Wyckoff sites or origin
  change the relative intensities (texture and microabsorption do too, but smoothly and per sample).

:func:`refine_cell` turns the measured peak positions (d-spacings with their hkl) into the cell they
imply, in the crystal system of the phase's own cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labeltune.core.xrd.library import Library
from labeltune.core.xrd.quantify import FitResult

__all__ = ["PeakMisfit", "crystal_system", "peak_misfits", "refine_cell"]

Cell = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class PeakMisfit:
    """One free peak of a phase: measured against calculated.

    ``two_theta`` is the calculated position on the pattern (lattice scale and zero shift applied),
    ``intensity`` the library's relative intensity (strongest = 100), ``shift`` measured minus calculated
    centroid (°), ``ratio`` measured / calculated integral and ``d`` the d-spacing (Å) of the measured
    centroid, zero shift removed.
    """

    two_theta: float
    hkl: tuple[int, int, int]
    intensity: float
    shift: float
    ratio: float
    d: float


def peak_misfits(
    result: FitResult,
    library: Library,
    phase: str,
    *,
    n: int = 8,
    window: float = 0.25,
    separation: float = 0.4,
    two_theta_range: tuple[float, float] = (15.0, 90.0),
) -> list[PeakMisfit]:
    """The misfits of ``phase``'s ``n`` strongest free peaks in the fit ``result`` (strongest first).

    A peak is free when no peak of another phase of the fit lies within ``separation`` (°) and no other
    peak of its own within ``window``; its centroid and integral are taken over ± ``window`` (°).
    """
    fits = {p.name: p for p in result.phases}
    others = [name for name in result.components if name != phase]
    x = result.two_theta
    own = result.components[phase]
    measured = result.observed - result.background - sum((result.components[o] for o in others), 0 * x)
    peaks = library.peaks[phase]
    taken = np.concatenate([library.peaks[o].two_theta for o in others]) if others else np.zeros(0)
    scale = fits[phase].lattice_scale
    wavelength = library.wavelength
    rows: list[PeakMisfit] = []
    for i in np.argsort(-peaks.intensity, kind="stable"):
        t = float(peaks.two_theta[i])
        if taken.size and float(np.abs(taken - t).min()) < separation:
            continue
        if int(np.sum(np.abs(peaks.two_theta - t) < window)) > 1:
            continue
        sine = wavelength / (2 * float(peaks.d[i]) * scale)
        if not 0 < sine < 1:
            continue
        position = 2 * math.degrees(math.asin(sine)) + result.zero_shift
        if not two_theta_range[0] < position < two_theta_range[1]:
            continue
        inside = np.abs(x - position) <= window
        calc = own[inside]
        meas = np.clip(measured[inside], 0.0, None)
        if calc.sum() <= 0 or meas.sum() <= 0:
            continue
        shift = float(x[inside] @ meas / meas.sum() - x[inside] @ calc / calc.sum())
        true = math.radians(position - result.zero_shift + shift) / 2
        h, k, ell = (int(v) for v in peaks.hkl[i])
        rows.append(
            PeakMisfit(
                two_theta=position,
                hkl=(h, k, ell),
                intensity=float(peaks.intensity[i]),
                shift=shift,
                ratio=float(meas.sum() / calc.sum()),
                d=wavelength / (2 * math.sin(true)),
            )
        )
        if len(rows) == n:
            break
    return rows


def crystal_system(cell: Sequence[float]) -> str:
    """cubic, hexagonal (also trigonal in hexagonal axes), tetragonal, orthorhombic or monoclinic (b)."""
    a, b, c, alpha, beta, gamma = cell
    if not math.isclose(alpha, 90) or (not math.isclose(gamma, 90) and not math.isclose(gamma, 120)):
        raise ValueError(f"cell {tuple(cell)}: only b-unique monoclinic and higher symmetries")
    if math.isclose(gamma, 120):
        return "hexagonal"
    if not math.isclose(beta, 90):
        return "monoclinic"
    if math.isclose(a, b) and math.isclose(b, c):
        return "cubic"
    return "tetragonal" if math.isclose(a, b) else "orthorhombic"


def _terms(hkl: tuple[int, int, int], system: str) -> list[float]:
    h, k, ell = hkl
    if system == "cubic":
        return [h * h + k * k + ell * ell]
    if system == "tetragonal":
        return [h * h + k * k, ell * ell]
    if system == "hexagonal":
        return [h * h + h * k + k * k, ell * ell]
    if system == "orthorhombic":
        return [h * h, k * k, ell * ell]
    return [h * h, k * k, ell * ell, h * ell]


def refine_cell(cell: Sequence[float], peaks: Sequence[tuple[tuple[int, int, int], float]]) -> Cell:
    """The cell that measured ``peaks`` ((hkl, d) pairs) imply, in the crystal system of ``cell``.

    A linear least-squares fit of 1/d² in the reciprocal metric (one term per free cell parameter).
    """
    system = crystal_system(cell)
    design = np.array([_terms(hkl, system) for hkl, _ in peaks], dtype=np.float64)
    target = np.array([1.0 / d**2 for _, d in peaks])
    if len(peaks) < design.shape[1] + 1:
        raise ValueError(f"{len(peaks)} peaks cannot refine a {system} cell")
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    if system == "cubic":
        a = 1 / math.sqrt(coef[0])
        return (a, a, a, 90.0, 90.0, 90.0)
    if system == "tetragonal":
        a = 1 / math.sqrt(coef[0])
        return (a, a, 1 / math.sqrt(coef[1]), 90.0, 90.0, 90.0)
    if system == "hexagonal":
        a = math.sqrt(4 / (3 * coef[0]))
        return (a, a, 1 / math.sqrt(coef[1]), 90.0, 90.0, 120.0)
    if system == "orthorhombic":
        a, b, c = (1 / math.sqrt(v) for v in coef)
        return (a, b, c, 90.0, 90.0, 90.0)
    # b-unique monoclinic: 1/d² = h²/(a² sin²β) + k²/b² + l²/(c² sin²β) - 2hl cosβ/(a c sin²β)
    big_a, big_b, big_c, big_e = (float(v) for v in coef)
    cos_beta = -big_e / (2 * math.sqrt(big_a * big_c))
    sin_beta = math.sqrt(1 - cos_beta**2)
    return (
        1 / (math.sqrt(big_a) * sin_beta),
        1 / math.sqrt(big_b),
        1 / (math.sqrt(big_c) * sin_beta),
        90.0,
        math.degrees(math.acos(cos_beta)),
        90.0,
    )
