"""Non-linear optimisation of the quantification fit: lattice-scale grid search, Levenberg-Marquardt."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence

import numpy as np

from labeltune.core.progress import check_stop
from labeltune.core.xrd.fit_engine import INDEX_A, INDEX_B, INDEX_ZERO, FitData, Model

log = logging.getLogger(__name__)

_MAX_REJECTED = 12
COARSE_MINIMA = 3
"""The coarse lattice scan's lowest local minima that the fine scan also searches around (ADR 0071)."""
_DEG_PER_RAD = 180.0 / math.pi
TIE = 1e-9
"""Relative χ² difference below which two scan values fit equally well."""


def lattice_search(
    model: Model,
    data: FitData,
    params: np.ndarray,
    fwhm: float,
    ratio: float,
    search: float,
    stop_event: threading.Event | None,
    only: Sequence[int] | None = None,
) -> np.ndarray:
    """Lattice parameters (and zero shift) by grid search: broad peaks on a coarse grid, then sharp ones.

    Each phase's (isotropic) lattice scale is scanned in turn with everything else fixed; axis ratios
    are left to the refinement (scanning them too finds false matches for weak phases). The grid step
    keeps the shift of the highest-angle peak below half the peak width, so that the right value cannot
    fall between two grid points. Ties (a phase without weight) keep the CIF's lattice; a phase the broad
    peaks gave no weight anywhere is scanned over the whole range with sharp ones; last, each lattice
    moves between grid points (parabola vertex) and a phase still without weight gets a whole-range
    look with the others so placed (ADR 0072: a 2 % polymorph beside an 8 % one shows only then).
    ``only``: search these phases' lattices alone, the zero shift and the others' lattices kept (a fit
    started from a fit of fewer phases, ADR 0079).
    """
    p = params.copy()
    searched = list(range(model.n)) if only is None else list(only)
    per_unit = degrees_per_lattice_unit(data)

    def scan(
        work: FitData, q: np.ndarray, k: int, values: np.ndarray, reference: float = 1.0, vertex: bool = False
    ) -> np.ndarray:
        """χ² at each of ``values`` of parameter k with the others fixed; sets q[k] to the best.

        With ``vertex`` (equally spaced ``values``) the parabola through the best and its neighbours
        gives a value between grid points, kept if its χ² is lower still.
        """
        base = model.all_parts(work.x, q, ratio)

        def chi2(v: float) -> float:
            q[k] = v
            return float(work.solve(model.combine(model.updated_parts(work.x, q, ratio, base, k), q)).chi2)

        scores = np.array([chi2(float(v)) for v in values])
        i = best_value(values, scores, reference)
        q[k] = float(values[i])
        if vertex and 0 < i < len(values) - 1:
            left, mid, right = scores[i - 1 : i + 2]
            curvature = left - 2.0 * mid + right
            if curvature > 0:
                v = float(values[i]) + 0.5 * (left - right) / curvature * float(values[1] - values[0])
                if chi2(v) >= mid:
                    q[k] = float(values[i])
        return scores

    broad = max(3.0 * fwhm, 0.25)
    coarse_minima: dict[int, np.ndarray] = {}
    unseen: set[int] = set()  # phases the coarse scan left without weight at every lattice scale
    for width, coarse in ((broad, True), (fwhm, False)):
        step = 0.5 * width / per_unit
        work = data.binned(max(1, int(width / 6.0 / data.step)))
        q = p.copy()
        q[INDEX_A], q[INDEX_B] = width, 0.0  # and no size broadening:
        q[[model.index_c(j) for j in range(model.n)]] = 0.0
        for _ in range(2):
            for j in searched:
                check_stop(stop_event)
                k = model.index_s(j)
                if coarse or j in unseen:
                    values = np.arange(1.0 - search, 1.0 + search + 0.5 * step, step)
                else:  # around the coarse pick, the coarse scan's next minima and the CIF's lattice: a
                    # weak phase's coarse pick can be a broad peak filling another phase's misfit
                    centres = np.unique(np.round([q[k], 1.0, *coarse_minima[j]], 9))
                    values = np.unique(np.concatenate([np.arange(-4, 5) * step + c for c in centres]))
                scores = scan(work, q, k, values)
                p[k] = q[k]
                if coarse:
                    coarse_minima[j] = local_minima(values, scores, COARSE_MINIMA)
                    if _flat(scores):
                        unseen.add(j)
                    else:
                        unseen.discard(j)
        if not coarse:
            if only is None:
                zeros = np.clip(np.arange(-4.0, 4.01, 0.5) * width, -1.0, 1.0)
                scan(work, q, INDEX_ZERO, zeros, reference=0.0)
                p[INDEX_ZERO] = q[INDEX_ZERO]
            unseen.clear()
            for j in searched:  # the others between grid points: a 1 % phase beside a 8 % polymorph
                k = model.index_s(j)  # shows only when the polymorph's peaks sit where they are
                if _flat(scan(work, q, k, np.arange(q[k] - 3 * step, q[k] + 3.5 * step, step), vertex=True)):
                    unseen.add(j)
                p[k] = q[k]
            for j in unseen:  # without weight near its pick: a last look over the whole range (ADR 0072)
                check_stop(stop_event)
                k = model.index_s(j)
                scan(work, q, k, np.arange(1.0 - search, 1.0 + search + 0.5 * step, step))
                p[k] = q[k]
    return p


