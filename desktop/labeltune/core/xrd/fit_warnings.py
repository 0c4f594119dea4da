"""The warnings a phase fit carries (``quantify.fit_phases``): what the user should doubt in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labeltune.core.xrd.results import UnexplainedPeak

if TYPE_CHECKING:
    from labeltune.core.xrd.quantify import PhaseFit

RWP_WARNING = 0.25
"""A fit with a larger Rwp gets a warning."""


def on_calculated_peaks(
    peaks: list[UnexplainedPeak], x: np.ndarray, net: np.ndarray, top: float, fwhm: float
) -> set[float]:
    """2θ of the unexplained peaks that sit on a calculated peak of an identified phase.

    That is: within one FWHM the calculated profile above background reaches 10 % of the residual
    peak's height — a peak measured much stronger than calculated, not one where nothing is calculated.
    """
    out: set[float] = set()
    for p in peaks:
        window = np.abs(x - p.two_theta) <= max(fwhm, 1e-3)
        if window.any() and float(np.max(net[window])) >= 0.1 * p.height * top:
            out.add(p.two_theta)
    return out


def fit_warnings(
    phases: list[PhaseFit],
    unexplained: list[UnexplainedPeak],
    rwp: float,
    names: list[str],
    outside: set[str],
    fitted: tuple[float, float],
    on_phase: set[float],
    lattice_limit: float,
) -> list[str]:
    """What a fit says to the user, one line each.

    Unexplained peaks (``on_phase``: those on a calculated peak), a poor Rwp, textures kept, phases
    outside the fitted range, lattices at the limit, near-empty phases.
    """
    out = []
    new = [p for p in unexplained if p.two_theta not in on_phase]
    stronger = [p for p in unexplained if p.two_theta in on_phase]
    if new:
        if len(new) == 1:
            what = f"a peak at 2θ {new[0].two_theta:.1f}° ({100 * new[0].height:.1f} % of the strongest) fits"
        else:
            where = ", ".join(f"{p.two_theta:.1f}° ({100 * p.height:.1f} %)" for p in new)
            what = f"peaks at 2θ {where} (% of the strongest) fit"
        out.append(
            f"{what} no identified phase: "
            "an unknown phase (an impurity, when weak) or amorphous content may be present"
        )
    if stronger:
        where = ", ".join(f"{p.two_theta:.1f}°" for p in stronger)
        out.append(
            f"peaks at 2θ {where} are much stronger than the identified phases predict there: "
            "preferred orientation (texture), or an unknown phase on top"
        )
    if names and rwp > RWP_WARNING:
        out.append(f"the fit is poor (Rwp {rwp * 100:.0f} %): a phase may be missing or misidentified")
    for p in phases:
        if p.preferred_orientation is not None:
            direction, r = p.preferred_orientation
            out.append(f"texture: {p.name} r = {r:.2f} along [{''.join(str(v) for v in direction)}]")
        if p.name in outside:
            out.append(f"{p.name}: no reflections in the fitted range {fitted[0]:.1f}-{fitted[1]:.1f}° 2θ")
            continue
        if abs(p.lattice_scale - 1.0) > lattice_limit * 0.98:
            out.append(
                f"{p.name}: the lattice had to be scaled by {100 * (p.lattice_scale - 1):+.1f} %, "
                "the limit: the phase may be misidentified"
            )
        if p.weight_fraction < 0.005:
            out.append(
                f"{p.name}: fitted with almost no weight ({100 * p.weight_fraction:.1f} %): probably absent"
            )
    return out
