"""A noise model with a systematic term: evidence that only misfit at other phases' peaks gives is discounted.

Poisson weights assume the model is right. With imperfect structures (wrong atomic positions or Biso,
a slightly wrong cell, texture, microabsorption) the calculated peaks of the identified phases are missed
by a few per cent of their height, far above counting noise, and a further phase with many weak peaks —
a weak scatterer such as Li2CO3 — absorbs part of that misfit and passes a test built on Poisson weights
(ADR 0046, addendum). Here each point's variance gets a systematic term proportional to the calculated
intensity of the phases already in the fit (ADR 0056)::

    var_i = max(y_i, floor) + (k · envelope_i)²

``envelope`` is the calculated pattern above background of the fit *without* the candidate, dilated over
``ENVELOPE_FWHM`` peak widths each side (a shifted or wrongly wide peak misses beside its calculated
position too); ``k`` (the relative misfit, a few per cent) is the least-squares estimate of the excess
of the squared residuals over counting noise against the squared calculated peaks. A candidate's own
peaks in clean regions keep their Poisson weight; where it only improves the fit at the other phases'
peaks its evidence counts for little. The same weights give misfit-aware esds
(``fit_covariance.scale_covariance``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from labeltune.core.xrd.significance import (
    DETECTION_SIGMAS,
    PhaseTest,
    correlation_factor,
    f_quantile,
    noise_scale,
    phase_test,
)

ENVELOPE_FWHM = 1.0
"""The systematic term covers this many FWHM on each side of the calculated peaks."""
CORRELATION_FWHM = 8.0
"""Bérar–Lelann's factor sums the residuals' autocorrelation over at most this many peak widths."""
FLOOR_SHARE = 1e-2
"""The Poisson floor (share of the maximum), as the fit's own weights (``fit_engine.FitData``)."""


def envelope(net: np.ndarray, half_width: int) -> np.ndarray:
    """The running maximum of ``net`` (clipped at 0) over ``half_width`` points each side."""
    net = np.maximum(np.asarray(net, dtype=np.float64), 0.0)
    h = max(int(half_width), 0)
    if h == 0 or len(net) == 0:
        return net
    padded = np.pad(net, h, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * h + 1).max(axis=1)


def poisson_variance(y: np.ndarray) -> np.ndarray:
    """Counting variance with the fit's floor (1 % of the maximum)."""
    floor = max(FLOOR_SHARE * float(np.max(np.abs(y))), 1e-12)
    return np.maximum(y, floor)


def systematic_variance(
    x: np.ndarray,
    y: np.ndarray,
    calculated: np.ndarray,
    background: np.ndarray,
    fwhm_deg: float,
    leave_out: np.ndarray | None = None,
) -> np.ndarray:
    """Per-point variance counts + (k · envelope)² of a fit (``calculated``, ``background``) to ``y``.

    ``leave_out`` (one phase's calculated component) is left out of the envelope, not of ``k``: the
    noise a phase's presence is tested against is the misfit of the *other* phases (ADR 0074). Its own
    peaks, absent under the hypothesis tested, bring none.
    """
    step = float(np.median(np.diff(x))) if len(x) > 1 else 1.0
    net = np.maximum(calculated - background, 0.0)
    counts = poisson_variance(y)
    excess = (y - calculated) ** 2 - counts
    a = net * net
    norm = float(a @ a)
    k2 = max(float(a @ excess) / norm, 0.0) if norm > 0 else 0.0
    if leave_out is not None:
        net = np.maximum(calculated - background - leave_out, 0.0)
    env = envelope(net, round(ENVELOPE_FWHM * fwhm_deg / max(step, 1e-12)))
    return counts + k2 * env * env


def correlation_lags(fwhm_deg: float, step_deg: float) -> int:
    """The most lags Bérar–Lelann's sum runs over: ``CORRELATION_FWHM`` peak widths in points."""
    return max(1, round(CORRELATION_FWHM * fwhm_deg / max(step_deg, 1e-12)))


def fwhm_of(fit: Any) -> float:
    """The median fitted FWHM of a fit's phases (0.1° without phases)."""
    return float(np.median([p.fwhm_deg for p in fit.phases])) if fit.phases else 0.1


