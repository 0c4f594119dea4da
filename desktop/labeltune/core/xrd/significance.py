"""Whether the fit needs a phase, from the fit's statistics (ADR 0046); no SciPy.

Two questions, both at the confidence ``SIGNIFICANCE``:

* is a phase's scale factor distinguishable from zero: ``scale / scale_esd >= Z_MIN`` (one-sided normal
  quantile), the esd from the least-squares covariance (``quantify``);
* does the fit with the phase lower χ² by more than the parameters it adds would by chance: an F-test of
  the two nested fits, ``F = (χ²_without − χ²_with) / Δp / (χ²_with / (N − p))``, its degrees of freedom
  and F deflated for the serial correlation of the residuals (neighbouring points of a powder pattern are
  not independent when the model misses a little everywhere; Bérar & Lelann 1991).

A phase found by searching the whole library (``screening``) rather than proposed by the network is
tested at ``1 − SIGNIFICANCE`` divided by the number of phases searched (Bonferroni): among 50 absent
phases one would otherwise pass by chance about one pattern in twenty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

SIGNIFICANCE = 0.999
"""Confidence at which a phase counts as present (scale test and F-test)."""
Z_MIN = 3.09
"""The one-sided normal quantile of ``SIGNIFICANCE``: a scale below this many esds is not a detection."""
DETECTION_SIGMAS = 3.0
"""A phase not found would have been seen at a scale of this many esds (its detection limit)."""


class _Fit(Protocol):
    chi2_sum: float | None
    noise_chi2: float | None
    n_points: int
    n_parameters: int
    residual_correlation: float


def noise_sum(fit: _Fit) -> float:
    """The χ² sum a fit's noise is estimated from: ``noise_chi2`` (outside unexplained peaks), else all of it.

    A peak no phase of the fit explains (an impurity, a phase outside the library) is signal the model
    lacks, not noise: counted as noise, a 2 wt % unknown phase multiplied a clinker's noise scale by eight
    and hid its 1.5 % periclase (ADR 0076). The χ² drop of a phase (``phase_test``) still counts every point.
    """
    chi2 = fit.noise_chi2 if fit.noise_chi2 is not None else fit.chi2_sum
    return chi2 if chi2 is not None else 0.0


def noise_scale(fit: _Fit) -> float:
    """A fit's reduced χ² × its serial-correlation factor: the variance unit of its esds and χ² drops."""
    reduced = noise_sum(fit) / max(fit.n_points - fit.n_parameters, 1)
    return reduced * correlation_factor(fit.residual_correlation)


def correlation_factor(rho: float) -> float:
    """How much serially correlated residuals (lag-1 correlation ``rho``) inflate χ² sums: (1+ρ)/(1−ρ)."""
    rho = min(max(rho, 0.0), 0.95)
    return (1.0 + rho) / (1.0 - rho)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1.0 - x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def f_survival(f: float, d1: float, d2: float) -> float:
    """P(F > f) for an F(d1, d2) variable."""
    if f <= 0.0:
        return 1.0
    return incomplete_beta(d2 / 2.0, d1 / 2.0, d2 / (d2 + d1 * f))


def f_quantile(alpha: float, d1: float, d2: float) -> float:
    """The f with P(F > f) = ``alpha`` for an F(``d1``, ``d2``) variable, by bisection."""
    lo, hi = 0.0, 1.0
    while f_survival(hi, d1, d2) > alpha and hi < 1e8:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if f_survival(mid, d1, d2) > alpha:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class PhaseTest:
    """The F-test of a phase: ``f`` the statistic, ``p`` its probability by chance, ``significant``."""

    f: float
    p: float
    significant: bool


def bonferroni_alpha(tests: int) -> float:
    """Bonferroni: each of ``tests`` searched alternatives at this level (all at 1 − SIGNIFICANCE)."""
    return (1.0 - SIGNIFICANCE) / max(tests, 1)


def normal_quantile(alpha: float) -> float:
    """The z with P(Z > z) = ``alpha`` for a standard normal Z (one-sided), by bisection."""
    lo, hi = -10.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * math.erfc(mid / math.sqrt(2.0)) > alpha:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def phase_test(with_phase: _Fit, without: _Fit, alpha: float = 1.0 - SIGNIFICANCE) -> PhaseTest:
    """Whether the fit ``with_phase`` is significantly better (at level ``alpha``) than ``without``."""
    if with_phase.chi2_sum is None or without.chi2_sum is None:
        return PhaseTest(0.0, 1.0, False)
    added = max(with_phase.n_parameters - without.n_parameters, 1)
    factor = correlation_factor(with_phase.residual_correlation)
    freedom = max((with_phase.n_points - with_phase.n_parameters) / factor, 1.0)
    rest = max(noise_sum(with_phase), 1e-300) / max(with_phase.n_points - with_phase.n_parameters, 1)
    f = max(without.chi2_sum - with_phase.chi2_sum, 0.0) / added / rest / factor
    p = f_survival(f, added, freedom)
    return PhaseTest(f, p, p < alpha)


def chi2_gain(fit: _Fit, better: _Fit) -> float:
    """How much lower ``better``'s χ² is than ``fit``'s (two fits of one pattern, not nested).

    In units of ``better``'s reduced χ² × its serial-correlation factor.
    """
    return (float(fit.chi2_sum or 0.0) - float(better.chi2_sum or 0.0)) / max(noise_scale(better), 1e-300)
