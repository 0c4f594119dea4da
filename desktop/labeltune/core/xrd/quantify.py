"""Weight fractions of known phases by a least-squares fit of their calculated patterns to a measurement.

The model: ``y(2θ) = sum_j scale_j * profile_j(2θ) + background(2θ)`` where ``profile_j`` is phase j's
unit-scale calculated pattern (``peak_profile``): its library reflections with the cell scaled by
``s_j`` (plus, for non-cubic cells, one relative scale per further group of equal axes: CIF lattices are
often wrong anisotropically), a common 2θ zero shift, pseudo-Voigt peaks with
FWHM(θ) = sqrt(a² + (b tan θ)² + (c_j / cos θ)²) (instrument + strain, per-phase crystallite size), a
per-phase Lorentzian fraction and a common low-angle asymmetry (axial divergence), and Kα2 copies. The
background is a Chebyshev polynomial (degree 5) plus a low-angle term. See ``fit_engine`` for the
parameter vector.

For fixed non-linear parameters the scales (>= 0) and the background are a linear least-squares problem,
solved exactly inside every evaluation (variable projection). The lattice scales are first found by a
grid search with broadened peaks (so that misplaced peaks still overlap), then every non-linear
parameter is refined by Levenberg-Marquardt with numerical derivatives, on the data binned to about
five points per FWHM (``fit_refine``). Weights are Poisson, 1 / max(observed, floor).

Weight fractions follow the simulator's physics (``simulate``): the integrated intensity of phase j is
proportional to ``w_j * scattering_power_j`` with the scattering power of the phase's true cell, which
varies as 1 / V, so ``w_j ∝ scale_j * s_j³ / scattering_power_j`` normalised to sum 1.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from labeltune.core.progress import check_stop
from labeltune.core.xrd.bragg import two_theta_of_d
from labeltune.core.xrd.fit_covariance import scale_covariance
from labeltune.core.xrd.fit_engine import INDEX_ASYMMETRY, INDEX_ZERO, FitData, Model, Texture
from labeltune.core.xrd.fit_refine import lattice_search, levenberg_marquardt
from labeltune.core.xrd.fit_texture import preferred_orientation
from labeltune.core.xrd.fit_warnings import fit_warnings, on_calculated_peaks
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.misfit import quiet_noise, systematic_variance
from labeltune.core.xrd.pattern import MissingWavelengthError, Pattern
from labeltune.core.xrd.peak_profile import calculated_profile, ka2_wavelength
from labeltune.core.xrd.reference_patterns import reference_providers
from labeltune.core.xrd.residual_peaks import estimate_fwhm, quiet_points, residual_peaks
from labeltune.core.xrd.results import UnexplainedPeak
from labeltune.core.xrd.significance import DETECTION_SIGMAS
from labeltune.core.xrd.warm_start import Refined, refined_of, warm_params

__all__ = ["FitResult", "PhaseFit", "calculated_profile", "fit_phases"]

log = logging.getLogger(__name__)

WAVELENGTH_TOLERANCE = 1e-3
"""Largest difference (Å) between the pattern's and the library's wavelength."""
LATTICE_SEARCH = 0.015
"""The lattice-scale grid search covers 1 ± this."""
LATTICE_LIMIT = 0.02
"""Refinement keeps every lattice scale within 1 ± this."""
DEFAULT_KA2_RATIO = 0.5
KA2_PREFERENCE = 0.01
"""When the file does not say, no Kα2 must fit this much better (relative chi²) to be chosen."""
MAX_ITERATIONS = 30
"""Most Levenberg-Marquardt iterations per refinement."""
BIN_PER_FWHM = 5.0
"""The non-linear refinement runs on the data binned to about this many points per FWHM."""
MIN_FIT_POINTS = 20
VOLUME_POWER = 3.0
"""Scattering power per weight varies as 1 / V: w ∝ scale * lattice_scale ** VOLUME_POWER / power."""


@dataclass(frozen=True)
class PhaseFit:
    """One fitted phase: weight fraction (0..1), intensity scale and the fitted lattice and width.

    ``shift_deg`` is the 2θ shift of the phase's strongest peak caused by ``lattice_scale`` (+ = higher
    angle, zero shift not included); ``fwhm_deg`` the fitted FWHM at that peak.
    """

    name: str
    formula: str
    weight_fraction: float
    scale: float
    lattice_scale: float
    shift_deg: float
    fwhm_deg: float
    scale_esd: float = 0.0
    """Standard uncertainty of ``scale`` from counting statistics (``fit_covariance``; orders the checks)."""
    fraction_esd: float = 0.0
    """Standard uncertainty of ``weight_fraction``: the misfit-aware covariance (ADR 0056), propagated."""
    scale_esd_misfit: float = 0.0
    """Standard uncertainty of ``scale`` under the misfit-aware weights, bound parameters held: the presence
    test's (ADR 0074)."""
    detection_limit: float = 0.0
    """The weight fraction this phase would have at a scale of ``DETECTION_SIGMAS`` misfit-aware esds."""
    preferred_orientation: tuple[tuple[int, int, int], float] | None = None
    """(direction [hkl] of the plane normals, March–Dollase r) when texture was significant (ADR 0063)."""


