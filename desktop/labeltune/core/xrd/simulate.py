"""Seeded, vectorised simulation of realistic multi-phase powder patterns for training classifiers.

Physics (per pattern, phases drawn from a peak :class:`~labeltune.core.xrd.library.Library`):

* **Scale.** ``Phase.scattering_power`` is ``abs_intensity_max / (density * volume^2)``: the strongest
  peak's absolute integrated intensity (multiplicity x |F|^2 x Lorentz-polarisation, whole cell, e^2)
  divided by rho V^2. For a mixture with a common mass absorption coefficient mu*, the integrated
  intensity of peak hkl of phase j is ``I = K * w_j / (rho_j * mu*) * m|F|^2 LP / V_j^2``, so with
  ``Peaks.intensity / 100`` the peak's intensity relative to the phase's strongest,
  ``I_j,hkl = const * w_j * scattering_power_j * intensity_hkl / 100``. ``w`` are *weight* fractions;
  heights are not normalised per phase.
* **Peak positions.** Lattice strain scales every d of a phase by ``1 + e`` (2θ recomputed by Bragg)
  and its intensity per unit weight by ``(1 + e)^-3`` (scattering power ∝ 1 / V);
  sample displacement shifts 2θ by ``delta * cos θ``; Kα2 (probability ``ka2_probability``, unless
  ``monochromatic``) adds a copy of every peak at ``2 asin(λ2 / 2d)`` with ``ka2_ratio`` intensity.
* **Peak shape.** Unit-area pseudo-Voigt with mixing ``eta`` and FWHM ``sqrt(H_inst^2 + H_size^2)``,
  ``H_size = K λ / (L cos θ)`` (Scherrer, K = 0.9, L the phase's crystallite size).
* **Texture.** Each peak's intensity is multiplied by ``exp(sigma * z)``, z ~ N(0, 1).
* **Measured references** (``Phase.kind == "measured"``) add their stored profile, scaled by weight x
  scattering power, shifted by the strain and the displacement (``reference_patterns``); their widths
  and Kα2 are those of the measurement.
* **Extras.** 0..``max_impurity_peaks`` weak unidentified peaks, a smooth positive background
  (Chebyshev degree 3 plus a low-angle exponential), counting noise at a random maximum count level
  (exact Poisson below 30 counts, the Gaussian approximation with the same mean and variance above).

Rendering: every peak is a stick split linearly between the two nearest grid points and between the two
nearest of ``width_nodes`` log-spaced FWHM nodes (per pattern); each node's stick spectrum is
multiplied by the analytic Fourier transform of its pseudo-Voigt and one inverse FFT gives the pattern.
This keeps full Lorentzian tails at a cost independent of the number of peaks.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from labeltune.core.xrd.bragg import two_theta_of_d
from labeltune.core.xrd.crystal import CU_KA1
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.reference_patterns import add_profiles_to_simulated

CU_KA2 = 1.54439
"""Cu Kα2 wavelength in Å."""

SCHERRER_K = 0.9
_LN2 = math.log(2.0)
_CHUNK = 512


@dataclass(frozen=True)
class SimulationConfig:
    """Ranges of the simulated patterns' parameters.

    A ``(lo, hi)`` pair is sampled uniformly (``crystallite_nm`` and ``max_counts`` log-uniformly);
    equal ends fix a parameter.
    """

    two_theta_min: float = 10.0
    two_theta_max: float = 100.0
    points: int = 4501
    min_phases: int = 1
    max_phases: int = 3
    dirichlet_alpha: float = 1.0
    """Weight fractions ~ Dirichlet(alpha) over the present phases."""
    min_fraction: float = 0.0
    """Every present phase gets at least this weight fraction (the rest is Dirichlet-distributed)."""
    minor_probability: float = 0.0
    """Share of the patterns with two or more phases in which one present phase is a minor one."""
    minor_fraction: tuple[float, float] = (0.005, 0.03)
    """A minor phase's weight fraction, log-uniform in this range (below ``min_fraction``: issue 14)."""
    crystallite_nm: tuple[float, float] = (5.0, 1000.0)
    crystallite_phase_sigma: float = 0.3
    """Per-phase log-normal spread around the pattern's crystallite size (clipped to the range)."""
    instrument_fwhm_deg: tuple[float, float] = (0.05, 0.15)
    eta: tuple[float, float] = (0.2, 0.8)
    strain: float = 0.01
    """Each phase's lattice scale is 1 + U(-strain, strain)."""
    displacement_deg: float = 0.1
    """Sample displacement: 2θ shifts by U(-d, d) * cos θ degrees."""
    texture_sigma: float = 0.15
    max_counts: tuple[float, float] = (200.0, 20000.0)
    noise: bool = True
    background: tuple[float, float] = (0.0, 0.3)
    """Background level relative to the strongest peak's height."""
    impurity_probability: float = 0.3
    max_impurity_peaks: int = 2
    impurity_intensity: tuple[float, float] = (0.005, 0.05)
    """Impurity peak area relative to the pattern's strongest peak."""
    wavelength: float = CU_KA1
    wavelength2: float = CU_KA2
    ka2_probability: float = 0.7
    ka2_ratio: float = 0.5
    monochromatic: bool = False
    width_nodes: int = 4

    def grid(self) -> np.ndarray:
        """The 2θ grid in degrees."""
        return np.linspace(self.two_theta_min, self.two_theta_max, self.points)

    def check(self, n_phases: int) -> None:
        """Raise ``ValueError`` when the settings cannot be simulated with ``n_phases`` phases."""
        if not 0 < self.two_theta_min < self.two_theta_max < 180 or self.points < 16:
            raise ValueError("need 0 < two_theta_min < two_theta_max < 180 and at least 16 points")
        if not 1 <= self.min_phases <= self.max_phases:
            raise ValueError("need 1 <= min_phases <= max_phases")
        if n_phases < 1:
            raise ValueError("the library has no phases")
        if self.crystallite_nm[0] <= 0 or self.max_counts[0] <= 0 or self.width_nodes < 2:
            raise ValueError("crystallite sizes and counts must be positive, width_nodes >= 2")


