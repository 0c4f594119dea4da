"""Calculated powder profiles of library phases: pseudo-Voigt peaks at Bragg angles, with Kα2.

A phase's *unit-scale* profile is ``sum_k intensity_k / 100 * pV_k(2θ)`` with unit-area pseudo-Voigt
peaks, so the phase's strongest reflection has area 1 (intensity x degrees). Its position follows the
d-spacings multiplied by a lattice scale ``s`` (Bragg's law) plus a constant 2θ zero shift. Optionally a
peak is split (``asymmetry``): axial divergence gives low-angle peaks a tail towards lower 2θ. Peaks are
evaluated inside ``±REACH`` FWHM of their centre (the ~1.6 % of a Lorentzian's area beyond that is left
to the background), which keeps the cost proportional to the number of peaks times their width.
"""

from __future__ import annotations

import math

import numpy as np

from labeltune.core.xrd.bragg import two_theta_of_d
from labeltune.core.xrd.library import Library

REACH = 12.0
"""Half-width, in FWHM, of the window in which each Lorentzian is evaluated."""
GAUSS_REACH = 3.0
"""The same for Gaussians (exp(-4 ln2 · 9) ≈ 1e-11)."""
MAX_SKEW = 0.6
"""Largest split of a peak's half-widths, (1 ± A) FWHM / 2."""

KA_PAIRS = (
    (1.54056, 1.54439),  # Cu
    (0.70930, 0.71359),  # Mo
    (1.78897, 1.79285),  # Co
    (1.93604, 1.93998),  # Fe
    (2.28970, 2.29361),  # Cr
    (0.55941, 0.56380),  # Ag
)
"""(Kα1, Kα2) wavelengths in Å of the common anodes."""

_GAUSS_NORM = 2.0 * math.sqrt(math.log(2.0) / math.pi)
_GAUSS_EXP = 4.0 * math.log(2.0)


def ka2_wavelength(wavelength: float) -> float | None:
    """The Kα2 wavelength that goes with Kα1 ``wavelength`` (Å) for a common anode, else None."""
    for ka1, ka2 in KA_PAIRS:
        if abs(wavelength - ka1) < 2e-3:
            return ka2
    return None