@dataclass
class FitResult:
    """The fit of known phases to one pattern, on the fitted 2θ range.

    ``rwp`` is the weighted-profile R factor (0..1); ``ka2`` whether Kα2 was modelled; ``asymmetry`` the
    fitted peak asymmetry P (half-widths (1 ± P / tan 2θ) FWHM / 2 on the low / high-angle side).
    ``components`` maps a phase name to its calculated contribution (without background) on ``two_theta``.
    """

    phases: list[PhaseFit]
    zero_shift: float
    rwp: float
    ka2: bool
    two_theta: np.ndarray
    observed: np.ndarray
    calculated: np.ndarray
    background: np.ndarray
    components: dict[str, np.ndarray] = field(default_factory=dict)
    profiles: dict[str, np.ndarray] = field(default_factory=dict)
    """Each phase's unit-scale profile (``components`` = ``PhaseFit.scale`` × profile), also at zero scale."""
    unexplained_peaks: list[UnexplainedPeak] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    asymmetry: float = 0.0
    chi2: float | None = None
    """Reduced χ² (weighted squares over points − parameters): about 1 within counting noise (raw counts)."""
    chi2_sum: float | None = None
    """The weighted sum of squares itself (for the F-test of nested fits, ``significance``)."""
    n_points: int = 0
    n_parameters: int = 0
    """Refined parameters: the non-linear ones and the linear ones (scales, background)."""
    residual_correlation: float = 0.0
    """Lag-1 correlation of the weighted residuals outside ``quiet`` (0 for pure counting noise)."""
    noise_chi2: float | None = None
    """``chi2_sum`` over the ``quiet`` points, scaled to all: what the noise is estimated from (ADR 0076)."""
    quiet: np.ndarray | None = None
    """The points outside the residual's significant peaks (``residual_peaks.quiet_points``)."""
    excluded: tuple[tuple[float, float], ...] = ()
    """2θ ranges left out of the fit (``fit_phases(exclude=...)``; ADR 0078)."""
    refined: Refined | None = None
    """The non-linear parameters by phase: a fit of more phases can start from them (ADR 0079)."""


def _check_inputs(pattern: Pattern, library: Library, names: Sequence[str]) -> list[str]:
    if pattern.wavelength is None:
        raise MissingWavelengthError(f"{pattern.source.name}: the X-ray wavelength is not known")
    if abs(pattern.wavelength - library.wavelength) > WAVELENGTH_TOLERANCE:
        raise ValueError(
            f"{pattern.source.name}: measured at {pattern.wavelength:.5f} Å but the library is for "
            f"{library.wavelength:.5f} Å; convert the pattern first"
        )
    unknown = [n for n in names if n not in library.peaks]
    if unknown:
        raise KeyError(f"not in the library: {', '.join(map(repr, unknown))}")
    if len(set(names)) != len(names):
        raise ValueError(f"a phase is named twice: {list(names)}")
    return list(names)


