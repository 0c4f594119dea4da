"""The phase-quantification fit's data, model and linear solve.

``FitData`` holds the measurement with Poisson weights and solves the linear part (phase scales >= 0,
background) for given profiles (variable projection); ``Model`` turns parameters into profiles.

Parameter vector of ``Model`` (n phases, m axis ratios, k textured phases):
``[zero shift, a, b, P, s_1..s_n, c_1..c_n, eta_1..eta_n, t_1..t_m, r_1..r_k]``. The FWHM of phase j at
Bragg angle θ is ``sqrt(a² + (b tan θ)² + (c_j / cos θ)²)`` (degrees), ``eta_j`` its Lorentzian fraction,
``s_j`` its d-spacing scale and each ``t`` the relative change of one group of equal cell axes
(see ``Model``).
Each ``r`` is the March–Dollase ratio of a phase given a preferred direction (``texture``; ADR 0063).
``P`` is the peak asymmetry (axial divergence) shared by all phases: half-widths (1 ± P / tan 2θ) FWHM / 2
on the low / high-angle side (``peak_profile.phase_parts``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labeltune.core.xrd.library import Peaks
from labeltune.core.xrd.profile_cache import cached_phase_parts

BACKGROUND_DEGREE = 5
"""Degree of the background's Chebyshev polynomial (plus one low-angle term)."""
HUMP_CENTRES = (15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0)
HUMP_SIGMA = 3.0
"""With ``humps``: Gaussian background terms (2θ degrees) able to follow an amorphous hump (FWHM 5-15°)
that the polynomial cannot, so that crystalline phases do not take it (ADR 0046)."""
MAX_SIZE_FWHM = 1.2
"""Upper bound (degrees) of a phase's size broadening at θ = 0, about 7 nm crystallites for Cu Kα:
broader peaks would let a weak phase pose as background."""
MAX_ASYMMETRY = 0.3
"""Upper bound of the asymmetry P: at 2θ = 25° the low-angle half-width is then 1.6 x the high-angle one."""
WIDTH_START = 0.1
"""Start value of the strain and size width terms, relative to the measured FWHM."""
INDEX_ZERO, INDEX_A, INDEX_B, INDEX_ASYMMETRY = 0, 1, 2, 3
_N_GLOBAL = 4  # zero shift, a, b, asymmetry
_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))

TEXTURE_BOUNDS = (0.6, 1.6)
"""March–Dollase r is refined within these bounds (1 = no preferred orientation)."""
TEXTURE_DIRECTIONS = ((0, 0, 1), (0, 1, 0), (1, 0, 0), (1, 1, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1))
"""Candidate preferred directions, as reciprocal-lattice vectors (plane normals) of the phase's cell."""

ProfileProvider = Callable[[np.ndarray, float, float], np.ndarray]
"""A phase kind's own unit-scale profile: (x, zero shift, lattice scale) -> parts (2, len(x)).
Measured references (``reference_patterns``) use it; their widths and Lorentzian fraction do nothing."""


@dataclass
class Solution:
    """The linear part of a fit: coefficients (phase scales, then background) and the weighted chi²."""

    coef: np.ndarray
    chi2: float
    calculated: np.ndarray
    background: np.ndarray


