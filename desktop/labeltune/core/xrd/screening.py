"""The fit proposes too: library phases whose peaks the residual of a fit holds (ADR 0046).

A network trained on mixtures of a few wt % and more gives a 1 wt % phase little probability, so the
decision in ``inference`` would never try it. After the fit of the called phases, every other library
phase is scored by how much of it the residual holds: its unit profile (fitted zero shift, widths and Kα2,
a few lattice scales around the CIF's) added to the fit with everything else fixed, a one-parameter
linear least squares: ``t = scale / esd`` with the fit's weights, reduced χ² and serial-correlation
factor. This is a screen, not a decision: the best-scoring phases are then fitted in full and kept only
on the evidence of :mod:`~labeltune.core.xrd.significance`.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from labeltune.core.xrd.library import Library
from labeltune.core.xrd.misfit import misfit_noise
from labeltune.core.xrd.peak_profile import calculated_profile
from labeltune.core.xrd.quantify import DEFAULT_KA2_RATIO, FitResult
from labeltune.core.xrd.residual_peaks import estimate_fwhm

LATTICE_STEPS = np.linspace(0.99, 1.01, 9)
"""Lattice scales tried per phase (CIF lattices are often 1 % off)."""
BROADEN = 1.5
"""The screen's peaks are this much broader than the fitted ones: a slightly wrong lattice still overlaps."""


def screen_residual(library: Library, fit: FitResult, exclude: Collection[str]) -> list[tuple[str, float]]:
    """(phase, t) for the library phases outside ``exclude``, the largest t (most evidence) first."""
    x, y = fit.two_theta, fit.observed
    if len(x) < 20 or fit.chi2_sum is None:
        return []
    weight, variance = misfit_noise(fit)
    residual = y - fit.calculated
    fwhm = float(np.median([p.fwhm_deg for p in fit.phases])) if fit.phases else estimate_fwhm(x, y)
    ratio = DEFAULT_KA2_RATIO if fit.ka2 else 0.0
    out: list[tuple[str, float]] = []
    for name in library.names:
        if name in exclude:
            continue
        best = 0.0
        for scale in LATTICE_STEPS:
            profile = calculated_profile(
                library,
                name,
                x,
                lattice_scale=float(scale),
                zero_shift=fit.zero_shift,
                fwhm_deg=BROADEN * fwhm,
                ka2_ratio=ratio,
            )
            norm = float(np.sum(weight * profile * profile))
            if norm <= 0:
                continue
            amount = float(np.sum(weight * residual * profile)) / norm
            best = max(best, amount / np.sqrt(variance / norm))
        out.append((name, best))
    out.sort(key=lambda item: -item[1])
    return out
