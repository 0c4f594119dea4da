"""Peak widths measured from data, and the significant peaks a fit leaves in its residual."""

from __future__ import annotations

import math

import numpy as np

from labeltune.core.xrd.misfit import systematic_variance
from labeltune.core.xrd.results import UnexplainedPeak

MIN_HEIGHT = 0.005
"""An unexplained peak is at least this high relative to the measurement's strongest peak (ADR 0069:
lower peaks can be significant in long scans, but are not worth a user's question)."""
MIN_SIGNIFICANCE = 5.0
"""... and its amplitude this many of its own standard deviations (``residual_significance``): beyond
the largest of the ~1 000 independent peak positions of a scan's noise (a 5σ Gaussian tail is 3·10⁻⁷)."""
MIN_OF_CALCULATED = 1.5
"""... and this multiple of the calculated peak height within ±1 FWHM (above background): a fitted
peak measured stronger than calculated (texture, a wrong peak shape) is not a new peak."""
KERNEL_FWHM = 3.0
"""The matched filter reaches this many FWHM each side of a position (its mean is removed: a broad misfit
of the background does not look like a peak)."""
MERGE_FWHM = 3.0
"""Residual maxima closer than this many FWHM are one peak."""
MAX_PEAKS = 12
QUIET_SIGNIFICANCE = 5.0
"""A residual peak this significant is left out of the noise estimate (``quiet_points``): the bar of a
reported peak (``MIN_SIGNIFICANCE``), without its height bar. At 4, a 4.2σ bump on the tail misfit of a
dara scan's broad major peak (FWHM 0.34°) took 2° of that misfit out of the noise, and an absent ZnO
absorbing the misfit passed the F-test (ADR 0076)."""
UNEXPLAINED_REACH_FWHM = 10.0
"""An unexplained peak's points, left out of the noise estimate (``quiet_points``), reach at most this
many FWHM each side (its tails and Kα2 copy: as far as the residual stays above the noise)."""


def estimate_fwhm(x: np.ndarray, y: np.ndarray, peaks: int = 5) -> float:
    """FWHM (degrees) of the sharpest of the ``peaks`` strongest peaks above a rough baseline.

    The sharpest, so that a broad phase does not hide a sharp one; clipped to 2 points-2°.
    """
    step = float(np.median(np.diff(x)))
    base = float(np.percentile(y, 10))
    smooth = np.convolve(y, np.ones(3) / 3.0, mode="same")
    top = float(smooth[1:-1].max())
    inner = np.arange(1, len(x) - 1)
    is_max = (smooth[inner] >= smooth[inner - 1]) & (smooth[inner] > smooth[inner + 1])
    maxima = inner[is_max & (smooth[inner] > base + 0.2 * (top - base))]
    maxima = maxima[np.argsort(-smooth[maxima])]
    widths: list[float] = []
    used: list[float] = []
    for i in maxima:
        if any(abs(x[i] - u) < 1.0 for u in used):
            continue
        used.append(float(x[i]))
        half = base + 0.5 * (smooth[i] - base)
        left = int(i)
        while left > 0 and smooth[left] > half:
            left -= 1
        right = int(i)
        while right < len(x) - 1 and smooth[right] > half:
            right += 1
        widths.append(float(x[right] - x[left]))
        if len(used) >= peaks:
            break
    width = min(widths) if widths else 0.1
    return float(np.clip(width, max(2.0 * step, 0.02), 2.0))


def _running_max(values: np.ndarray, half: int) -> np.ndarray:
    """Maximum of ``values`` within ±``half`` points of each point."""
    out = values.copy()
    for k in range(1, min(half, len(values) - 1) + 1):
        np.maximum(out[:-k], values[k:], out=out[:-k])
        np.maximum(out[k:], values[:-k], out=out[k:])
    return out


def residual_significance(
    x: np.ndarray, observed: np.ndarray, calculated: np.ndarray, background: np.ndarray, fwhm: float
) -> tuple[np.ndarray, np.ndarray]:
    """(amplitude, z) of a peak of width ``fwhm`` at every point of the residual ``observed - calculated``.

    A matched filter: at each point a Gaussian of the fit's FWHM, less its mean over ±``KERNEL_FWHM``
    FWHM, is fitted to the residual by weighted least squares (weights from ``misfit.systematic_variance``:
    counts plus the fit's own misfit under its peaks). ``z`` is the amplitude over its esd, divided by the
    robust spread (1.4826 MAD) of ``z`` over the whole pattern: serially correlated residuals and an
    imperfect variance model make the raw ratio too large by the same factor everywhere, so the pattern
    calibrates its own noise. Within ``KERNEL_FWHM`` FWHM of either end ``z`` is 0 (the filter is cut).
    """
    n = len(x)
    step = float(np.median(np.diff(x))) if n > 1 else 1.0
    half = max(2, round(KERNEL_FWHM * fwhm / step))
    if n < 2 * half + 5:
        return np.zeros(n), np.zeros(n)
    offsets = np.arange(-half, half + 1) * step
    kernel = np.exp(-4.0 * math.log(2.0) * (offsets / fwhm) ** 2)
    kernel -= kernel.mean()
    weight = 1.0 / systematic_variance(x, observed, calculated, background, fwhm)
    numerator = np.convolve((observed - calculated) * weight, kernel[::-1], mode="same")
    information = np.convolve(weight, (kernel * kernel)[::-1], mode="same")
    amplitude = numerator / np.maximum(information, 1e-300)
    z = amplitude * np.sqrt(information)
    z[:half] = 0.0
    z[n - half :] = 0.0
    inside = z[half : n - half]
    spread = 1.4826 * float(np.median(np.abs(inside - np.median(inside))))
    return amplitude, z / spread if spread > 0 else np.zeros(n)