class FitData:
    """A measured pattern on the fitted range with Poisson weights and the background basis."""

    def __init__(self, x: np.ndarray, y: np.ndarray, humps: bool = False) -> None:
        self.x = x
        self.y = y
        self.humps = humps
        self.step = float(np.median(np.diff(x))) if len(x) > 1 else 1.0
        # 1 % of the maximum: background-subtracted or rescaled profiles (RRUFF "processed") have points
        # near zero whose Poisson weights would swamp the peaks; raw counts sit above this anyway
        floor = max(1e-2 * float(np.max(np.abs(y))), 1e-12)
        self.sw = 1.0 / np.sqrt(np.maximum(y, floor))
        t = 2.0 * (x - x[0]) / max(float(x[-1] - x[0]), 1e-12) - 1.0
        columns = [np.ones_like(t), t]
        for _ in range(2, BACKGROUND_DEGREE + 1):
            columns.append(2.0 * t * columns[-1] - columns[-2])
        columns.append(np.exp(-4.0 * (t + 1.0)))
        if humps:
            columns += [np.exp(-0.5 * ((x - c) / HUMP_SIGMA) ** 2) for c in HUMP_CENTRES if x[0] < c < x[-1]]
        self.basis = np.stack(columns, axis=1)
        self.bw = self.basis * self.sw[:, None]
        self.yw = y * self.sw
        self.yy = float(self.yw @ self.yw)
        self.gbb = self.bw.T @ self.bw
        self.hb = self.bw.T @ self.yw

    def binned(self, factor: int) -> FitData:
        """The data averaged over ``factor`` consecutive points (itself when ``factor`` <= 1)."""
        if factor <= 1:
            return self
        m = len(self.x) // factor
        if m < 20:
            return self
        x = self.x[: m * factor].reshape(m, factor).mean(axis=1)
        y = self.y[: m * factor].reshape(m, factor).mean(axis=1)
        return FitData(x, y, self.humps)

    def solve(self, profiles: np.ndarray) -> Solution:
        """Least squares of the phase ``profiles`` (N, n; scales >= 0) and the background."""
        n = profiles.shape[1]
        pw = profiles * self.sw[:, None]
        k = n + self.basis.shape[1]
        gram = np.empty((k, k))
        gram[:n, :n] = pw.T @ pw
        gram[:n, n:] = pw.T @ self.bw
        gram[n:, :n] = gram[:n, n:].T
        gram[n:, n:] = self.gbb
        rhs = np.concatenate([pw.T @ self.yw, self.hb])
        coef = _solve_nonnegative(gram, rhs, n)
        chi2 = self.yy - 2.0 * float(coef @ rhs) + float(coef @ gram @ coef)
        background = self.basis @ coef[n:]
        return Solution(coef, max(chi2, 0.0), profiles @ coef[:n] + background, background)

    def residual(self, profiles: np.ndarray) -> np.ndarray:
        """Weighted residual vector of the best linear fit of ``profiles``."""
        return (self.y - self.solve(profiles).calculated) * self.sw


def _solve_nonnegative(gram: np.ndarray, rhs: np.ndarray, n_constrained: int) -> np.ndarray:
    """Minimise c'Gc - 2c'h with c[:n_constrained] >= 0 (active set: drop the most negative scale)."""
    k = len(rhs)
    free = np.ones(k, dtype=bool)
    free[:n_constrained] = np.diag(gram)[:n_constrained] > 0
    coef = np.zeros(k)
    for _ in range(n_constrained + 1):
        idx = np.flatnonzero(free)
        sub = gram[np.ix_(idx, idx)]
        norm = np.sqrt(np.maximum(np.diag(sub), 1e-300))
        sol = np.linalg.lstsq(sub / norm[:, None] / norm[None, :], rhs[idx] / norm, rcond=1e-12)[0] / norm
        coef = np.zeros(k)
        coef[idx] = sol
        negative = np.flatnonzero(coef[:n_constrained] < 0)
        if negative.size == 0:
            break
        free[negative[np.argmin(coef[negative])]] = False
    coef[:n_constrained] = np.maximum(coef[:n_constrained], 0.0)
    return coef


def _axis_groups(cell: tuple[float, float, float, float, float, float]) -> list[list[int]]:
    """Cell axes that must scale together to keep the metric's symmetry (equal lengths tie)."""
    a, b, c = cell[:3]

    def same(u: float, v: float) -> bool:
        return abs(u - v) <= 1e-4 * max(u, v)

    if same(a, b) and same(b, c):
        return [[0, 1, 2]]
    if same(a, b):
        return [[0, 1], [2]]
    if same(b, c):
        return [[0], [1, 2]]
    if same(a, c):
        return [[0, 2], [1]]
    return [[0], [1], [2]]