def degrees_per_lattice_unit(data: FitData) -> float:
    """d(2θ)/ds at the top of ``data``'s range, in degrees: how far a lattice scale s moves a reflection."""
    return 2.0 * _DEG_PER_RAD * math.tan(math.radians(float(data.x[-1]) / 2.0))


def _flat(scores: np.ndarray) -> bool:
    """Whether a scan's χ² is the same everywhere (the phase got no weight at any value)."""
    low = float(np.min(scores))
    return float(np.max(scores)) <= low + TIE * abs(low)


def best_value(values: np.ndarray, scores: np.ndarray, reference: float) -> int:
    """Index of the lowest of ``scores``; among ties the value nearest ``reference`` (ADR 0072).

    Where a phase gets no weight the χ² is the same at every value: the lowest value of the range (the
    first of the ties) is no better than any other, and a phase left there has no gradient to leave by.
    """
    low = float(np.min(scores))
    tied = np.flatnonzero(scores <= low + TIE * abs(low))
    return int(tied[np.argmin(np.abs(values[tied] - reference))])


def local_minima(values: np.ndarray, scores: np.ndarray, count: int) -> np.ndarray:
    """The ``values`` at the ``count`` lowest local minima of ``scores`` (ends included), lowest first."""
    if len(scores) == 0:
        return values[:0]
    left = np.concatenate([[np.inf], scores[:-1]])
    right = np.concatenate([scores[1:], [np.inf]])
    at = np.flatnonzero((scores <= left) & (scores <= right))
    return values[at[np.argsort(scores[at], kind="stable")][:count]]


def levenberg_marquardt(
    model: Model,
    data: FitData,
    params: np.ndarray,
    ratio: float,
    limit: float,
    stop_event: threading.Event | None,
    max_iterations: int = 40,
    tolerance: float = 1e-5,
) -> np.ndarray:
    """Refine every non-linear parameter (bounded, numerical Jacobian); returns the new parameters.

    Stops after ``max_iterations``, when an iteration lowers chi² by less than ``tolerance``
    (relative), or when no step of increasing damping lowers it. A step moves no lattice parameter by
    more than one peak width at the top of the range (ADR 0073): the grid search has placed each
    lattice within half a width of its minimum, and a weak phase's lattice, whose χ² valley is flat,
    was otherwise carried by the first large steps into another phase's peaks.
    """
    lo, hi = model.bounds(limit)
    p = np.clip(params, lo, hi)
    steps = model.steps()
    lattice = model.lattice_indices()
    per_unit = degrees_per_lattice_unit(data)
    parts = model.all_parts(data.x, p, ratio)
    r = data.residual(model.combine(parts, p))
    cost = float(r @ r)
    damping = 1e-2
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        check_stop(stop_event)
        jac = np.empty((len(r), len(p)))
        for k in range(len(p)):
            q = p.copy()
            h = steps[k] if q[k] + steps[k] <= hi[k] else -steps[k]
            q[k] += h
            trial = model.updated_parts(data.x, q, ratio, parts, k)
            jac[:, k] = (data.residual(model.combine(trial, q)) - r) / h
        grad = jac.T @ r
        hess = jac.T @ jac
        diag = np.maximum(np.diag(hess), 1e-12 * max(float(np.max(np.diag(hess))), 1e-300))
        move = max(float(p[INDEX_A]), 0.01) / per_unit  # one peak width at the top of the range
        improved = False
        gain = 0.0
        for _attempt in range(_MAX_REJECTED):
            try:
                delta = np.linalg.solve(hess + damping * np.diag(diag), -grad)
            except np.linalg.LinAlgError:
                damping *= 4.0
                continue
            delta[lattice] = np.clip(delta[lattice], -move, move)
            q = np.clip(p + delta, lo, hi)
            trial = model.all_parts(data.x, q, ratio)
            r_new = data.residual(model.combine(trial, q))
            new_cost = float(r_new @ r_new)
            if new_cost < cost:
                gain = (cost - new_cost) / cost
                p, parts, r, cost = q, trial, r_new, new_cost
                damping = max(damping / 3.0, 1e-7)
                improved = True
                break
            damping *= 4.0
        if not improved or gain < tolerance:
            break
    log.debug("LM: %d iterations, cost %.6g", iterations, cost)
    return p
