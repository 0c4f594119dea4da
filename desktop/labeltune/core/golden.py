"""Golden-section search for the minimum of a unimodal function of one variable.

One implementation for the temperature of calibration (``core/calibration.py``) and the March–Dollase
r of the XRD fit (``core/xrd/quantify.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

_RATIO = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class Bracket:
    """The final interval [lo, hi] and its two probes ``(value, x)``, the lower x first."""

    lo: float
    hi: float
    left: tuple[float, float]
    right: tuple[float, float]

    @property
    def best(self) -> tuple[float, float]:
        """The probe with the smaller value, ``(value, x)``."""
        return min(self.left, self.right)


def golden_section(f: Callable[[float], float], lo: float, hi: float, iterations: int) -> Bracket:
    """Shrink [lo, hi] by the golden ratio ``iterations`` times towards the minimum of ``f``."""
    a, b = hi - _RATIO * (hi - lo), lo + _RATIO * (hi - lo)
    fa, fb = f(a), f(b)
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - _RATIO * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + _RATIO * (hi - lo)
            fb = f(b)
    return Bracket(lo, hi, (fa, a), (fb, b))