def _new_peaks(
    x: np.ndarray,
    amplitude: np.ndarray,
    z: np.ndarray,
    net: np.ndarray,
    fwhm: float,
    min_z: float,
    min_height: float,
) -> np.ndarray:
    """Residual peaks no phase's misfit explains, most significant first (indices into ``x``).

    Local maxima of the matched filter's ``z`` at least ``min_z``, ``amplitude`` at least ``min_height``
    and ``MIN_OF_CALCULATED`` x the calculated peak there (``net``, above background).
    """
    step = float(np.median(np.diff(x)))
    calc_peak = _running_max(np.maximum(net, 0.0), max(1, round(fwhm / step)))
    inner = np.arange(1, len(x) - 1)
    is_max = (z[inner] >= z[inner - 1]) & (z[inner] > z[inner + 1])
    passes = (
        (z[inner] >= min_z)
        & (amplitude[inner] >= min_height)
        & (amplitude[inner] >= MIN_OF_CALCULATED * calc_peak[inner])
    )
    candidates = inner[is_max & passes]
    return candidates[np.argsort(-z[candidates])]


def residual_peaks(
    x: np.ndarray,
    observed: np.ndarray,
    calculated: np.ndarray,
    background: np.ndarray,
    fwhm: float,
    wavelength: float,
) -> list[UnexplainedPeak]:
    """Significant positive peaks of observed - calculated, sorted by 2θ (at most ``MAX_PEAKS``).

    A local maximum of the matched filter's significance (``residual_significance``) counts when it
    reaches ``MIN_SIGNIFICANCE``, its amplitude ``MIN_HEIGHT`` of the strongest observed peak (above
    background) and ``MIN_OF_CALCULATED`` of the calculated peak intensity there (ADR 0069; before it a
    fixed 4 % of the strongest peak, which hid impurity peaks of 1.6-3.2 % at 7-15σ).
    """
    n = len(x)
    if n < 5:
        return []
    top = float(np.max(observed - background))
    if not top > 0:
        return []
    step = float(np.median(np.diff(x)))
    amplitude, z = residual_significance(x, observed, calculated, background, fwhm)
    candidates = _new_peaks(
        x, amplitude, z, calculated - background, fwhm, MIN_SIGNIFICANCE, MIN_HEIGHT * top
    )
    chosen: list[int] = []
    for i in candidates:
        if all(abs(x[i] - x[c]) > MERGE_FWHM * fwhm for c in chosen):
            chosen.append(int(i))
        if len(chosen) >= MAX_PEAKS:
            break
    # where the peak is and how high: the residual smoothed over half a FWHM, at its maximum near the
    # filter's (which sits between Kα1 and Kα2)
    half = max(1, round(fwhm / step))
    box = max(1, round(0.5 * fwhm / step))
    smooth = np.convolve(observed - calculated, np.ones(box) / box, mode="same")
    out = []
    for i in sorted(chosen, key=lambda c: x[c]):
        lo = max(i - half, 0)
        at = lo + int(np.argmax(smooth[lo : i + half + 1]))
        theta = math.radians(float(x[at])) / 2.0
        d = wavelength / (2.0 * math.sin(theta)) if theta > 0 else math.inf
        out.append(UnexplainedPeak(float(x[at]), float(d), float(smooth[at] / top), float(z[i])))
    return out


def quiet_points(
    x: np.ndarray,
    observed: np.ndarray,
    calculated: np.ndarray,
    background: np.ndarray,
    fwhm: float,
    wavelength: float,
) -> np.ndarray:
    """The points outside the significant peaks of the fit's residual (ADR 0076).

    Such a peak is a phase the fit lacks (an impurity, a phase outside the library), not noise; the noise
    scale of the presence tests is estimated from the other points (``misfit.quiet_sum``). The peaks are
    those of the matched filter (``residual_significance``) at ``QUIET_SIGNIFICANCE`` or more, of any
    height: an unknown phase's reflections under ``residual_peaks``' height bar for a user's question
    are not noise either. Each peak's
    points run from its maximum as far as the residual, averaged over one FWHM, stays one counting σ
    above zero (its tails and Kα2 copy), at most ``UNEXPLAINED_REACH_FWHM`` FWHM, plus one FWHM. A
    phase's intensity misfit is not among them (1.5 x the calculated peak there, as ``residual_peaks``).
    """
    quiet = np.ones(len(x), dtype=bool)
    if len(x) < 5:
        return quiet
    step = float(np.median(np.diff(x)))
    amplitude, z = residual_significance(x, observed, calculated, background, fwhm)
    peaks = _new_peaks(x, amplitude, z, calculated - background, fwhm, QUIET_SIGNIFICANCE, 0.0)
    width = max(1, round(fwhm / step))
    excess = (observed - calculated) / np.sqrt(np.maximum(observed, 1.0))
    smooth = np.convolve(excess, np.ones(width) / width, mode="same")
    reach = round(UNEXPLAINED_REACH_FWHM * fwhm / step)
    for centre in peaks:
        if not quiet[centre]:
            continue
        lo, hi = centre, centre
        while lo > max(centre - reach, 0) and smooth[lo - 1] > 1.0:
            lo -= 1
        while hi < min(centre + reach, len(x) - 1) and smooth[hi + 1] > 1.0:
            hi += 1
        quiet[max(lo - width, 0) : hi + width + 1] = False
    return quiet