def _ka2_options(pattern: Pattern, library: Library, ka2: bool | None) -> tuple[float | None, list[float]]:
    """(Kα2 wavelength, Kα2 ratios to try); ratio 0 = no Kα2."""
    wavelength2 = pattern.wavelength2 or ka2_wavelength(library.wavelength)
    if ka2 is False or wavelength2 is None:
        return None, [0.0]
    file_ratio = pattern.ka2_ratio if pattern.wavelength2 is not None else None
    if ka2 is True:
        return wavelength2, [file_ratio or DEFAULT_KA2_RATIO]
    if file_ratio is not None:
        return wavelength2, [file_ratio]
    return wavelength2, [DEFAULT_KA2_RATIO, 0.0]


def fit_phases(
    pattern: Pattern,
    library: Library,
    names: Sequence[str],
    *,
    ka2: bool | None = None,
    stop_event: threading.Event | None = None,
    amorphous: bool = False,
    texture: bool = False,
    exclude: Sequence[tuple[float, float]] = (),
    start: Refined | None = None,
) -> FitResult:
    """Fit the calculated patterns of library phases ``names`` to ``pattern``; weight fractions and Rwp.

    ``pattern`` must be at the library's wavelength (``ValueError`` otherwise; convert it first);
    unknown names raise ``KeyError``. ``ka2``: None = the file's Kα2 when it states one, else the better
    fit of Kα2 (ratio 0.5) and none; True/False force it. Only the library's 2θ range is fitted. With no
    names only the background is fitted and every strong peak is reported unexplained.
    ``stop_event`` is checked between steps (``StoppedError``). ``amorphous``: the background can also
    follow broad amorphous humps (``fit_engine.HUMP_CENTRES``; used with an internal standard).
    ``texture``: refine a March–Dollase preferred orientation for the major phases where it is
    significant (``fit_texture``, ADR 0063). Off by default: on a simulated mixture with random
    peak-intensity errors it fitted a texture and let a 1 wt % false phase through (ADR 0063 addendum), so
    ``predict`` decides the phases without it and uses it only in a last refit of the decided set (ADR 0065).
    ``exclude``: 2θ ranges left out of the fit (a peak outside the library; ADR 0078). ``start``: the
    ``refined`` parameters of a fit of some of ``names``; only the others' lattices are then searched and
    its Kα2 ratio is kept (ADR 0079).
    """
    names = _check_inputs(pattern, library, names)
    lo = max(library.two_theta_range[0], float(pattern.two_theta[0]))
    hi = min(library.two_theta_range[1], float(pattern.two_theta[-1]))
    keep = (pattern.two_theta >= lo) & (pattern.two_theta <= hi)
    for a, b in exclude:
        keep &= (pattern.two_theta < a) | (pattern.two_theta > b)
    if int(keep.sum()) < MIN_FIT_POINTS:
        raise ValueError(
            f"{pattern.source.name}: fewer than {MIN_FIT_POINTS} points inside the library's 2θ range "
            f"{library.two_theta_range[0]:g}-{library.two_theta_range[1]:g}°"
        )
    x = pattern.two_theta[keep].astype(np.float64)
    y = pattern.intensity[keep].astype(np.float64)
    wavelength = float(pattern.wavelength)  # type: ignore[arg-type]
    wavelength2, ratios = _ka2_options(pattern, library, ka2)
    peaks = [library.peaks[n] for n in names]
    full = FitData(x, y, humps=amorphous)
    fwhm0 = estimate_fwhm(x, y)
    providers = reference_providers(library, names, wavelength)  # measured references: ADR 0047
    cells = [library.phase(n).cell for n in names]
    textures = [
        Texture(p, c, library.phase(n).space_group) if providers[j] is None else None
        for j, (n, p, c) in enumerate(zip(names, peaks, cells, strict=True))
    ]
    model = Model(peaks, cells, wavelength, wavelength2, providers, textures)
    params = model.initial(fwhm0)
    check_stop(stop_event)
    only = None
    if start is not None:
        params, only = warm_params(model, names, params, start)
        ratios = [r for r in ratios if r == start.ka2_ratio] or ratios
    if names and only != []:
        params = lattice_search(model, full, params, fwhm0, max(ratios), LATTICE_SEARCH, stop_event, only)
    work = full.binned(max(1, int(fwhm0 / BIN_PER_FWHM / full.step)))
    params, ratio = _refine(model, work, params, ratios, bool(names), stop_event)
    if names and texture:
        refined = model.lattice(params)
        power = np.array(
            [refined[j] ** VOLUME_POWER / library.phase(n).scattering_power for j, n in enumerate(names)]
        )
        model, params = preferred_orientation(
            model, work, params, ratio, power, fwhm0, (LATTICE_LIMIT, MAX_ITERATIONS), stop_event
        )
    profiles = model.profiles(full.x, params, ratio)
    solution = full.solve(profiles)
    calc = solution.calculated
    background = solution.background
    components = {n: solution.coef[j] * profiles[:, j] for j, n in enumerate(names)}
    rwp = math.sqrt(max(solution.chi2, 0.0) / full.yy) if full.yy > 0 else 0.0
    n_parameters = (len(params) if names else 0) + len(solution.coef)
    freedom = max(len(x) - n_parameters, 1)
    quiet = quiet_points(x, y, calc, background, fwhm0, wavelength)  # noise outside unknown peaks: ADR 0076
    noise_chi2, rho = quiet_noise((y - calc) * full.sw, quiet)
    sw = 1.0 / np.sqrt(systematic_variance(x, y, calc, background, fwhm0))  # ADR 0056
    sw_each = [  # each phase tested against the others' misfit (ADR 0074)
        1.0 / np.sqrt(systematic_variance(x, y, calc, background, fwhm0, components[n])) for n in names
    ]
    cov, cov_presence, cov_misfit = scale_covariance(
        model,
        full,
        params,
        ratio,
        profiles,
        solution.coef,
        freedom,
        (sw, sw_each),
        fwhm0,
        LATTICE_LIMIT,
        quiet=quiet,
    )
    phases = _phase_fits(
        library, names, model, params, solution.coef[: len(names)], wavelength, cov, cov_misfit, cov_presence
    )
    fwhm_now = float(np.median([p.fwhm_deg for p in phases])) if phases else fwhm0
    unexplained = residual_peaks(x, y, calc, background, fwhm_now, wavelength)
    outside = {n for j, n in enumerate(names) if not profiles[:, j].any()}
    on_phase = on_calculated_peaks(unexplained, x, calc - background, float(np.max(y)), fwhm_now)
    warnings = fit_warnings(
        phases, unexplained, rwp, names, outside, (float(x[0]), float(x[-1])), on_phase, LATTICE_LIMIT
    )
    return FitResult(
        phases=phases,
        zero_shift=float(params[INDEX_ZERO]),
        rwp=rwp,
        ka2=ratio > 0,
        two_theta=x,
        observed=y,
        calculated=calc,
        background=background,
        components=components,
        profiles={n: profiles[:, j] for j, n in enumerate(names)},
        unexplained_peaks=unexplained,
        warnings=warnings,
        asymmetry=float(params[INDEX_ASYMMETRY]),
        chi2=float(solution.chi2) / freedom,
        chi2_sum=float(solution.chi2),
        noise_chi2=noise_chi2,
        quiet=quiet,
        n_points=len(x),
        n_parameters=n_parameters,
        residual_correlation=rho,
        excluded=tuple((float(a), float(b)) for a, b in exclude),
        refined=refined_of(model, params, names, ratio),
    )


