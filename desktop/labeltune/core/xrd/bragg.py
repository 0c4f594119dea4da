"""Bragg's law, once: λ = 2 d sin θ, between d-spacings (Å) and diffraction angles 2θ (degrees).

Every part of the XRD side (peak lists, simulation, the profile fit, patterns read at another wavelength,
the plot's read-out and overlays) converts through these three functions.
"""

from __future__ import annotations

import math

import numpy as np


def two_theta_of_d(d: np.ndarray, wavelength: float) -> tuple[np.ndarray, np.ndarray]:
    """2θ (degrees) of spacings ``d`` at ``wavelength``, and a mask of those that diffract (λ ≤ 2d).

    Where a spacing does not diffract the angle is 180° (the arcsine clipped); use the mask.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        sin_theta = wavelength / (2.0 * np.asarray(d, dtype=np.float64))
        two_theta = np.degrees(2.0 * np.arcsin(np.clip(sin_theta, -1.0, 1.0)))
    return two_theta, (sin_theta > 0) & (sin_theta <= 1.0)


def d_of_two_theta(two_theta: np.ndarray, wavelength: float) -> np.ndarray:
    """The spacings (Å) that diffract at ``two_theta`` (degrees); infinite at 2θ ≤ 0."""
    sin_theta = np.sin(np.radians(np.asarray(two_theta, dtype=np.float64)) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = wavelength / (2.0 * sin_theta)
    return np.where(sin_theta > 0, d, np.inf)


def d_spacing(two_theta: float, wavelength: float) -> float:
    """One angle's spacing (Å), for read-outs; infinite at 2θ ≤ 0."""
    sin_theta = math.sin(math.radians(two_theta) / 2.0)
    return wavelength / (2.0 * sin_theta) if sin_theta > 0 else math.inf
