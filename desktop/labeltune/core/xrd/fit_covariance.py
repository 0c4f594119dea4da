"""The phase scales' covariance of a fit, the way Rietveld programs give it (from ``quantify.fit_phases``).

Two weightings (ADR 0046, 0056, 0067, 0074): counting statistics, which order the decision's checks, and
misfit-aware weights for the presence tests, the detection limits and the fraction esds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labeltune.core.xrd.fit_engine import FitData, Model
from labeltune.core.xrd.misfit import correlation_lags, integrated_correlation, quiet_noise
from labeltune.core.xrd.significance import correlation_factor


def at_bound(params: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Which parameters sit on a bound of their range (within 1e-9 of the range)."""
    tol = 1e-9 * np.maximum(hi - lo, 1e-300)
    return (params <= lo + tol) | (params >= hi - tol)


def scale_covariance(
    model: Model,
    data: FitData,
    params: np.ndarray,
    ratio: float,
    profiles: np.ndarray,
    coef: np.ndarray,
    freedom: int,
    sw_misfit: tuple[np.ndarray, Sequence[np.ndarray]],
    fwhm: float,
    lattice_limit: float,
    quiet: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariances (n, n) of the phase scales: every parameter refined together, as in Rietveld programs.

    The Jacobian holds the scales' and background's columns and numerical derivatives of the
    non-linear parameters. Three covariances (ADR 0056, 0074):

    * counting: Poisson weights, ``inv(JᵀWJ)`` × reduced χ² × the lag-1 serial-correlation factor
      (Bérar & Lelann; ADR 0046), with the non-linear parameters that sit on a bound held there (ADR
      0067) — the scale esds that order the decision's checks;
    * presence (ADR 0074): phase j's scale esd as the counting one (bound parameters held, lag-1
      factor), with weights ``sw_misfit[1][j]``: counts plus a systematic term at the *other* phases'
      calculated peaks (``misfit.systematic_variance``), the reduced χ² and ρ under them. Returned as a
      diagonal matrix;
    * misfit-aware: the whole fit's weights ``sw_misfit[0]``, every parameter free, × reduced χ² under
      them × Bérar & Lelann's factor over the residuals' correlation length
      (``misfit.integrated_correlation``) — the fraction esds, which must cover misfit beyond counting
      noise.

    The counting and presence covariances estimate the noise outside ``quiet``'s unexplained peaks (a
    phase the fit lacks is not noise; ADR 0076); the fraction esds keep every point.
    """
    n = model.n
    if n == 0:
        return np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((0, 0))
    columns = [profiles, data.basis]
    free = [np.ones(profiles.shape[1] + data.basis.shape[1], dtype=bool)]
    if bool(np.any(coef[:n] > 0)):
        parts = model.all_parts(data.x, params, ratio)
        base = model.combine(parts, params) @ coef[:n]
        lo, hi = model.bounds(lattice_limit)
        steps = model.steps()
        derivatives = []
        for k in range(model.n_params):
            q = params.copy()
            h = steps[k] if q[k] + steps[k] <= hi[k] else -steps[k]
            q[k] += h
            derivatives.append(
                (model.combine(model.updated_parts(data.x, q, ratio, parts, k), q) @ coef[:n] - base) / h
            )
        jac_nl = np.stack(derivatives, axis=1)
        moving = np.any(jac_nl != 0.0, axis=0)
        columns.append(jac_nl[:, moving])
        free.append(~at_bound(params, lo, hi)[moving])
    raw = np.concatenate(columns, axis=1)
    unheld = np.concatenate(free)

    def covariance(sw: np.ndarray, kept: np.ndarray, lag_one: bool) -> np.ndarray:
        jac = raw[:, kept] * sw[:, None]
        norm = np.sqrt(np.maximum((jac * jac).sum(axis=0), 1e-300))
        inverse = np.linalg.pinv((jac / norm).T @ (jac / norm), rcond=1e-12) / norm[:, None] / norm[None, :]
        residual = data.y * sw - jac[:, : n + data.basis.shape[1]] @ coef
        if lag_one:
            chi2, rho = quiet_noise(residual, quiet)
            factor = correlation_factor(rho)
        else:
            chi2 = float(residual @ residual)
            factor = integrated_correlation(residual, correlation_lags(fwhm, data.step))
        return inverse[:n, :n] * chi2 / freedom * factor

    # presence: a parameter on a bound is held there, as Rietveld programs hold a parameter at its
    # limit — linearised as free, a Lorentzian share at 0 trades against the scale (ADR 0067)
    counting = covariance(data.sw, unheld, lag_one=True)
    sw_all, sw_each = sw_misfit
    presence = np.diag([covariance(sw, unheld, lag_one=True)[j, j] for j, sw in enumerate(sw_each)])
    return counting, presence, covariance(sw_all, np.ones(raw.shape[1], dtype=bool), lag_one=False)
