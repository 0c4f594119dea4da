"""Preferred orientation (March–Dollase) in the quantification fit: which phases need it (ADR 0063).

Kept apart from ``quantify``: the texture step takes the refined fit and returns a model with the
oriented phases and their refined parameters; ``quantify.fit_phases`` runs it only when asked
(``texture=True``), and ``predict`` only in a last refit of the decided phases (ADR 0065).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from labeltune.core.golden import golden_section
from labeltune.core.progress import check_stop
from labeltune.core.xrd.fit_engine import TEXTURE_BOUNDS, FitData, Model
from labeltune.core.xrd.fit_refine import levenberg_marquardt
from labeltune.core.xrd.misfit import correlation_lags, integrated_correlation, systematic_variance
from labeltune.core.xrd.significance import bonferroni_alpha, f_survival

log = logging.getLogger(__name__)

TEXTURE_MIN_FRACTION = 0.05
"""Preferred orientation is refined only for phases above this weight fraction (ADR 0063): a minor
phase's few weak peaks cannot tell texture from its structure's errors."""


def preferred_orientation(
    model: Model,
    work: FitData,
    params: np.ndarray,
    ratio: float,
    power: np.ndarray,
    fwhm: float,
    refinement: tuple[float, int],
    stop_event: threading.Event | None,
) -> tuple[Model, np.ndarray]:
    """Model and parameters with a March–Dollase preferred orientation for the phases that need one.

    For each phase above ``TEXTURE_MIN_FRACTION`` with a calculated (not measured) pattern, each
    candidate direction (``Texture.directions``) gets its best r (golden-section search on χ², the other
    parameters fixed). The direction lowering χ² most is kept when it explains the misfit beyond what
    imperfect structures leave anyway: an F-test of the two fits under the misfit-aware weights of the fit
    without texture (``misfit.systematic_variance``, Bérar–Lelann factor over the correlation length; ADR
    0056) at ``SIGNIFICANCE``, Bonferroni-corrected for the directions tried. The kept orientations are
    then refined with everything else (``refinement``: the lattice limit and the most iterations).
    ``power`` converts each phase's scale into an amount (lattice³ / scattering power), as the fit does.
    """
    profiles = model.profiles(work.x, params, ratio)
    base = work.solve(profiles)
    amounts = np.maximum(base.coef[: model.n], 0.0) * power
    total = float(amounts.sum())
    if total <= 0 or base.chi2 <= 0:
        return model, params
    weight = 1.0 / systematic_variance(work.x, work.y, base.calculated, base.background, fwhm)
    lags = correlation_lags(fwhm, work.step)
    chi2_base = float(weight @ (work.y - base.calculated) ** 2)
    freedom = max(len(work.x) - model.n_params - len(base.coef) - 1, 1)
    chosen: dict[int, tuple[int, int, int]] = {}
    for j in range(model.n):
        texture = model.textures[j]
        if texture is None or amounts[j] / total < TEXTURE_MIN_FRACTION:
            continue
        directions = texture.directions()
        best: tuple[float, tuple[int, int, int], np.ndarray] | None = None
        for direction in directions:
            check_stop(stop_event)
            trial, start = model.with_orientation({j: direction}, params)

            def calculated(
                r: float, trial: Model = trial, start: np.ndarray = start, j: int = j
            ) -> np.ndarray:
                q = start.copy()
                q[trial.r_param[j]] = r
                p = profiles.copy()
                p[:, j] = phase_profile(trial, work.x, q, ratio, j)
                return work.solve(p).calculated

            def chi2(r: float, calculated: Callable[[float], np.ndarray] = calculated) -> float:
                residual = (work.y - calculated(r)) * work.sw
                return float(residual @ residual)

            value, r = golden_minimum(chi2, *TEXTURE_BOUNDS)
            if best is None or value < best[0]:
                best = (value, direction, calculated(r))
        if best is None or best[0] >= base.chi2:
            continue
        residual = (work.y - best[2]) * np.sqrt(weight)
        chi2_with = float(residual @ residual)
        factor = integrated_correlation(residual, lags)
        f = (chi2_base - chi2_with) / max(chi2_with / freedom, 1e-300) / factor
        p_value = f_survival(f, 1.0, freedom / factor) if f > 0 else 1.0
        log.debug("texture of phase %d along %s: F %.3g, p %.3g", j, best[1], f, p_value)
        if p_value < bonferroni_alpha(len(directions)):
            chosen[j] = best[1]
    if not chosen:
        return model, params
    oriented, start = model.with_orientation(chosen, params)
    limit, iterations = refinement
    fitted = levenberg_marquardt(oriented, work, start, ratio, limit, stop_event, iterations)
    return oriented, fitted


def phase_profile(model: Model, x: np.ndarray, params: np.ndarray, ratio: float, j: int) -> np.ndarray:
    """Phase j's unit-scale profile alone."""
    parts = model.parts(x, params, ratio, j)
    eta = float(params[model.index_c(j) + model.n])
    return np.asarray(eta * parts[0] + (1.0 - eta) * parts[1])


def golden_minimum(
    f: Callable[[float], float], lo: float, hi: float, iterations: int = 14
) -> tuple[float, float]:
    """The smallest value of ``f`` on [lo, hi] by golden-section search, and where (r = 1 is tried too)."""
    return min(golden_section(f, lo, hi, iterations).best, (f(1.0), 1.0))
