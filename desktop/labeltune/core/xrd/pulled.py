"""A peak outside the library that pulls a candidate phase onto itself (ADR 0078).

Real samples hold phases the lab's library does not. A strong peak of one stays in the residual, and a
minor phase the decision tries can move its lattice 1-2 % to put one reflection on it: a χ² gain far
above what its own weak reflections give. Without that reflection the phase then has no evidence, so
the one-reflection rule (ADR 0067) rightly rejects the fit, and the phase is missed at its own lattice,
where it would pass. In 24 round-robin draws (1.15 % corundum, 3 % periclase outside the library) the
corundum was pulled onto periclase 200 in 12. Holding its lattice was not enough: its peak width then
took the unknown peak.

The second look leaves that peak out of the pattern, as a Rietveld analyst excludes a peak no phase
indexes, and tests the phase again on the same evidence (:func:`pulled_region`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from labeltune.core.xrd.misfit import PEAK_WINDOW_FWHM, decision_limit, decision_scale, fwhm_of, misfit_test
from labeltune.core.xrd.peak_profile import ka2_wavelength
from labeltune.core.xrd.results import UnexplainedPeak
from labeltune.core.xrd.significance import SIGNIFICANCE, Z_MIN

PULL = 0.005
"""A candidate whose lattice scale moved more than this from its CIF's may have been pulled."""
REGION_FWHM = 2.0
"""The unknown peak is left out over this many FWHM on each side (its Kα2 copy too)."""


def pulled_region(
    with_phase: Any, without: Any, name: str, ka2_relative: float
) -> tuple[UnexplainedPeak, tuple[float, float]] | None:
    """The unexplained peak that pulled ``name`` in ``with_phase`` and the 2θ range to leave out, if any.

    ``name`` was pulled when its lattice moved more than ``PULL`` and its most evident reflection
    (``misfit.best_peak``, ADR 0067) sits on a significant unexplained peak of ``without`` (the fit
    without it). The range covers that peak ± ``REGION_FWHM`` FWHM and its Kα2 copy
    (``ka2_relative``: (λ2 − λ1) / λ1, 0 without Kα2).
    """
    phase = next((p for p in with_phase.phases if p.name == name), None)
    if phase is None or abs(phase.lattice_scale - 1.0) <= PULL or not without.unexplained_peaks:
        return None
    best = misfit_test(with_phase, without, name, 1e-3).best_peak
    width = fwhm_of(without)
    near = [p for p in without.unexplained_peaks if abs(p.two_theta - best) <= PEAK_WINDOW_FWHM * width]
    if not near:
        return None
    peak = max(near, key=lambda p: p.height)
    ka2 = 2.0 * math.degrees(math.tan(math.radians(peak.two_theta / 2.0))) * ka2_relative
    return peak, (peak.two_theta - REGION_FWHM * width, peak.two_theta + REGION_FWHM * width + ka2)


def masked_limit(second: Any, without: Any, name: str) -> float:
    """``name``'s detection limit from the fits with the pulling peak left out (``second`` and ``without``).

    For a phase still rejected there: the limit of the pulled fit credits the unknown's peak (free-lime
    clinker 6 read "< 0.5 %" for a 1.1 % aphthitalite), the fits without that peak do not.
    """
    phase = next((p for p in second.phases if p.name == name), None)
    if phase is None:
        return 0.0
    return decision_limit(phase, decision_scale(second, without, name, Z_MIN, 1.0 - SIGNIFICANCE))


def excluded_warning(peak: UnexplainedPeak, region: tuple[float, float], name: str) -> str:
    """What the user reads when a region was left out for ``name``'s sake."""
    return (
        f"2θ {region[0]:.2f}-{region[1]:.2f}° was left out of the fit: a peak at {peak.two_theta:.1f}° "
        f"({100 * peak.height:.1f} % of the strongest) that no library phase explains pulled {name} "
        "onto it (an unknown phase?)"
    )


def ka2_relative(pattern: Any, ka2: bool | None) -> float:
    """(λ2 − λ1) / λ1 of ``pattern`` (a ``Pattern``) when its fits hold Kα2, else 0."""
    wavelength = getattr(pattern, "wavelength", None)
    if not ka2 or not wavelength:
        return 0.0
    second = getattr(pattern, "wavelength2", None) or ka2_wavelength(float(wavelength))
    return (float(second) - float(wavelength)) / float(wavelength) if second else 0.0


def with_excluded(fit: Any, excluded: list[tuple[UnexplainedPeak, tuple[float, float], str]]) -> Any:
    """``fit`` (a ``FitResult`` of a pattern with ``excluded`` regions) with those peaks and warnings back."""
    if not excluded:
        return fit
    peaks = sorted([*fit.unexplained_peaks, *(peak for peak, _, _ in excluded)], key=lambda p: p.two_theta)
    notes = [excluded_warning(peak, region, name) for peak, region, name in excluded]
    return replace(fit, unexplained_peaks=peaks, warnings=[*fit.warnings, *notes])
