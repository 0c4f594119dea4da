"""Microabsorption: Brindley's particle-absorption correction of weight fractions.

In a powder of phases with different linear absorption coefficients μ_j, a strongly absorbing phase's
grains diffract mostly from their surface: its intensity per weight is lowered by the particle
absorption factor τ_j (Brindley, Phil. Mag. 36 (1945) 347), a weakly absorbing phase's raised. The fit
(``quantify``) assumes a common μ, so its fractions are w'_j ∝ w_j τ_j; corrected, w_j ∝ w'_j / τ_j.

τ for spheres of radius R, in the small-angle limit where the path in and out of a grain is the chord
through the scattering point: τ = (1/V) ∫ exp(-Δμ c) dV = 3 ∫₀¹ t² exp(-a t) dt with a = 2 (μ_j - μ̄) R,
so ``τ = 3 / a³ (2 - e^-a (a² + 2a + 2))`` (1 - 1.5 Δμ R for small Δμ R: Brindley's table gives 0.985 at
Δμ R = 0.01 and 0.86 at 0.1, as this does). μ̄ is the volume-weighted mean of the solid phases'
μ, iterated with the corrected fractions.

Mass attenuation of the elements: photoabsorption from the Cromer-Liberman f'' (Cromer & Liberman, J.
Chem. Phys. 53 (1970) 1891; Acta Cryst. A37 (1981) 267) as computed by gemmi at the library's
wavelength, μ/ρ = 2 r_e λ f'' N_A / A. At Cu Kα it leaves out coherent and incoherent scattering, which
tabulated totals (International Tables for Crystallography Vol. C, Table 4.2.4.3) add: a few per cent
of μ, far less than the uncertainty of a particle size (ADR 0047).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from labeltune.core.xrd.library import Library, Phase
from labeltune.core.xrd.results import XrdPrediction

CLASSICAL_ELECTRON_RADIUS_CM = 2.8179403262e-13
AVOGADRO = 6.02214076e23
HC_EV_ANGSTROM = 12398.4198
MATTERS = 0.01
"""A correction that moves some fraction by more than this (1 wt %) is reported as a warning."""
TYPICAL_PARTICLE_UM = 5.0
"""Without a particle size, the contrast is judged for grains this size (a laboratory-ground powder)."""
_ITERATIONS = 8


def mass_attenuation(element: str, wavelength: float) -> float:
    """Photoabsorption mass attenuation coefficient μ/ρ (cm²/g) of ``element`` at ``wavelength`` (Å)."""
    import gemmi

    el = gemmi.Element(element)
    if el.atomic_number == 0:
        raise ValueError(f"unknown element {element!r}")
    _, fpp = gemmi.cromer_liberman(z=el.atomic_number, energy=HC_EV_ANGSTROM / wavelength)
    return 2.0 * CLASSICAL_ELECTRON_RADIUS_CM * wavelength * 1e-8 * fpp * AVOGADRO / el.weight


def linear_absorption(phase: Phase, wavelength: float) -> float | None:
    """μ (1/cm) of a phase from its formula and density; None when the library does not know them."""
    import gemmi

    if not phase.element_counts or not phase.density > 0:
        return None
    masses = {el: n * gemmi.Element(el).weight for el, n in phase.element_counts.items()}
    total = sum(masses.values())
    if not total > 0:
        return None
    per_mass = sum(m / total * mass_attenuation(el, wavelength) for el, m in masses.items())
    return phase.density * per_mass


def brindley_factor(delta_mu: float, radius_cm: float) -> float:
    """Brindley's particle absorption factor τ for spheres (see the module docstring)."""
    a = 2.0 * delta_mu * radius_cm
    if abs(a) < 1e-4:
        return 1.0 - 0.75 * a + 0.3 * a * a
    return 3.0 / a**3 * (2.0 - math.exp(-a) * (a * a + 2.0 * a + 2.0))


@dataclass
class Microabsorption:
    """The corrected fractions, each phase's μ (1/cm) and τ, and the largest change (fraction, 0..1)."""

    fractions: dict[str, float]
    mu: dict[str, float]
    factors: dict[str, float]
    mean_mu: float
    largest_change: float
    unknown: list[str] = field(default_factory=list)
    """Phases without formula or density: left uncorrected (τ = 1)."""


