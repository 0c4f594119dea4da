"""Measured reference patterns as library phases: their profiles in the fit and in the simulator.

Full-pattern summation (FULLPAT, powdR): a phase that no CIF describes well (clays, poorly ordered or
turbostratic phases) enters the fit as its own measured pattern, scaled. Its stored profile
(``Library.profiles``) is background-stripped and normalised so that its strongest peak's Kα1 area is 1,
as a CIF phase's unit-scale profile is; its ``scattering_power`` is ``RIR x`` corundum's. So the weight
fractions of both kinds come from one rule, ``w ∝ scale x s³ / scattering_power`` (``quantify``).

A measured reference follows the common zero shift and gets one small own shift: its lattice scale ``s``
maps the profile as Bragg's law does (``sin θ_ref = s sin θ``, d-spacings times ``s``), with intensity
times ``s⁻³`` (a larger cell scatters less per weight, as the simulator and the CIF phases have it). Its
widths are those of the instrument it was measured on (ADR 0047).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from labeltune.core.xrd.fit_engine import ProfileProvider
from labeltune.core.xrd.library import Library, ReferenceProfile
from labeltune.core.xrd.peak_profile import ka2_wavelength, pseudo_voigt_parts

MEASURED = "measured"
PROFILE_STEP = 0.01
"""Degrees between the stored profile's points."""
PEAK_FLOOR = 0.02
"""Maxima of the profile above this share of its strongest one become the phase's (stick) peak list."""


def mapped_profile(
    profile: ReferenceProfile, x: np.ndarray, *, zero_shift: float = 0.0, lattice_scale: float = 1.0
) -> np.ndarray:
    """The profile on ``x`` after the zero shift and the d-spacing scale (intensity x ``s⁻³``)."""
    half = np.radians(np.asarray(x, dtype=np.float64) - zero_shift) / 2.0
    sin_ref = np.clip(lattice_scale * np.sin(half), -1.0, 1.0)
    source = np.degrees(2.0 * np.arcsin(sin_ref))
    values = np.interp(source, profile.two_theta, profile.intensity, left=0.0, right=0.0)
    return values / lattice_scale**3  # type: ignore[no-any-return]


def _provider(profile: ReferenceProfile) -> ProfileProvider:
    def parts(x: np.ndarray, zero_shift: float, lattice_scale: float) -> np.ndarray:
        values = mapped_profile(profile, x, zero_shift=zero_shift, lattice_scale=lattice_scale)
        return np.stack([values, values])  # the same for any Lorentzian fraction

    return parts


def reference_providers(
    library: Library, names: Sequence[str], wavelength: float
) -> list[ProfileProvider | None]:
    """The fit's profile provider per phase: measured references get theirs, CIF phases None.

    A reference is stored at the library's wavelength; a pattern at another one is converted before
    the fit (``quantify`` checks), so ``wavelength`` only guards that.
    """
    if abs(wavelength - library.wavelength) > 1e-3:
        raise ValueError(f"the pattern is at {wavelength} Å, the library at {library.wavelength} Å")
    return [_provider(library.profiles[n]) if n in library.profiles else None for n in names]


def add_profiles_to_simulated(
    y: np.ndarray,
    grid: np.ndarray,
    library: Library,
    phase_index: np.ndarray,
    pattern_index: np.ndarray,
    weight: np.ndarray,
    strain: np.ndarray,
    displacement: np.ndarray,
    factor: float = 1.0,
) -> None:
    """Add measured references to simulated patterns ``y`` (n, points) in the simulator's units.

    One entry per present phase slot: its phase (library index), pattern, weight fraction, d-spacing
    scale and the pattern's sample displacement (2θ shifts by D cos θ). A CIF peak of relative
    intensity 1 adds ``power`` x weight counts summed over points; the profile's strongest peak has unit
    area in degrees, hence the factor ``step``. Relative powers as the simulator's peak table has them.
    ``factor`` multiplies every profile (the simulator's wavelength correction of the ``s⁻³`` term).
    """
    names = library.names
    powers = np.array([p.scattering_power for p in library.phases], dtype=np.float64)
    power_max = float(powers.max())
    step = float(grid[1] - grid[0]) if len(grid) > 1 else 1.0
    for k in range(len(phase_index)):
        name = names[int(phase_index[k])]
        profile = library.profiles.get(name)
        if profile is None:
            continue
        i = int(pattern_index[k])
        shifted = grid - displacement[i] * np.cos(np.radians(grid) / 2.0)
        values = mapped_profile(profile, shifted, lattice_scale=float(strain[k]))
        amount = weight[k] * powers[int(phase_index[k])] / power_max * step * factor
        y[i] += (amount * values).astype(y.dtype)