@dataclass
class _Weighted:
    chi2_sum: float | None
    noise_chi2: float | None
    n_points: int
    n_parameters: int
    residual_correlation: float


def quiet_sum(residual: np.ndarray, quiet: np.ndarray | None) -> float:
    """Σ residual² over the ``quiet`` points (outside unexplained peaks), scaled to all points (ADR 0076)."""
    if quiet is None or not quiet.any() or quiet.all():
        return float(residual @ residual)
    kept = residual[quiet]
    return float(kept @ kept) * len(residual) / len(kept)


def quiet_noise(residual: np.ndarray, quiet: np.ndarray | None) -> tuple[float, float]:
    """(``quiet_sum``, the lag-1 correlation of ``residual`` over the ``quiet`` points): a fit's noise."""
    noisy = residual if quiet is None else residual * quiet
    rho = float(noisy[1:] @ noisy[:-1]) / max(float(noisy @ noisy), 1e-300)
    return quiet_sum(residual, quiet), rho


def _weighted(fit: Any, weight: np.ndarray, lags: int) -> _Weighted:
    r = (fit.observed - fit.calculated) * np.sqrt(weight)
    quiet = fit.quiet  # noise from outside the fit's unexplained peaks (ADR 0076)
    factor = integrated_correlation(r if quiet is None else r * quiet, lags)
    rho = (factor - 1.0) / (factor + 1.0)  # as the ρ whose (1+ρ)/(1−ρ) it is: ``phase_test`` takes ρ
    return _Weighted(float(r @ r), quiet_sum(r, quiet), fit.n_points, fit.n_parameters, rho)


PEAK_WINDOW_FWHM = 2.0
"""The candidate's most evident peak is left out over this many FWHM on each side (``MisfitTest.t_rest``)."""


@dataclass(frozen=True)
class MisfitTest:
    """The candidate's evidence under the misfit-aware weights: ``t`` (scale / esd) and the F-test.

    ``t_rest`` is ``t`` without the candidate's most evident peak (at ``best_peak`` 2θ; ADR 0067): a phase
    is more than one reflection, and a single bump beside the known phases' peaks — an impurity outside
    the library, a misfit — can be reached by any phase with a reflection within its lattice range.
    """

    t: float
    test: PhaseTest
    t_rest: float = 0.0
    best_peak: float = 0.0


def misfit_test(with_phase: Any, without: Any, name: str, alpha: float) -> MisfitTest:
    """Whether ``with_phase`` needs ``name`` beyond the misfit of ``without`` (both ``FitResult``).

    The weights come from ``without`` (the phases already there); on them the χ² drop of the nested fits
    is F-tested as in ``significance.phase_test``, and the candidate's profile is fitted to the residual
    of ``without`` by one-parameter weighted least squares: ``t`` = amount / esd, the esd scaled by the
    reduced χ² and the serial-correlation factor under these weights; ``t_rest`` the same least squares
    without the candidate's most evident peak (``best_peak``, ADR 0067).
    """
    component = with_phase.components.get(name)
    if component is None or not np.any(component > 0) or len(without.observed) != len(with_phase.observed):
        return MisfitTest(0.0, PhaseTest(0.0, 1.0, False))
    weight, lags = _misfit_weights(with_phase, without)
    a, b = _weighted(with_phase, weight, lags), _weighted(without, weight, lags)
    test = phase_test(a, b, alpha)
    assert a.chi2_sum is not None
    scale = noise_scale(a)
    information = weight * component * component
    evidence = weight * (without.observed - without.calculated) * component

    def t_over(kept: np.ndarray) -> float:
        norm = float(np.sum(information[kept]))
        if norm <= 0:
            return 0.0
        return float(np.sum(evidence[kept])) / norm / float(np.sqrt(max(scale, 1e-300) / norm))

    everywhere = np.ones(len(component), dtype=bool)
    step = float(np.median(np.diff(without.two_theta)))
    peak, rest = best_peak(component, evidence, round(PEAK_WINDOW_FWHM * fwhm_of(with_phase) / step))
    return MisfitTest(t_over(everywhere), test, t_over(rest), float(without.two_theta[peak]))