def brindley_correction(
    fractions: Mapping[str, float], library: Library, particle_size_um: float
) -> Microabsorption:
    """Correct weight ``fractions`` (name -> 0..1) for grains of diameter ``particle_size_um`` (µm)."""
    if not particle_size_um > 0:
        raise ValueError("the particle size must be positive (µm)")
    radius = 0.5 * particle_size_um * 1e-4
    mu: dict[str, float] = {}
    density: dict[str, float] = {}
    unknown: list[str] = []
    for name in fractions:
        phase = library.phase(name)
        value = linear_absorption(phase, library.wavelength)
        if value is None:
            unknown.append(name)
        else:
            mu[name], density[name] = value, phase.density
    observed = {n: max(float(w), 0.0) for n, w in fractions.items()}
    total = sum(observed.values())
    if not total > 0 or not mu:
        return Microabsorption(dict(fractions), mu, {n: 1.0 for n in fractions}, 0.0, 0.0, unknown)
    current = {n: w / total for n, w in observed.items()}
    factors = {n: 1.0 for n in fractions}
    mean_mu = 0.0
    for _ in range(_ITERATIONS):
        volume = {n: current[n] / density[n] for n in mu}
        mean_mu = sum(volume[n] * mu[n] for n in mu) / max(sum(volume.values()), 1e-300)
        factors = {n: brindley_factor(mu[n] - mean_mu, radius) if n in mu else 1.0 for n in fractions}
        raw = {n: observed[n] / factors[n] for n in fractions}
        norm = sum(raw.values())
        current = {n: raw[n] / norm for n in fractions}
    change = max(abs(current[n] - observed[n] / total) for n in fractions)
    return Microabsorption(current, mu, factors, mean_mu, change, unknown)


def _mu_text(result: Microabsorption) -> str:
    return ", ".join(f"{n} {v:.0f}" for n, v in sorted(result.mu.items(), key=lambda kv: kv[1]))


def correct_prediction(prediction: XrdPrediction, library: Library, particle_size_um: float | None) -> None:
    """Apply the correction to a fitted ``XrdPrediction``'s fractions and say what it did (warnings).

    The correction's uncertainty joins each fitted fraction's esd (in quadrature, ADR 0068). Without a
    particle size the fractions stay as fitted and the change grains of ``TYPICAL_PARTICLE_UM`` would make
    is that uncertainty: the size is unknown, and a fraction a laboratory-ground powder would move by
    3 wt % is not known to better than that; a warning says when the change exceeds ``MATTERS`` (the
    absorption contrast is large enough to matter). With a size, half the correction applied: a grain
    size is rarely known to better than ±50 %.
    """
    calls, warnings = prediction.phases, prediction.warnings
    if prediction.residual is None or len(calls) < 2:
        return
    fractions = {c.name: float(c.fraction or 0.0) for c in calls}
    total = sum(fractions.values())
    if not total > 0:
        return
    size = particle_size_um if particle_size_um is not None else TYPICAL_PARTICLE_UM
    result = brindley_correction(fractions, library, size)
    if result.unknown:
        warnings.append(
            "microabsorption: no density or formula for " + ", ".join(result.unknown) + ": left uncorrected"
        )
    known = particle_size_um is not None
    share = 0.5 if known else 1.0
    updated = []
    for call in calls:
        change = result.fractions[call.name] - fractions[call.name] / total
        esd = call.fraction_esd
        updated.append(
            dataclasses.replace(
                call,
                fraction=result.fractions[call.name] if known else call.fraction,
                fraction_esd=math.hypot(esd, share * change) if esd is not None else None,
            )
        )
    prediction.phases = updated
    if result.largest_change <= MATTERS:
        return
    if known:
        warnings.append(
            f"microabsorption (Brindley, {size:g} µm grains) corrected the fractions by up to "
            f"{100 * result.largest_change:.1f} wt % (μ in 1/cm: {_mu_text(result)}); the correction is "
            "only as good as the particle size"
        )
    else:
        warnings.append(
            f"large absorption contrast (μ in 1/cm: {_mu_text(result)}): microabsorption moves fractions "
            f"by about {100 * result.largest_change:.1f} wt % for {size:g} µm grains (in the esds); give "
            "the particle size to correct it"
        )