def _refine(
    model: Model,
    work: FitData,
    params: np.ndarray,
    ratios: list[float],
    any_phase: bool,
    stop_event: threading.Event | None,
) -> tuple[np.ndarray, float]:
    """Levenberg-Marquardt for the first Kα2 ratio; the others start from its result.

    The best fit wins; no Kα2 (ratio 0) only when it fits clearly better (``KA2_PREFERENCE``).
    """
    if not any_phase:
        return params, ratios[0]

    def refined(start: np.ndarray, ratio: float, iterations: int) -> tuple[float, float, np.ndarray]:
        fitted = levenberg_marquardt(model, work, start, ratio, LATTICE_LIMIT, stop_event, iterations)
        chi2 = work.solve(model.profiles(work.x, fitted, ratio)).chi2
        log.debug("Kα2 ratio %.2f: chi2 %.6g", ratio, chi2)
        return chi2 * (1.0 if ratio > 0 else 1.0 + KA2_PREFERENCE), ratio, fitted

    best = refined(params, ratios[0], MAX_ITERATIONS)
    for ratio in ratios[1:]:
        trial = refined(best[2], ratio, 8)
        if trial[0] < best[0]:
            best = refined(trial[2], ratio, MAX_ITERATIONS)
    return best[2], best[1]


def _phase_fits(
    library: Library,
    names: list[str],
    model: Model,
    params: np.ndarray,
    scales: np.ndarray,
    wavelength: float,
    cov: np.ndarray | None = None,
    cov_fraction: np.ndarray | None = None,
    cov_presence: np.ndarray | None = None,
) -> list[PhaseFit]:
    phases = [library.phase(n) for n in names]
    lattice = model.lattice(params)
    per_scale = np.array(
        [lattice[j] ** VOLUME_POWER / phases[j].scattering_power for j in range(len(names))], dtype=np.float64
    )
    amounts = np.maximum(np.asarray(scales, dtype=np.float64), 0.0) * per_scale
    total = float(amounts.sum())
    fractions = amounts / total if total > 0 else np.zeros(len(names))
    cov = cov if cov is not None and cov.shape == (len(names), len(names)) else np.zeros((len(names),) * 2)
    scale_esd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    if cov_fraction is None or cov_fraction.shape != cov.shape:
        cov_fraction = cov
    if cov_presence is None or cov_presence.shape != cov.shape:
        cov_presence = cov_fraction
    scale_esd_misfit = np.sqrt(np.maximum(np.diag(cov_presence), 0.0))
    if total > 0:  # w_j = a_j / sum(a), a_k = scale_k * per_scale_k: dw_j/dscale_k
        grad = (np.eye(len(names)) * total - amounts[:, None]) * per_scale[None, :] / total**2
        fraction_esd = np.sqrt(np.maximum(np.einsum("jk,kl,jl->j", grad, cov_fraction, grad), 0.0))
    else:
        fraction_esd = np.zeros(len(names))
    limit_amount = DETECTION_SIGMAS * scale_esd_misfit * per_scale  # the presence test's esd (ADR 0074)
    limits = [
        float(a / (a + total - amounts[j])) if a + total - amounts[j] > 0 else 0.0
        for j, a in enumerate(limit_amount)
    ]
    orientation = model.orientation(params)
    out = []
    for j, phase in enumerate(phases):
        peaks = library.peaks[phase.name]
        k = int(np.argmax(peaks.intensity)) if len(peaks) else 0
        at_cif, _ = two_theta_of_d(peaks.d[k : k + 1], wavelength)
        scaled, _ = two_theta_of_d(model.d_spacings(params, j)[k : k + 1], wavelength)
        if not len(peaks):
            at_cif = scaled = np.zeros(1)
        out.append(
            PhaseFit(
                name=phase.name,
                formula=phase.formula,
                weight_fraction=float(fractions[j]),
                scale=float(scales[j]),
                lattice_scale=float(lattice[j]),
                shift_deg=float(scaled[0] - at_cif[0]),
                fwhm_deg=model.fwhm(params, j, math.radians(float(scaled[0])) / 2.0),
                scale_esd=float(scale_esd[j]),
                fraction_esd=float(fraction_esd[j]),
                scale_esd_misfit=float(scale_esd_misfit[j]),
                detection_limit=limits[j],
                preferred_orientation=orientation.get(j),
            )
        )
    return out