def _window_sum(
    x: np.ndarray,
    centres: np.ndarray,
    fwhm: np.ndarray,
    area: np.ndarray,
    reach: float,
    gaussian: bool,
    skew: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of unit-area Lorentzians (or Gaussians) times ``area``, each within ``reach`` FWHM.

    ``skew`` (|A| < 1 per peak) splits a peak at its maximum: the low-angle half has half-width
    (1 + A) FWHM / 2, the high-angle half (1 - A) FWHM / 2, the height is unchanged (so are the area
    and the FWHM).
    """
    n = len(x)
    step = float(np.min(np.diff(x))) if n > 1 else 1.0
    out = np.zeros(n)
    # peaks grouped by width (factor 2 per group) so that narrow peaks do not pay for wide windows
    group = np.floor(np.log2(fwhm / fwhm.min())).astype(np.int64)
    for g in np.unique(group):
        sel = group == g
        c, h, a = centres[sel], fwhm[sel], area[sel]
        k = skew[sel][:, None] if skew is not None else None
        half = reach * float(h.max()) * (1.0 + (float(np.abs(k).max()) if k is not None else 0.0))
        width = int(min(n, math.ceil(2.0 * half / step) + 2))
        start = np.minimum(np.searchsorted(x, c - half), n - 1)
        grid = np.concatenate([x, x[-1] + step * np.arange(1, width + 1)])
        idx = start[:, None] + np.arange(width)[None, :]
        q = grid[idx]  # in place from here: each temporary of this size costs fresh pages (ADR 0072)
        q -= c[:, None]
        q *= (1.0 / h)[:, None]
        if k is not None:
            q /= np.where(q < 0.0, 1.0 + k, 1.0 - k)
        q *= q
        if gaussian:
            q *= -_GAUSS_EXP
            np.exp(q, out=q)
            q *= (_GAUSS_NORM * a / h)[:, None]
        else:  # normalised to unit area inside the window (the cut tails are left to the background)
            inside = 2.0 / math.pi * math.atan(2.0 * reach)
            q *= 4.0
            q += 1.0
            np.divide((2.0 / math.pi / inside * a / h)[:, None], q, out=q)
        out += np.bincount(idx.ravel(), q.ravel(), minlength=n + width)[:n]
    return out


def pseudo_voigt_parts(
    x: np.ndarray,
    centres: np.ndarray,
    fwhm: np.ndarray,
    area: np.ndarray,
    skew: np.ndarray | None = None,
) -> np.ndarray:
    """(2, len(x)): the Lorentzian and the Gaussian sums of a pseudo-Voigt peak list on ascending ``x``.

    Peak k has centre ``centres[k]``, FWHM ``fwhm[k]`` (degrees), area ``area[k]`` and, optionally,
    split ``skew[k]`` (see ``_window_sum``); the profile with Lorentzian fraction eta is
    ``eta * parts[0] + (1 - eta) * parts[1]``.
    """
    out = np.zeros((2, len(x)))
    if len(x) == 0 or len(centres) == 0:
        return out
    half = REACH * fwhm
    inside = (centres + half >= x[0]) & (centres - half <= x[-1]) & (area != 0)
    if inside.any():
        c, h, a = centres[inside], fwhm[inside], area[inside]
        k = skew[inside] if skew is not None else None
        out[0] = _window_sum(x, c, h, a, REACH, gaussian=False, skew=k)
        out[1] = _window_sum(x, c, h, a, GAUSS_REACH, gaussian=True, skew=k)
    return out


def peak_positions(
    d: np.ndarray,
    wavelength: float,
    *,
    lattice_scale: float = 1.0,
    zero_shift: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(2θ incl. zero shift, θ in radians without it, mask of diffracting peaks) for scaled ``d``."""
    two_theta, ok = two_theta_of_d(d * lattice_scale, wavelength)
    return two_theta + zero_shift, np.radians(two_theta) / 2.0, ok


def phase_parts(
    x: np.ndarray,
    d: np.ndarray,
    rel: np.ndarray,
    wavelength: float,
    *,
    zero_shift: float,
    fwhm_of_theta: tuple[float, float, float],
    wavelength2: float | None,
    ka2_ratio: float,
    asymmetry: float = 0.0,
) -> np.ndarray:
    """Lorentzian and Gaussian parts (2, len(x)) of a unit-scale profile with d-spacings ``d``.

    FWHM(θ) = sqrt(a² + (b tan θ)² + (c / cos θ)²) for ``fwhm_of_theta`` = (a, b, c). ``asymmetry``
    P splits each peak by A = P / tan 2θ (clipped to ±``MAX_SKEW``, see ``_window_sum``): the
    axial-divergence asymmetry, strongest at low angles and reversed above 90°.
    """
    a, b, c = fwhm_of_theta
    centres, theta, ok = peak_positions(d, wavelength, zero_shift=zero_shift)
    fwhm = np.sqrt(a * a + (b * np.tan(theta)) ** 2 + (c / np.cos(theta)) ** 2)
    centres, fwhm, area = centres[ok], fwhm[ok], rel[ok]
    if wavelength2 is not None and ka2_ratio > 0:
        centres2, theta2, ok2 = peak_positions(d[ok], wavelength2, zero_shift=zero_shift)
        centres = np.concatenate([centres, centres2[ok2]])
        fwhm = np.concatenate([fwhm, fwhm[ok2]])
        area = np.concatenate([area, ka2_ratio * area[ok2]])
        theta = np.concatenate([theta[ok], theta2[ok2]])
    else:
        theta = theta[ok]
    skew = None
    if asymmetry:
        skew = np.clip(asymmetry / np.tan(2.0 * theta), -MAX_SKEW, MAX_SKEW)
    return pseudo_voigt_parts(x, centres, np.maximum(fwhm, 1e-4), area, skew)


def calculated_profile(
    library: Library,
    name: str,
    two_theta: np.ndarray,
    *,
    lattice_scale: float = 1.0,
    zero_shift: float = 0.0,
    fwhm_deg: float = 0.1,
    eta: float = 0.5,
    ka2_ratio: float = 0.0,
) -> np.ndarray:
    """Unit-scale calculated pattern of library phase ``name`` on ``two_theta`` (ascending, degrees).

    The strongest reflection has area 1; all peaks have FWHM ``fwhm_deg`` and Lorentzian fraction
    ``eta``. ``ka2_ratio`` > 0 adds Kα2 copies (the Kα2 wavelength of the library's anode). Raises
    ``KeyError`` for an unknown phase.
    """
    if name not in library.peaks:
        raise KeyError(f"phase {name!r} is not in the library")
    peaks = library.peaks[name]
    x = np.asarray(two_theta, dtype=np.float64)
    parts = phase_parts(
        x,
        peaks.d * lattice_scale,
        peaks.intensity / 100.0,
        library.wavelength,
        zero_shift=zero_shift,
        fwhm_of_theta=(fwhm_deg, 0.0, 0.0),
        wavelength2=ka2_wavelength(library.wavelength),
        ka2_ratio=ka2_ratio,
    )
    return eta * parts[0] + (1.0 - eta) * parts[1]