def _metric_terms(
    peaks: Peaks, cell: tuple[float, float, float, float, float, float]
) -> tuple[np.ndarray, list[list[int]]]:
    """Per-peak terms q (n, 6) with 1/d² = sum q_k / (s_i s_j) over the axis pairs, and axis groups.

    Falls back to isotropic scaling (q = 1/d², one group) when the cell does not reproduce the
    library's d-spacings.
    """
    a, b, c = cell[:3]
    cos_a, cos_b, cos_g = np.cos(np.radians(cell[3:]))
    metric = np.array(
        [
            [a * a, a * b * cos_g, a * c * cos_b],
            [a * b * cos_g, b * b, b * c * cos_a],
            [a * c * cos_b, b * c * cos_a, c * c],
        ]
    )
    h = peaks.hkl.astype(np.float64)
    q = np.zeros((len(peaks), 6))
    try:
        recip = np.linalg.inv(metric)
    except np.linalg.LinAlgError:
        recip = None
    if recip is not None and len(peaks):
        for k, (i, j) in enumerate(_PAIRS):
            q[:, k] = (1.0 if i == j else 2.0) * h[:, i] * h[:, j] * recip[i, j]
        with np.errstate(invalid="ignore", divide="ignore"):
            d = 1.0 / np.sqrt(q.sum(axis=1))
        if np.all(np.abs(d / peaks.d - 1.0) < 1e-4):
            return q, _axis_groups(cell)
    q[:] = 0.0
    q[:, 0] = 1.0 / peaks.d**2
    return q, [[0, 1, 2]]


def march_dollase(r: float, cos2: np.ndarray) -> np.ndarray:
    """March–Dollase factor (r² cos²α + sin²α / r)^(-3/2); its mean over all orientations is 1."""
    return np.power(r * r * cos2 + (1.0 - cos2) / r, -1.5)


def _reciprocal_basis(cell: tuple[float, float, float, float, float, float]) -> np.ndarray:
    """Rows a*, b*, c* in Cartesian coordinates (1/Å), so that g(hkl) = hkl @ basis."""
    a, b, c = cell[:3]
    al, be, ga = np.radians(cell[3:])
    cx = math.cos(be)
    cy = (math.cos(al) - math.cos(be) * math.cos(ga)) / math.sin(ga)
    real = np.array(
        [
            [a, 0.0, 0.0],
            [b * math.cos(ga), b * math.sin(ga), 0.0],
            [c * cx, c * cy, c * math.sqrt(max(1.0 - cx * cx - cy * cy, 1e-12))],
        ]
    )
    return np.asarray(np.linalg.inv(real).T)


def _operations(space_group: str | None) -> list[Any]:
    """The space group's symmetry operations (gemmi), or none when the symbol is not known."""
    if not space_group:
        return []
    try:
        import gemmi

        sg = gemmi.find_spacegroup_by_name(space_group)
    except (ImportError, ValueError, RuntimeError):
        return []
    return list(sg.operations()) if sg is not None else []


def equivalent_hkls(hkl: Sequence[int], operations: Sequence[Any]) -> np.ndarray:
    """The symmetry-equivalent indices of ``hkl`` (Friedel mates left out: ±g give the same angle)."""
    seen: dict[tuple[int, ...], None] = {}
    for op in operations or ():
        h = tuple(int(v) for v in op.apply_to_hkl([int(v) for v in hkl]))
        if tuple(-v for v in h) not in seen:
            seen.setdefault(h, None)
    if not seen:
        seen[tuple(int(v) for v in hkl)] = None
    return np.array(list(seen), dtype=np.float64)


