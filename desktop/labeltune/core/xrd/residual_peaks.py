"""Peak widths measured from data, and the strong peaks a fit leaves in its residual."""

from __future__ import annotations

import math

import numpy as np

from labeltune.core.xrd.results import UnexplainedPeak

MIN_HEIGHT = 0.04
"""An unexplained peak is at least this high relative to the measurement's strongest peak."""
MIN_SIGMA = 5.0
"""... and this many noise standard deviations (of the smoothed residual)."""
MIN_OF_CALCULATED = 1.5
"""... and this multiple of the calculated peak height within ±1 FWHM (above background): a fitted
peak measured stronger than calculated (texture, a wrong peak shape) is not a new peak."""
MERGE_FWHM = 3.0
"""Residual maxima closer than this many FWHM are one peak."""
MAX_PEAKS = 12


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


def _box_smooth(values: np.ndarray, points: int) -> np.ndarray:
    if points <= 1:
        return values.copy()
    kernel = np.ones(points) / points
    return np.convolve(values, kernel, mode="same")


def _running_max(values: np.ndarray, half: int) -> np.ndarray:
    """Maximum of ``values`` within ±``half`` points of each point."""
    out = values.copy()
    for k in range(1, min(half, len(values) - 1) + 1):
        np.maximum(out[:-k], values[k:], out=out[:-k])
        np.maximum(out[k:], values[:-k], out=out[k:])
    return out


def residual_peaks(
    x: np.ndarray,
    observed: np.ndarray,
    calculated: np.ndarray,
    background: np.ndarray,
    fwhm: float,
    wavelength: float,
) -> list[UnexplainedPeak]:
    """Strong positive peaks of observed - calculated, sorted by 2θ (at most ``MAX_PEAKS``).

    The residual is smoothed over about half a FWHM; a local maximum counts when it passes
    ``MIN_HEIGHT`` of the strongest observed peak (above background), ``MIN_SIGMA`` noise deviations
    and ``MIN_OF_CALCULATED`` of the calculated peak intensity there. Noise is estimated from
    point-to-point differences in units of sqrt(intensity), so counts and scaled data both work.
    """
    n = len(x)
    if n < 5:
        return []
    step = float(np.median(np.diff(x)))
    points = max(1, round(0.5 * fwhm / step))
    residual = observed - calculated
    smooth = _box_smooth(residual, points)
    level = np.maximum(calculated, 1e-12)
    diffs = np.abs(np.diff(residual)) / np.sqrt(level[1:] + level[:-1])
    noise_unit = 1.4826 * float(np.median(diffs))
    sigma = noise_unit * np.sqrt(level) / math.sqrt(points)
    top = float(np.max(observed - background))
    if not top > 0:
        return []
    calc_peak = _running_max(np.maximum(calculated - background, 0.0), max(1, round(fwhm / step)))
    threshold = np.maximum.reduce(
        [np.full(n, MIN_HEIGHT * top), MIN_SIGMA * sigma, MIN_OF_CALCULATED * calc_peak]
    )
    inner = np.arange(1, n - 1)
    is_max = (smooth[inner] >= smooth[inner - 1]) & (smooth[inner] > smooth[inner + 1])
    candidates = inner[is_max & (smooth[inner] > threshold[inner])]
    order = candidates[np.argsort(-smooth[candidates])]
    chosen: list[int] = []
    for i in order:
        if all(abs(x[i] - x[c]) > MERGE_FWHM * fwhm for c in chosen):
            chosen.append(int(i))
        if len(chosen) >= MAX_PEAKS:
            break
    out = []
    for i in sorted(chosen, key=lambda c: x[c]):
        theta = math.radians(float(x[i])) / 2.0
        d = wavelength / (2.0 * math.sin(theta)) if theta > 0 else math.inf
        out.append(UnexplainedPeak(two_theta=float(x[i]), d=float(d), height=float(smooth[i] / top)))
    return out