def _misfit_weights(with_phase: Any, without: Any) -> tuple[np.ndarray, int]:
    """The weights from ``without``'s misfit (peak widths from ``with_phase``) and the correlation lags."""
    fwhm = fwhm_of(with_phase)
    variance = systematic_variance(
        without.two_theta, without.observed, without.calculated, without.background, fwhm
    )
    return 1.0 / variance, correlation_lags(fwhm, float(np.median(np.diff(without.two_theta))))


def misfit_noise(fit: Any) -> tuple[np.ndarray, float]:
    """The misfit-aware weights of ``fit``'s points and the noise scale of its residual under them.

    What a search of the residual for further phases weighs with (``screening``): a major phase missed
    by 15 % at its few peaks inflates a single noise scale everywhere, and a 1 wt % phase with clean peaks
    beside them would score under the search's threshold (ADR 0074).
    """
    weight, lags = _misfit_weights(fit, fit)
    return weight, noise_scale(_weighted(fit, weight, lags))


def needed_scale(with_phase: Any, without: Any, name: str, z: float) -> float:
    """The scale of ``name`` at which :func:`misfit_test`'s ``t_rest`` would reach ``z`` (ADR 0072).

    ``with_phase`` fits ``name`` beside the phases of ``without``, at whatever scale (zero included).
    What a residual of ``without`` can show of the phase is the part of its unit profile ``u`` that the
    other phases' profiles do not take up (``u⊥``, weighted least squares under the weights of
    ``without``'s misfit): where its reflections coincide with theirs, they absorb them. ``t_rest`` at
    scale ``c`` is then about ``c Σ w u⊥ u / sqrt(s Σ w u²)`` over the points outside its most
    informative peak (``s`` the noise scale); ``z`` of it is what the decision asks. In the units of
    ``PhaseFit.scale``; infinite when nothing of the phase is left to see.
    """
    seen = _unseen_part(with_phase, without, name)
    return math.inf if seen is None else _t_rest_need(seen, with_phase, without, z)


def f_needed_scale(with_phase: Any, without: Any, name: str, alpha: float) -> float:
    """The scale of ``name`` at which :func:`misfit_test`'s F-test would be significant at ``alpha``.

    The test's statistic is ``Δχ² / (q s)`` for the ``q`` parameters the phase adds (its scale, lattice,
    width and shape) and noise scale ``s``; at scale ``c`` the χ² drop is about ``c² Σ w u⊥²`` (the part
    of the unit profile the other phases cannot take up, as in :func:`needed_scale`). So the scale
    needed is ``sqrt(q F_crit s / Σ w u⊥²)``: with five parameters at 99.9 % that is about 4.5 esds,
    more than the 3.1 of the scale test (ADR 0075). Infinite when nothing of the phase is left to see.
    """
    seen = _unseen_part(with_phase, without, name)
    return math.inf if seen is None else _f_need(seen, with_phase, without, alpha)


def decision_scale(with_phase: Any, without: Any, name: str, z: float, alpha: float) -> float:
    """The larger of :func:`needed_scale` and :func:`f_needed_scale`, the projection computed once."""
    seen = _unseen_part(with_phase, without, name)
    if seen is None:
        return math.inf
    return max(_t_rest_need(seen, with_phase, without, z), _f_need(seen, with_phase, without, alpha))


_Seen = tuple[np.ndarray, np.ndarray, np.ndarray, _Weighted]


def _t_rest_need(seen: _Seen, with_phase: Any, without: Any, z: float) -> float:
    unit, free, weight, weighted = seen
    information = weight * unit * unit
    step = float(np.median(np.diff(without.two_theta)))
    _, rest = best_peak(unit, information, round(PEAK_WINDOW_FWHM * fwhm_of(with_phase) / step))
    shown = float(np.sum((weight * free * unit)[rest]))
    norm = float(np.sum(information[rest]))
    scale = noise_scale(weighted)
    return z * math.sqrt(max(scale, 1e-300) * norm) / shown if shown > 0 and norm > 0 else math.inf