class Texture:
    """The plane normals of a phase's reflections (all symmetry equivalents), for March–Dollase factors.

    ``space_group`` (Hermann–Mauguin, the CIF's setting) gives the equivalents; without it, or when they
    do not keep the d-spacing in this cell (another setting), each reflection's representative index
    stands for all of them.
    """

    def __init__(
        self, peaks: Peaks, cell: tuple[float, float, float, float, float, float], space_group: str | None
    ) -> None:
        self.basis = _reciprocal_basis(cell)
        self.operations = _operations(space_group)
        groups = [equivalent_hkls(h, self.operations) for h in peaks.hkl]
        if not self._consistent(groups):
            groups = [np.asarray(h, dtype=np.float64)[None, :] for h in peaks.hkl]
        size = max((len(g) for g in groups), default=1)
        self.normals = np.zeros((len(groups), size, 3))
        self.mask = np.zeros((len(groups), size))
        for i, g in enumerate(groups):
            v = g @ self.basis
            self.normals[i, : len(g)] = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
            self.mask[i, : len(g)] = 1.0
        self.count = np.maximum(self.mask.sum(axis=1), 1.0)

    def _consistent(self, groups: list[np.ndarray]) -> bool:
        for g in groups:
            lengths = np.linalg.norm(g @ self.basis, axis=1)
            if np.any(np.abs(lengths / max(float(lengths[0]), 1e-300) - 1.0) > 1e-4):
                return False
        return True

    def directions(self) -> list[tuple[int, int, int]]:
        """``TEXTURE_DIRECTIONS`` without symmetry-equivalent duplicates (first one kept)."""
        out: list[tuple[int, int, int]] = []
        seen: set[tuple[int, ...]] = set()
        for d in TEXTURE_DIRECTIONS:
            group = equivalent_hkls(d, self.operations)
            keys = {tuple(int(v) for v in g) for g in group} | {tuple(-int(v) for v in g) for g in group}
            if keys & seen:
                continue
            seen |= keys
            out.append(d)
        return out

    def factors(self, direction: Sequence[int], r: float) -> np.ndarray:
        """Per-reflection March–Dollase factor, averaged over the equivalents, for ``direction`` and ``r``."""
        u = np.asarray(direction, dtype=np.float64) @ self.basis
        u = u / max(float(np.linalg.norm(u)), 1e-300)
        cos2 = np.clip((self.normals @ u) ** 2, 0.0, 1.0)
        return np.asarray((march_dollase(r, cos2) * self.mask).sum(axis=1) / self.count)