def strip_background(x: np.ndarray, y: np.ndarray, width_deg: float) -> np.ndarray:
    """A smooth background under ``y`` by SNIP clipping (Ryan et al. 1988) with a ``width_deg`` window.

    Each pass replaces a point by the mean of its neighbours at ±k points when that is lower; k grows to
    the window, so peaks narrower than the window are cut away and broad humps (amorphous halos, the
    clay bands the reference is for) wider than it stay in the profile.
    """
    step = float(np.median(np.diff(x))) if len(x) > 1 else 1.0
    top = max(1, min(int(width_deg / step / 2), len(x) // 4))
    v = np.log(np.log(np.sqrt(np.maximum(y, 0.0) + 1.0) + 1.0) + 1.0)  # LLS: tames the dynamic range
    for k in range(1, top + 1):
        mean = np.empty_like(v)
        mean[k:-k] = 0.5 * (v[: -2 * k] + v[2 * k :])
        mean[:k] = v[:k]
        mean[-k:] = v[-k:]
        v = np.minimum(v, mean)
    return (np.exp(np.exp(v) - 1.0) - 1.0) ** 2 - 1.0  # type: ignore[no-any-return]


def strongest_peak_area(x: np.ndarray, y: np.ndarray, wavelength: float) -> float:
    """Kα1 area (intensity x degrees) of the strongest peak of a net profile, by a local pseudo-Voigt fit.

    Centre, FWHM and Kα2 (none or half, at the anode's Kα2 line) are scanned; the Lorentzian and Gaussian
    areas and a constant are fitted by least squares in a window of ±4 FWHM. An RIR compares strongest
    peaks, so this is what the profile is normalised by when a sidecar gives the RIR as a number.
    """
    k = int(np.argmax(y))
    top = float(y[k])
    left, right = k, k
    while left > 0 and y[left] > top / 2:
        left -= 1
    while right < len(y) - 1 and y[right] > top / 2:
        right += 1
    step = float(np.median(np.diff(x)))
    width = max(float(x[right] - x[left]), 2.0 * step)
    window = np.abs(x - x[k]) <= 4.0 * width
    xs, ys = x[window], y[window]
    wavelength2 = ka2_wavelength(wavelength)
    best = (math.inf, top * width)
    for ratio in (0.0, 0.5) if wavelength2 else (0.0,):
        for fwhm in width * np.linspace(0.4, 1.2, 17):
            for centre in x[k] + fwhm * np.linspace(-0.3, 0.3, 7):
                centres, areas = np.array([centre]), np.array([1.0])
                if ratio and wavelength2:
                    theta = math.asin(min(1.0, wavelength2 / wavelength * math.sin(math.radians(centre) / 2)))
                    centres = np.array([centre, math.degrees(2.0 * theta)])
                    areas = np.array([1.0, ratio])
                parts = pseudo_voigt_parts(xs, centres, np.full(len(centres), fwhm), areas)
                design = np.column_stack([parts[0], parts[1], np.ones_like(xs)])
                coef, *_ = np.linalg.lstsq(design, ys, rcond=None)
                if coef[0] < 0 or coef[1] < 0:
                    continue
                cost = float(np.sum((design @ coef - ys) ** 2))
                if cost < best[0]:
                    best = (cost, float(coef[0] + coef[1]))
    return best[1]


def profile_peaks(profile: ReferenceProfile, wavelength: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(2θ, d, intensity 0-100) of the profile's local maxima above ``PEAK_FLOOR``: the stick pattern."""
    y = np.convolve(profile.intensity, np.ones(3) / 3.0, mode="same")
    inner = np.arange(1, len(y) - 1)
    is_max = (y[inner] >= y[inner - 1]) & (y[inner] > y[inner + 1]) & (y[inner] >= PEAK_FLOOR * y.max())
    idx = inner[is_max]
    two_theta = profile.two_theta[idx]
    d = wavelength / (2.0 * np.sin(np.radians(two_theta) / 2.0))
    return two_theta, d, 100.0 * y[idx] / max(float(y[idx].max()), 1e-300) if len(idx) else y[idx]