def _f_need(seen: _Seen, with_phase: Any, without: Any, alpha: float) -> float:
    _unit, free, weight, weighted = seen
    shown = float(np.sum(weight * free * free))
    if shown <= 0:
        return math.inf
    added = max(with_phase.n_parameters - without.n_parameters, 1)
    factor = correlation_factor(weighted.residual_correlation)  # as phase_test counts it
    freedom = max((with_phase.n_points - with_phase.n_parameters) / factor, 1.0)
    critical = f_quantile(alpha, added, freedom)
    return math.sqrt(added * critical * max(noise_scale(weighted), 1e-300) / shown)


def _unseen_part(with_phase: Any, without: Any, name: str) -> _Seen | None:
    """``name``'s unit profile, its part the others' profiles cannot take up, the weights, the fit's χ².

    The weights are those of ``without``'s misfit, the χ² sum and correlation ``with_phase``'s under
    them; None when the phase has no profile in the fitted range.
    """
    unit = with_phase.profiles.get(name)
    if unit is None or not np.any(unit > 0) or len(without.observed) != len(with_phase.observed):
        return None
    weight, lags = _misfit_weights(with_phase, without)
    weighted = _weighted(with_phase, weight, lags)
    others = [p for n, p in without.profiles.items() if n != name and np.any(p)]
    free = unit
    if others:
        basis = np.column_stack([*others, np.ones(len(unit)), np.linspace(-1.0, 1.0, len(unit))])
        root = np.sqrt(weight)
        beta = np.linalg.lstsq(basis * root[:, None], unit * root, rcond=None)[0]
        free = unit - basis @ beta
    return unit, free, weight, weighted


def best_peak(component: np.ndarray, evidence: np.ndarray, half_width: int) -> tuple[int, np.ndarray]:
    """The candidate's most evident peak and the mask of the points outside its window.

    The peak is the local maximum of ``component`` whose window (± ``half_width`` points) holds the most
    ``evidence``.
    """
    c = np.asarray(component, dtype=np.float64)
    h = max(int(half_width), 1)
    inner = c[1:-1]
    maxima = np.flatnonzero((inner >= c[:-2]) & (inner > c[2:]) & (inner > 1e-3 * float(c.max()))) + 1
    if len(maxima) == 0:
        maxima = np.array([int(np.argmax(c))])
    sums = np.concatenate([[0.0], np.cumsum(evidence)])
    lo, hi = np.maximum(maxima - h, 0), np.minimum(maxima + h + 1, len(c))
    peak = int(maxima[int(np.argmax(sums[hi] - sums[lo]))])
    rest = np.ones(len(c), dtype=bool)
    rest[max(peak - h, 0) : peak + h + 1] = False
    return peak, rest


def integrated_correlation(residual: np.ndarray, max_lag: int) -> float:
    """Bérar–Lelann's factor over the residuals' whole correlation length: 1 + 2 Σ ρ_k.

    The sum runs over lags 1..``max_lag`` and stops at the first ρ_k <= 0; at least 1. The lag-1 form
    ``(1+ρ)/(1−ρ)`` (``significance.correlation_factor``) assumes an exponential correlation and caps ρ
    at 0.95; a misfit that spans a whole peak keeps neighbouring points correlated over many steps.
    """
    r = np.asarray(residual, dtype=np.float64)
    r = r - float(np.mean(r))
    n = len(r)
    if n < 4:
        return 1.0
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(r, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    if acf[0] <= 0:
        return 1.0
    rho = acf / acf[0]
    total = 1.0
    for k in range(1, min(max_lag, n - 1) + 1):
        if rho[k] <= 0:
            break
        total += 2.0 * float(rho[k])
    return total


def decision_limit(phase: Any, needed: float) -> float:
    """``phase``'s detection limit from its scale esd, raised to the fraction at scale ``needed`` if larger.

    That limit ``L`` is the fraction at ``DETECTION_SIGMAS`` misfit-aware scale esds: an amount ``a``
    beside the others' ``T`` gives ``a / (a + T)``, so ``a / T = L / (1 - L)`` scales with the scale.
    """
    limit = phase.detection_limit
    at_limit = DETECTION_SIGMAS * phase.scale_esd_misfit
    if not 0.0 < limit < 1.0 or at_limit <= 0.0:
        return limit
    if not math.isfinite(needed):
        return 1.0
    ratio = limit / (1.0 - limit) * needed / at_limit
    return max(limit, ratio / (1.0 + ratio))