class Model:
    """The phases' peak lists and how parameters turn into their unit-scale profiles.

    Beyond the parameters in the module docstring, a phase whose cell has unequal axes gets one
    relative scale ``t`` per further group of equal axes (e.g. c/a of a tetragonal cell): CIF lattices
    are often wrong anisotropically (a DFT-relaxed c axis), which one d multiplier cannot absorb.
    """

    def __init__(
        self,
        peaks: list[Peaks],
        cells: list[tuple[float, float, float, float, float, float]],
        wavelength: float,
        wavelength2: float | None,
        providers: Sequence[ProfileProvider | None] | None = None,
        textures: Sequence[Texture | None] | None = None,
        oriented: dict[int, tuple[int, int, int]] | None = None,
    ) -> None:
        self.n = len(peaks)
        self.textures = list(textures) if textures is not None else [None] * len(peaks)
        self.oriented = dict(oriented or {})  # phase -> preferred direction, each with an r parameter
        self.providers = list(providers) if providers is not None else [None] * len(peaks)
        self.rel = [p.intensity / 100.0 for p in peaks]
        self.wavelength = wavelength
        self.wavelength2 = wavelength2
        self.terms: list[np.ndarray] = []
        self.axis_param: list[list[int | None]] = []  # per phase, per axis: index of its t parameter
        self.extra_phase: list[int] = []
        first_extra = _N_GLOBAL + 3 * self.n
        for j, (p, cell) in enumerate(zip(peaks, cells, strict=True)):
            q, groups = _metric_terms(p, cell)
            self.terms.append(q)
            owner: list[int | None] = [None, None, None]
            for group in groups[1:]:
                for axis in group:
                    owner[axis] = first_extra + len(self.extra_phase)
                self.extra_phase.append(j)
            self.axis_param.append(owner)
        self.first_r = first_extra + len(self.extra_phase)
        self.r_param = {j: self.first_r + i for i, j in enumerate(sorted(self.oriented))}
        self.n_params = self.first_r + len(self.oriented)

    def with_orientation(
        self, oriented: dict[int, tuple[int, int, int]], params: np.ndarray
    ) -> tuple[Model, np.ndarray]:
        """A copy with preferred directions ``oriented`` (phase -> hkl), and ``params`` carried over.

        r keeps its value for a phase already oriented along the same direction, else starts at 1.
        """
        other = Model.__new__(Model)
        other.__dict__.update(self.__dict__)
        other.oriented = dict(oriented)
        other.r_param = {j: self.first_r + i for i, j in enumerate(sorted(oriented))}
        other.n_params = self.first_r + len(oriented)
        r = [
            float(params[self.r_param[j]]) if self.oriented.get(j) == d and j in self.r_param else 1.0
            for j, d in sorted(oriented.items())
        ]
        return other, np.concatenate([params[: self.first_r], r])

    def orientation(self, params: np.ndarray) -> dict[int, tuple[tuple[int, int, int], float]]:
        """Phase -> (preferred direction, refined r)."""
        return {j: (d, float(params[self.r_param[j]])) for j, d in self.oriented.items()}

    def initial(self, fwhm: float) -> np.ndarray:
        """Start values: no shift, symmetric peaks, FWHM ``fwhm`` everywhere, eta 0.5, CIF lattices.

        The strain and size terms b and c start at ``WIDTH_START`` x ``fwhm``, not 0: the FWHM depends on
        them quadratically, so at 0 their gradient vanishes and the refinement could not move them.
        """
        extra = np.zeros(len(self.extra_phase))
        n = self.n
        f = WIDTH_START
        a = fwhm * math.sqrt(1.0 - 2.0 * f * f)
        return np.concatenate(
            [
                [0.0, a, f * fwhm, 0.0],
                np.ones(n),
                np.full(n, f * fwhm),
                np.full(n, 0.5),
                extra,
                np.ones(len(self.oriented)),
            ]
        )

    def index_s(self, j: int) -> int:
        """Index of phase j's lattice scale."""
        return _N_GLOBAL + j

    def index_c(self, j: int) -> int:
        """Index of phase j's size-broadening FWHM (at θ = 0)."""
        return _N_GLOBAL + self.n + j

    def index_eta(self, j: int) -> int:
        """Index of phase j's Lorentzian fraction."""
        return _N_GLOBAL + 2 * self.n + j

    def axis_scales(self, params: np.ndarray, j: int) -> np.ndarray:
        """Phase j's a, b, c multipliers."""
        s = float(params[self.index_s(j)])
        return np.array([s * (1.0 + (params[k] if k is not None else 0.0)) for k in self.axis_param[j]])

    def d_spacings(self, params: np.ndarray, j: int) -> np.ndarray:
        """Phase j's d-spacings with the fitted cell."""
        s = self.axis_scales(params, j)
        factors = np.array([1.0 / (s[i] * s[k]) for i, k in _PAIRS])
        return 1.0 / np.sqrt(np.maximum(self.terms[j] @ factors, 1e-300))

    def lattice(self, params: np.ndarray) -> np.ndarray:
        """Each phase's isotropic-equivalent lattice scale, (V / V_cif) ** (1/3)."""
        return np.array([float(np.prod(self.axis_scales(params, j))) ** (1.0 / 3.0) for j in range(self.n)])

    def fwhm(self, params: np.ndarray, j: int, theta: float) -> float:
        """Phase j's FWHM (degrees) at Bragg angle ``theta`` (radians)."""
        a, b, c = params[INDEX_A], params[INDEX_B], params[self.index_c(j)]
        return float(math.sqrt(a * a + (b * math.tan(theta)) ** 2 + (c / math.cos(theta)) ** 2))

    def bounds(self, limit: float) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of every parameter; lattice scales within 1 ± ``limit``."""
        n, m, k = self.n, len(self.extra_phase), len(self.oriented)
        lo = np.concatenate(
            [
                [-1.0, 0.005, 0.0, 0.0],
                np.full(n, 1.0 - limit),
                np.zeros(2 * n),
                np.full(m, -limit),
                np.full(k, TEXTURE_BOUNDS[0]),
            ]
        )
        hi = np.concatenate(
            [
                [1.0, 2.0, 2.0, MAX_ASYMMETRY],
                np.full(n, 1.0 + limit),
                np.full(n, MAX_SIZE_FWHM),
                np.ones(n),
                np.full(m, limit),
                np.full(k, TEXTURE_BOUNDS[1]),
            ]
        )
        return lo, hi

    def steps(self) -> np.ndarray:
        """Finite-difference steps."""
        n, m, k = self.n, len(self.extra_phase), len(self.oriented)
        return np.concatenate(
            [
                [2e-3, 2e-3, 2e-3, 2e-3],
                np.full(n, 2e-5),
                np.full(n, 2e-3),
                np.full(n, 1e-2),
                np.full(m, 2e-5),
                np.full(k, 2e-3),
            ]
        )

    def lattice_indices(self) -> np.ndarray:
        """Indices of the parameters that move reflections: lattice scales and axis ratios."""
        first_extra = _N_GLOBAL + 3 * self.n
        return np.concatenate(
            [
                np.arange(_N_GLOBAL, _N_GLOBAL + self.n),
                np.arange(first_extra, first_extra + len(self.extra_phase)),
            ]
        )

    def phase_of(self, k: int) -> int | None:
        """The phase a parameter belongs to, None for a global one."""
        if k < _N_GLOBAL:
            return None
        if k < _N_GLOBAL + 3 * self.n:
            return (k - _N_GLOBAL) % self.n
        if k >= self.first_r:
            return sorted(self.oriented)[k - self.first_r]
        return self.extra_phase[k - _N_GLOBAL - 3 * self.n]

    def relative(self, params: np.ndarray, j: int) -> np.ndarray:
        """Phase j's relative peak intensities, times the March–Dollase factors when it is oriented."""
        texture = self.textures[j]
        if j not in self.oriented or texture is None:
            return self.rel[j]
        return self.rel[j] * texture.factors(self.oriented[j], float(params[self.r_param[j]]))

    def parts(self, x: np.ndarray, params: np.ndarray, ratio: float, j: int) -> np.ndarray:
        """Phase j's unit-scale profile on ``x`` as Lorentzian and Gaussian parts, (2, len(x))."""
        provider = self.providers[j]
        if provider is not None:
            return provider(x, float(params[INDEX_ZERO]), float(params[self.index_s(j)]))
        return cached_phase_parts(
            x,
            self.d_spacings(params, j),
            self.relative(params, j),
            self.wavelength,
            zero_shift=float(params[INDEX_ZERO]),
            fwhm_of_theta=(float(params[INDEX_A]), float(params[INDEX_B]), float(params[self.index_c(j)])),
            wavelength2=self.wavelength2,
            ka2_ratio=ratio,
            asymmetry=float(params[INDEX_ASYMMETRY]),
        )

    def all_parts(self, x: np.ndarray, params: np.ndarray, ratio: float) -> np.ndarray:
        """Every phase's parts, (n, 2, len(x))."""
        out = np.zeros((self.n, 2, len(x)))
        for j in range(self.n):
            out[j] = self.parts(x, params, ratio, j)
        return out

    def updated_parts(
        self, x: np.ndarray, params: np.ndarray, ratio: float, parts: np.ndarray, k: int
    ) -> np.ndarray:
        """``parts`` recomputed after parameter k changed (only what depends on it)."""
        if _N_GLOBAL + 2 * self.n <= k < _N_GLOBAL + 3 * self.n:  # a Lorentzian fraction
            return parts
        j = self.phase_of(k)
        if j is None:
            return self.all_parts(x, params, ratio)
        out = parts.copy()
        out[j] = self.parts(x, params, ratio, j)
        return out

    def combine(self, parts: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Profiles (len(x), n) from parts with the Lorentzian fractions in ``params``."""
        eta = params[_N_GLOBAL + 2 * self.n : _N_GLOBAL + 3 * self.n, None]
        return (eta * parts[:, 0, :] + (1.0 - eta) * parts[:, 1, :]).T

    def profiles(self, x: np.ndarray, params: np.ndarray, ratio: float) -> np.ndarray:
        """Every phase's profile, (len(x), n)."""
        return self.combine(self.all_parts(x, params, ratio), params)