@dataclass
class SimulatedBatch:
    """Simulated patterns: ``x`` (n, points) float32 scaled to max 1, labels and parameters.

    ``present`` (n, n_phases) bool and ``fractions`` (n, n_phases) float32 weight fractions summing to
    1 over the present phases. ``scale`` (n,) is what each noise-free pattern was divided by, in the
    library's absolute units (weight fraction x scattering_power x intensity/100 per unit area).
    Per-pattern parameters: ``crystallite_nm`` (n, n_phases, 0 where absent), ``instrument_fwhm``,
    ``eta``, ``displacement`` (deg), ``max_counts``, ``ka2`` (bool), ``n_impurities``.
    """

    x: np.ndarray
    present: np.ndarray
    fractions: np.ndarray
    phase_names: list[str]
    two_theta: np.ndarray
    seed: int | None
    config: SimulationConfig
    scale: np.ndarray
    crystallite_nm: np.ndarray
    strain: np.ndarray
    instrument_fwhm: np.ndarray
    eta: np.ndarray
    displacement: np.ndarray
    max_counts: np.ndarray
    ka2: np.ndarray
    n_impurities: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _fft_size(n: int) -> int:
    best = 1 << (n - 1).bit_length()
    for p5 in (1, 5, 25):
        for p3 in (1, 3, 9):
            m = p5 * p3
            size = m * (1 << max(0, math.ceil(math.log2(n / m))))
            best = min(best, size)
    return best


def _uniform(rng: np.random.Generator, rng_pair: tuple[float, float], size: object) -> np.ndarray:
    lo, hi = rng_pair
    return rng.uniform(lo, hi, size=size)  # type: ignore[call-overload,no-any-return]


