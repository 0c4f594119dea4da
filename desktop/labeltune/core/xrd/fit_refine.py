"""Non-linear optimisation of the quantification fit: lattice-scale grid search, Levenberg-Marquardt."""

from __future__ import annotations

import logging
import math
import threading

import numpy as np

from labeltune.core.progress import check_stop
from labeltune.core.xrd.fit_engine import INDEX_A, INDEX_B, INDEX_ZERO, FitData, Model

log = logging.getLogger(__name__)

_MAX_REJECTED = 12
COARSE_MINIMA = 3
"""The coarse lattice scan's lowest local minima that the fine scan also searches around (ADR 0071)."""
_DEG_PER_RAD = 180.0 / math.pi


def lattice_search(
    model: Model,
    data: FitData,
    params: np.ndarray,
    fwhm: float,
    ratio: float,
    search: float,
    stop_event: threading.Event | None,
) -> np.ndarray:
    """Lattice parameters (and zero shift) by grid search: broad peaks on a coarse grid, then sharp ones.

    Each phase's (isotropic) lattice scale is scanned in turn with everything else fixed; axis ratios
    are left to the refinement (scanning them too finds false matches for weak phases). The grid step
    keeps the shift of the highest-angle peak below half the peak width, so that the right value cannot
    fall between two grid points.
    """
    p = params.copy()
    n = model.n
    tan_max = math.tan(math.radians(float(data.x[-1]) / 2.0))
    per_unit = 2.0 * _DEG_PER_RAD * tan_max  # d(2θ)/ds at the top of the range, degrees

    def scan(work: FitData, q: np.ndarray, k: int, values: np.ndarray) -> np.ndarray:
        """χ² at each of ``values`` of parameter k with the others fixed; sets q[k] to the best."""
        base = model.all_parts(work.x, q, ratio)
        scores = []
        for v in values:
            q[k] = v
            trial = model.updated_parts(work.x, q, ratio, base, k)
            scores.append(work.solve(model.combine(trial, q)).chi2)
        q[k] = float(values[int(np.argmin(scores))])
        return np.asarray(scores)

    broad = max(3.0 * fwhm, 0.25)
    coarse_minima: dict[int, np.ndarray] = {}
    for width, coarse in ((broad, True), (fwhm, False)):
        step = 0.5 * width / per_unit
        work = data.binned(max(1, int(width / 6.0 / data.step)))
        q = p.copy()
        q[INDEX_A], q[INDEX_B] = width, 0.0  # and no size broadening:
        q[[model.index_c(j) for j in range(n)]] = 0.0
        for _ in range(2):
            for j in range(n):
                check_stop(stop_event)
                k = model.index_s(j)
                if coarse:
                    values = np.arange(1.0 - search, 1.0 + search + 0.5 * step, step)
                else:  # around the coarse pick, the coarse scan's next minima and the CIF's lattice: a
                    # weak phase's coarse pick can be a broad peak filling another phase's misfit
                    centres = np.unique(np.round([q[k], 1.0, *coarse_minima[j]], 9))
                    values = np.unique(np.concatenate([np.arange(-4, 5) * step + c for c in centres]))
                scores = scan(work, q, k, values)
                p[k] = q[k]
                if coarse:
                    coarse_minima[j] = local_minima(values, scores, COARSE_MINIMA)
        if not coarse:
            zeros = np.clip(np.arange(-4.0, 4.01, 0.5) * width, -1.0, 1.0)
            scan(work, q, INDEX_ZERO, zeros)
            p[INDEX_ZERO] = q[INDEX_ZERO]
            for j in range(n):
                k = model.index_s(j)
                scan(work, q, k, np.arange(q[k] - 3 * step, q[k] + 3.5 * step, step))
                p[k] = q[k]
    return p


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
    tolerance: float = 1e-4,
) -> np.ndarray:
    """Refine every non-linear parameter (bounded, numerical Jacobian); returns the new parameters.

    Stops after ``max_iterations``, when an iteration lowers chi² by less than ``tolerance``
    (relative), or when no step of increasing damping lowers it.
    """
    lo, hi = model.bounds(limit)
    p = np.clip(params, lo, hi)
    steps = model.steps()
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
        improved = False
        gain = 0.0
        for _attempt in range(_MAX_REJECTED):
            try:
                delta = np.linalg.solve(hess + damping * np.diag(diag), -grad)
            except np.linalg.LinAlgError:
                damping *= 4.0
                continue
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