def _loguniform(rng: np.random.Generator, rng_pair: tuple[float, float], size: object) -> np.ndarray:
    lo, hi = rng_pair
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size=size))  # type: ignore[call-overload]


class _PeakTable:
    """All phases' peaks flattened: d, relative intensity x scattering power, offsets per phase."""

    def __init__(self, library: Library) -> None:
        names = library.names
        self.library = library
        # measured references are drawn as their stored profiles (reference_patterns), not as sticks
        counts = np.array([0 if n in library.profiles else len(library.peaks[n]) for n in names], np.int64)
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        kept = [library.peaks[n] for n in names if n not in library.profiles]
        self.d = np.concatenate([p.d for p in kept] or [np.zeros(0)]).astype(np.float64)
        rel = np.concatenate([p.intensity for p in kept] or [np.zeros(0)]) / 100.0
        power = np.array([p.scattering_power for p in library.phases], dtype=np.float64)
        self.power_max = float(power.max())
        self.power = power / self.power_max  # only ratios matter; keep numbers near 1
        self.amp = rel * np.repeat(self.power, counts)


def _pv_spectrum(fwhm: np.ndarray, eta: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """Fourier transform of unit-area pseudo-Voigts; fwhm (..., S) in points, freq cycles/point."""
    h = fwhm[..., None].astype(np.float32)
    e = eta[..., None].astype(np.float32)
    gauss = np.exp(-((np.float32(math.pi) * h * freq) ** 2) / np.float32(4 * _LN2))
    lorentz = np.exp(-np.float32(math.pi) * h * freq)
    return (e * lorentz + (1 - e) * gauss).astype(np.float32)  # type: ignore[no-any-return]


def _with_minor_phase(
    w: np.ndarray, k: np.ndarray, cfg: SimulationConfig, rng: np.random.Generator
) -> np.ndarray:
    """``w`` with one present phase set to a minor fraction in ``minor_probability`` of the rows of k >= 2.

    The other phases keep their proportions and share the rest.
    """
    rows = np.flatnonzero((rng.random(len(k)) < cfg.minor_probability) & (k >= 2))
    slot = rng.integers(0, np.maximum(k[rows], 1))
    minor = _loguniform(rng, cfg.minor_fraction, len(rows))
    out = w.copy()
    part = out[rows]
    part[np.arange(len(rows)), slot] = 0.0
    part *= ((1.0 - minor) / np.maximum(part.sum(axis=1), 1e-12))[:, None]
    part[np.arange(len(rows)), slot] = minor
    out[rows] = part
    return out


def _simulate_chunk(
    table: _PeakTable,
    n: int,
    cfg: SimulationConfig,
    rng: np.random.Generator,
    fixed: np.ndarray | None,
) -> dict[str, np.ndarray]:
    n_ph = len(table.counts)
    k_max = min(cfg.max_phases, n_ph)
    # -- composition -------------------------------------------------------------------------------
    if fixed is None:
        k = rng.integers(min(cfg.min_phases, k_max), k_max + 1, size=n)
        order = np.argsort(rng.random((n, n_ph)), axis=1)[:, :k_max]
        slot_ok = np.arange(k_max)[None, :] < k[:, None]
        w = rng.gamma(cfg.dirichlet_alpha, size=(n, k_max)) * slot_ok
        w /= w.sum(axis=1, keepdims=True)
        if cfg.min_fraction > 0:
            floor = np.minimum(cfg.min_fraction, 1.0 / k)[:, None]
            w = (floor + (1.0 - floor * k[:, None]) * w) * slot_ok
        if cfg.minor_probability > 0:
            w = _with_minor_phase(w, k, cfg, rng)
    else:
        idx = np.flatnonzero(fixed > 0)
        k_max = len(idx)
        order = np.broadcast_to(idx, (n, k_max)).copy()
        slot_ok = np.ones((n, k_max), dtype=bool)
        w = np.broadcast_to(fixed[idx] / fixed[idx].sum(), (n, k_max)).copy()
    # -- per-pattern / per-phase parameters ----------------------------------------------------------
    size0 = _loguniform(rng, cfg.crystallite_nm, n)
    size = np.clip(
        size0[:, None] * np.exp(cfg.crystallite_phase_sigma * rng.standard_normal((n, k_max))),
        *cfg.crystallite_nm,
    )
    strain = 1.0 + rng.uniform(-cfg.strain, cfg.strain, (n, k_max))
    inst = _uniform(rng, cfg.instrument_fwhm_deg, n)
    eta = _uniform(rng, cfg.eta, n)
    disp = rng.uniform(-cfg.displacement_deg, cfg.displacement_deg, n)
    counts_max = _loguniform(rng, cfg.max_counts, n)
    ka2 = (rng.random(n) < cfg.ka2_probability) & (not cfg.monochromatic)
    # -- ragged gather of the present phases' peaks ----------------------------------------------------
    slot_pat, slot_k = np.nonzero(slot_ok)
    slot_phase = order[slot_pat, slot_k]
    cnt = table.counts[slot_phase]
    total = int(cnt.sum())
    rep = np.repeat(np.arange(len(slot_phase)), cnt)
    within = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    pk = table.offsets[slot_phase][rep] + within
    pat = slot_pat[rep]
    d = table.d[pk] * strain[slot_pat, slot_k][rep]
    # intensity per unit weight varies as 1 / V: a strained cell scatters (1 + e)^-3 as much
    amp = table.amp[pk] * w[slot_pat, slot_k][rep] / strain[slot_pat, slot_k][rep] ** 3
    if cfg.texture_sigma > 0:
        amp = amp * np.exp(cfg.texture_sigma * rng.standard_normal(total))
    size_pk = size[slot_pat, slot_k][rep]
    tth, ok = two_theta_of_d(d, cfg.wavelength)
    lam = np.full(total, cfg.wavelength)
    # -- Kα2 copies ----------------------------------------------------------------------------------
    sel2 = ka2[pat]
    if sel2.any():
        tth2, ok2 = two_theta_of_d(d[sel2], cfg.wavelength2)
        ok = np.concatenate([ok, ok2])
        tth = np.concatenate([tth, tth2])
        amp = np.concatenate([amp, cfg.ka2_ratio * amp[sel2]])
        pat = np.concatenate([pat, pat[sel2]])
        size_pk = np.concatenate([size_pk, size_pk[sel2]])
        lam = np.concatenate([lam, np.full(int(sel2.sum()), cfg.wavelength2)])
    # -- impurity peaks --------------------------------------------------------------------------------
    n_imp = np.where(
        rng.random(n) < cfg.impurity_probability, rng.integers(1, max(cfg.max_impurity_peaks, 1) + 1, n), 0
    )
    if cfg.max_impurity_peaks > 0 and n_imp.any():
        ip = np.repeat(np.arange(n), n_imp)
        top = np.zeros(n)
        np.maximum.at(top, pat, amp)
        m = len(ip)
        ok = np.concatenate([ok, np.ones(m, dtype=bool)])
        tth = np.concatenate([tth, rng.uniform(cfg.two_theta_min, cfg.two_theta_max, m)])
        amp = np.concatenate([amp, top[ip] * _uniform(rng, cfg.impurity_intensity, m)])
        pat = np.concatenate([pat, ip])
        size_pk = np.concatenate([size_pk, size0[ip]])
        lam = np.concatenate([lam, np.full(m, cfg.wavelength)])
    theta = np.radians(tth) / 2.0
    tth = tth + disp[pat] * np.cos(theta)
    # -- widths and width nodes ------------------------------------------------------------------------
    step = (cfg.two_theta_max - cfg.two_theta_min) / (cfg.points - 1)
    h_size = np.degrees(SCHERRER_K * lam / (size_pk * 10.0 * np.cos(theta)))
    fwhm = np.log(np.sqrt(inst[pat] ** 2 + h_size**2) / step)  # log points
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, pat, fwhm)
    np.maximum.at(hi, pat, fwhm)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    hi = np.maximum(np.where(np.isfinite(hi), hi, 0.0), lo + 1e-6)
    s_n = cfg.width_nodes
    u = np.clip((fwhm - lo[pat]) / (hi - lo)[pat] * (s_n - 1), 0.0, s_n - 1 - 1e-9)
    s0 = u.astype(np.int64)
    a = u - s0
    nodes = np.exp(lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, s_n)[None, :])
    # -- sticks into (n, S, nfft) -------------------------------------------------------------------
    nfft = _fft_size(cfg.points + max(256, cfg.points // 8))
    pad = (nfft - cfg.points) // 2
    pos = (tth - cfg.two_theta_min) / step + pad
    ok &= (pos >= 1) & (pos < nfft - 2)
    j = np.floor(pos[ok]).astype(np.int64)
    b = pos[ok] - j
    # cubic Lagrange weights on j-1..j+2: sub-point positions without the width and height errors of
    # linear splitting (which broadens a 2.5-point-wide peak by up to ~5 %)
    lag = (
        -b * (b - 1) * (b - 2) / 6,
        (b + 1) * (b - 1) * (b - 2) / 2,
        -(b + 1) * b * (b - 2) / 2,
        (b + 1) * b * (b - 1) / 6,
    )
    base = (pat[ok] * s_n + s0[ok]) * nfft + j
    amp_a, a_ok = amp[ok], a[ok]
    flat = np.concatenate([base + node * nfft + t for node in (0, 1) for t in (-1, 0, 1, 2)])
    wts = np.concatenate(
        [amp_a * (a_ok if node else 1 - a_ok) * lag[t + 1] for node in (0, 1) for t in (-1, 0, 1, 2)]
    )
    sticks = np.bincount(flat, wts, minlength=n * s_n * nfft).astype(np.float32).reshape(n, s_n, nfft)
    freq = np.fft.rfftfreq(nfft).astype(np.float32)
    spec = np.fft.rfft(sticks, axis=-1)
    spec *= _pv_spectrum(nodes, np.broadcast_to(eta[:, None], nodes.shape), freq)
    y = np.fft.irfft(spec.sum(axis=1), nfft, axis=-1)[:, pad : pad + cfg.points]
    if table.library.profiles:
        ratio = table.library.wavelength / cfg.wavelength  # profiles are stored at the library's wavelength
        add_profiles_to_simulated(
            y, cfg.grid(), table.library, slot_phase, slot_pat, w[slot_pat, slot_k],
            strain[slot_pat, slot_k] * ratio, disp, ratio**3,
        )  # fmt: skip
    y = np.maximum(y, 0.0).astype(np.float32)
    scale = y.max(axis=1)
    y /= np.maximum(scale, 1e-30)[:, None]
    # -- background and noise ------------------------------------------------------------------------
    xs = np.linspace(-1.0, 1.0, cfg.points)
    basis = np.stack([np.ones_like(xs), xs, 2 * xs**2 - 1, 4 * xs**3 - 3 * xs, np.exp(-(xs + 1) * 4.0)])
    coef = np.empty((n, 5))
    coef[:, 0] = 1.0
    coef[:, 1:4] = rng.uniform(-0.3, 0.3, (n, 3))
    coef[:, 4] = rng.uniform(0.0, 2.0, n)
    level = _uniform(rng, cfg.background, n)
    bkg = (level[:, None] * coef) @ basis
    signal = y + bkg.astype(np.float32)
    if cfg.noise:
        lam_c = signal * counts_max[:, None].astype(np.float32)
        z = rng.standard_normal(lam_c.shape, dtype=np.float32)
        out = lam_c + np.sqrt(lam_c) * z
        low = lam_c < 30.0
        if low.any():
            out[low] = rng.poisson(lam_c[low])
        signal = np.maximum(out, 0.0)
    signal /= np.maximum(signal.max(axis=1, keepdims=True), 1e-30)
    present = np.zeros((n, n_ph), dtype=bool)
    frac = np.zeros((n, n_ph), dtype=np.float32)
    sizes = np.zeros((n, n_ph), dtype=np.float32)
    strains = np.zeros((n, n_ph), dtype=np.float32)
    present[slot_pat, slot_phase] = True
    frac[slot_pat, slot_phase] = w[slot_pat, slot_k]
    sizes[slot_pat, slot_phase] = size[slot_pat, slot_k]
    strains[slot_pat, slot_phase] = strain[slot_pat, slot_k] - 1.0
    return {
        "x": signal.astype(np.float32),
        "present": present,
        "fractions": frac,
        "scale": scale.astype(np.float64) * float(table.power_max),
        "crystallite_nm": sizes,
        "strain": strains,
        "instrument_fwhm": inst.astype(np.float32),
        "eta": eta.astype(np.float32),
        "displacement": disp.astype(np.float32),
        "max_counts": counts_max.astype(np.float32),
        "ka2": ka2,
        "n_impurities": n_imp.astype(np.int8),
    }


def simulate(
    library: Library,
    n: int,
    config: SimulationConfig | None = None,
    seed: int | None = None,
    *,
    composition: Mapping[str, float] | None = None,
) -> SimulatedBatch:
    """Simulate ``n`` patterns from ``library``; the same ``seed`` gives the same batch.

    ``composition`` (phase name -> weight) fixes the phases and weight fractions of every pattern
    instead of drawing them (calibration series, tests). Raises ``ValueError`` for bad settings.
    """
    cfg = config if config is not None else SimulationConfig()
    cfg.check(len(library.phases))
    if n < 0:
        raise ValueError("n must be >= 0")
    table = _PeakTable(library)
    fixed: np.ndarray | None = None
    if composition is not None:
        fixed = np.zeros(len(library.phases))
        names = library.names
        for name, value in composition.items():
            if name not in names:
                raise ValueError(f"unknown phase {name!r}")
            fixed[names.index(name)] = float(value)
        if not (fixed >= 0).all() or fixed.sum() <= 0:
            raise ValueError("composition weights must be >= 0 with a positive sum")
    rng = np.random.default_rng(seed)
    parts = [_simulate_chunk(table, min(_CHUNK, n - i), cfg, rng, fixed) for i in range(0, n, _CHUNK)]
    if not parts:
        parts = [_simulate_chunk(table, 1, cfg, rng, fixed)]
        parts = [{key: value[:0] for key, value in parts[0].items()}]
    cat = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return SimulatedBatch(phase_names=library.names, two_theta=cfg.grid(), seed=seed, config=cfg, **cat)


def write_simulated(batch: SimulatedBatch, library: Library, out_dir: str | Path) -> Path:
    """Write ``patterns.npy`` (float16, n x points), ``labels.csv`` and ``meta.json`` to ``out_dir``.

    ``labels.csv`` has one row per pattern: ``index``, ``phases`` (present phase names joined by
    ``;``) and one weight-fraction column per library phase.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "patterns.npy", batch.x.astype(np.float16))
    names = batch.phase_names
    with (out / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["index", "phases", *names])
        for i in range(len(batch)):
            here = ";".join(names[j] for j in np.flatnonzero(batch.present[i]))
            writer.writerow([i, here, *(f"{v:.6g}" for v in batch.fractions[i])])
    meta = {
        "n": len(batch),
        "grid": {
            "two_theta_min": batch.config.two_theta_min,
            "two_theta_max": batch.config.two_theta_max,
            "points": batch.config.points,
        },
        "config": asdict(batch.config),
        "library": str(library.path) if library.path is not None else None,
        "phases": names,
        "seed": batch.seed,
        "dtype": "float16",
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return out
