"""Misfit-aware evidence and esds (``core/xrd/misfit.py``, ADR 0056): systematic misfit is not a phase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labeltune.core.xrd.misfit import best_peak, envelope, integrated_correlation, systematic_variance
from labeltune.core.xrd.shipped import shipped_model_dir

MODEL = shipped_model_dir()


def test_the_correlation_factor_spans_the_whole_correlation_length() -> None:
    rng = np.random.default_rng(0)
    white = rng.standard_normal(20_000)
    assert integrated_correlation(white, 50) == pytest.approx(1.0, abs=0.1)
    # a misfit spread over 10 points (a moving average): each point is worth about a tenth of one
    smooth = np.convolve(white, np.ones(10) / 10, mode="same")
    assert 8.0 < integrated_correlation(smooth, 50) < 13.0
    # the lag-1 form (1+ρ)/(1−ρ) = 19 for this ρ = 0.9 overstates it; a cut-off caps the sum
    assert integrated_correlation(smooth, 3) == pytest.approx(1 + 2 * (0.9 + 0.8 + 0.7), abs=0.3)


def test_the_systematic_term_sits_on_the_known_phases_peaks_only() -> None:
    x = np.linspace(20.0, 40.0, 2001)
    background = np.full_like(x, 100.0)
    peak = 10_000.0 * np.exp(-0.5 * ((x - 30.0) / 0.05) ** 2)
    calculated = background + peak
    observed = background + 1.05 * peak  # the structure misses this peak by 5 %
    assert envelope(np.array([0.0, 0.0, 1.0, 0.0, 0.0, -1.0]), 1).tolist() == [0, 1, 1, 1, 0, 0]
    variance = systematic_variance(x, observed, calculated, background, fwhm_deg=0.12)
    far = np.abs(x - 30.0) > 0.5
    assert np.allclose(variance[far], np.maximum(observed[far], 0.01 * observed.max()))
    top = int(np.argmax(peak))
    # about (5 % of the peak)² on top of the counts: a 500-count misfit is noise at this weight
    assert variance[top] - observed[top] == pytest.approx((0.05 * peak[top]) ** 2, rel=0.5)


def test_the_best_peak_is_the_one_holding_the_most_evidence() -> None:
    x = np.linspace(20.0, 40.0, 2001)
    component = np.exp(-0.5 * ((x - 25.0) / 0.05) ** 2) + 0.5 * np.exp(-0.5 * ((x - 35.0) / 0.05) ** 2)
    evidence = np.where(np.abs(x - 35.0) < 0.2, 3.0, 0.1) * component  # the weaker peak explains more
    peak, rest = best_peak(component, evidence, 10)
    assert x[peak] == pytest.approx(35.0)
    assert not rest[peak - 10 : peak + 11].any() and rest[: peak - 10].all() and rest[peak + 11 :].all()


DARA = Path(__file__).resolve().parents[3] / "shared" / "data" / "xrd" / "dara_mixtures" / "labeled"
SCAN = DARA / "NiO_0p2030-Li2CO3_0p2999-TiO2_0p5025--8min.xrdml"


@pytest.fixture(scope="module")
def dara_scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    from labeltune.core.xrd.alternatives import PhaseSetFits
    from labeltune.core.xrd.dara import dara_cifs
    from labeltune.core.xrd.library import build_library
    from labeltune.core.xrd.readers import read_pattern

    library = build_library(dara_cifs(), tmp_path_factory.mktemp("dara") / "library")
    return library, PhaseSetFits(read_pattern(SCAN), library)


def _evidence(with_phase: Any, without: Any, name: str) -> tuple[bool, str]:
    from labeltune.core.xrd.phase_decision import evidence, prior_alpha

    return evidence(with_phase, without, name, prior_alpha(0.4))


@pytest.mark.skipif(not SCAN.is_file(), reason="../shared/data/xrd/dara_mixtures is not present")
def test_misfit_at_the_weighed_phases_peaks_is_no_absent_phase(dara_scan: tuple[Any, Any]) -> None:
    # weighed NiO + Li2CO3 + TiO2 fitted with our written structures (Rwp 4.3 %): ZnO took their misfit
    # at 6.2 esd (Poisson weights, lag-1 factor; F 40) as 1.1 wt %; its own peaks are not in the scan
    from labeltune.core.xrd.misfit import misfit_test

    _, fits = dara_scan
    weighed = ["NiO", "Li2CO3", "TiO2"]
    with_zno, without = fits([*weighed, "ZnO"]), fits(weighed)
    found, why = _evidence(with_zno, without, "ZnO")
    assert not found, why
    assert "beyond misfit" in why  # the misfit-aware test rejects it (counting statistics alone call it)
    beyond = misfit_test(with_zno, without, "ZnO", 1e-3)
    assert beyond.t < 3.09 or not beyond.test.significant


def _spiked(pattern: Any, base: Any, library: Any, name: str, fraction: float, seed: int) -> Any:
    """``pattern`` plus phase ``name`` at weight ``fraction`` of the whole, drawn as the fit ``base`` is."""
    import dataclasses

    from labeltune.core.xrd.peak_profile import calculated_profile
    from labeltune.core.xrd.quantify import VOLUME_POWER

    power = {p.name: p.scattering_power for p in library.phases}
    k = sum(p.scale * p.lattice_scale**VOLUME_POWER / power[p.name] for p in base.phases)
    profile = calculated_profile(
        library, name, pattern.two_theta, zero_shift=base.zero_shift,
        fwhm_deg=float(np.median([p.fwhm_deg for p in base.phases])), ka2_ratio=0.5 if base.ka2 else 0.0,
    )  # fmt: skip
    spike = np.random.default_rng(seed).poisson(fraction / (1 - fraction) * k * power[name] * profile)
    return dataclasses.replace(pattern, intensity=pattern.intensity + spike.astype(np.float64))


@pytest.mark.skipif(not SCAN.is_file(), reason="../shared/data/xrd/dara_mixtures is not present")
def test_a_real_one_percent_phase_in_the_same_scan_is_still_found(dara_scan: tuple[Any, Any]) -> None:
    from labeltune.core.xrd.alternatives import PhaseSetFits

    library, fits = dara_scan
    weighed = ["NiO", "Li2CO3", "TiO2"]
    spiked = PhaseSetFits(_spiked(fits.pattern, fits(weighed), library, "ZnO", 0.01, 3), library)
    with_zno = spiked([*weighed, "ZnO"])
    found, why = _evidence(with_zno, spiked(weighed), "ZnO")
    assert found, why
    zno = next(p for p in with_zno.phases if p.name == "ZnO")
    assert abs(zno.weight_fraction - 0.01) < 2 * zno.fraction_esd + 0.002


@pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")
def test_fraction_esds_cover_the_error_of_a_distorted_structure() -> None:
    # TiO2 + MnO simulated with structures 1 Å² too soft (Biso) and every reflection ±15 % off, fitted
    # with the library's: TiO2 reads 60.8 for 60 wt %. Poisson esds (0.18 points) called that 4.7 esd
    # off; the misfit-aware ones (about 0.7) cover it, and stay well under the error of a bad fit
    import copy

    from labeltune.core.xrd.library import Peaks, load_library
    from labeltune.core.xrd.pattern import make_pattern
    from labeltune.core.xrd.quantify import fit_phases
    from labeltune.core.xrd.simulate import SimulationConfig, simulate

    assert MODEL is not None
    library = load_library(MODEL / "library")
    truth = {"TiO2_141": 0.6, "MnO_225": 0.4}
    rng = np.random.default_rng(1)
    wrong = copy.copy(library)
    wrong.peaks = dict(library.peaks)
    for name in truth:
        p = library.peaks[name]
        factor = np.exp(-2.0 / (2.0 * p.d) ** 2) * rng.uniform(0.85, 1.15, len(p.d))
        rng.standard_normal(len(p.d))  # (the draws of the bench script this case comes from)
        wrong.peaks[name] = Peaks(p.two_theta, p.d, p.intensity * factor, p.hkl, p.multiplicity)
    config = SimulationConfig(
        texture_sigma=0.0, impurity_probability=0.0, crystallite_nm=(80.0, 300.0), max_counts=(2e4, 2e4),
        background=(0.05, 0.05), ka2_probability=1.0,
    )  # fmt: skip
    batch = simulate(wrong, 1, config, 1, composition=truth)
    pattern = make_pattern(
        batch.two_theta, batch.x[0] * 2e4, source=Path("d.xy"), format="xy", wavelength=1.5406
    )
    fit = fit_phases(pattern, library, list(truth))
    for phase in fit.phases:
        error = abs(phase.weight_fraction - truth[phase.name])
        assert error > 0.005  # the distortion does move the fractions
        assert error < 2 * phase.fraction_esd < 0.03, (phase.name, error, phase.fraction_esd)


BISMUTITE_SCAN = DARA / "NiO_0p6007-Bi2O3_0p4008--8min.xrdml"


@pytest.mark.skipif(not BISMUTITE_SCAN.is_file(), reason="../shared/data/xrd/dara_mixtures is not present")
@pytest.mark.parametrize("absent", ["Li2CO3", "In2O3"])
def test_one_bump_beside_the_known_peaks_is_no_phase(dara_scan: tuple[Any, Any], absent: str) -> None:
    # NiO 60 + Bi2O3 40 has a bump at 30.2° that neither explains (bismutite, Bi2O2CO3, is the usual
    # impurity of Bi2O3 reagents and not in the library). Li2CO3 (as 20 wt %!) and In2O3 stretch their
    # lattices to put a reflection on it and pass the misfit test (ADR 0067); without that one peak
    # their evidence is gone: a phase is more than one reflection
    from labeltune.core.xrd.alternatives import PhaseSetFits
    from labeltune.core.xrd.misfit import misfit_test
    from labeltune.core.xrd.readers import read_pattern

    library, _ = dara_scan
    fits = PhaseSetFits(read_pattern(BISMUTITE_SCAN), library)
    with_absent, without = fits(["NiO", "Bi2O3", absent]), fits(["NiO", "Bi2O3"])
    found, why = _evidence(with_absent, without, absent)
    assert not found, why
    beyond = misfit_test(with_absent, without, absent, 1e-3)
    # with the coarse lattice pick only (before ADR 0070) both passed the misfit test here; with the CIF's
    # lattice tried too they reached t 3.2-3.4 without a significant F, and with the other phases' lattices
    # between grid points (ADR 0072) t 2.9-3.1: either way, the bump is nearly all they have
    assert beyond.t > 2.5 and beyond.t_rest < beyond.t / 2
    assert 29.8 < beyond.best_peak < 30.5 and beyond.t_rest < 3.09
    assert "beyond misfit" not in why or f"beyond misfit {beyond.t:.1f} esd" in why  # (or the F-test failed)


BISMUTITE_LI2CO3_SCAN = DARA / "NiO_0p3035-Bi2O3_0p3016-Li2CO3_0p3997--8min.xrdml"
CLEAN_SCAN = DARA / "NiO_0p7028-La(OH)3_0p1010-ZnO_0p2000--8min.xrdml"


@pytest.mark.skipif(not SCAN.is_file(), reason="../shared/data/xrd/dara_mixtures is not present")
@pytest.mark.parametrize(
    ("scan", "weighed", "absent"),
    [
        (SCAN.name, ["NiO", "Li2CO3", "TiO2"], "ZnO"),
        ("V2O5_0p4005-NiO_0p6016--8min.xrdml", ["V2O5", "NiO"], "TiO2"),
    ],
)
def test_a_detection_limit_is_where_the_phase_starts_to_be_found(
    dara_scan: tuple[Any, Any], scan: str, weighed: list[str], absent: str
) -> None:
    # bench_xrd_dara_limits spikes every limit predict reports on the dara scans at 0.5, 1 and 1.5 times
    # itself: found 3, 22 and 33 of 41 times. Here two of them, the phase tried by the decision (the
    # network's probabilities stand in): missed at half its limit, found at one and a half times it
    from labeltune.core.xrd.alternatives import PhaseSetFits
    from labeltune.core.xrd.metrics import canonical_formula
    from labeltune.core.xrd.phase_decision import PhaseDecision
    from labeltune.core.xrd.quantify import fit_phases
    from labeltune.core.xrd.readers import read_pattern

    library, _ = dara_scan
    pattern = read_pattern(DARA / scan)
    probs = np.full(len(library.names), 0.02)
    probs[[library.names.index(n) for n in weighed]] = 0.99
    probs[library.names.index(absent)] = 0.3
    keys = [canonical_formula(p.formula) for p in library.phases]
    called = [library.names.index(n) for n in weighed]

    def decided(measured: Any) -> Any:
        return PhaseDecision(PhaseSetFits(measured, library), library.names, keys, probs).decide(called)

    first = decided(pattern)
    assert sorted(library.names[j] for j in first.phases) == sorted(weighed), first.notes
    limit = first.detection_limits[absent]
    assert 0.005 < limit < 0.05
    base = fit_phases(pattern, library, weighed)
    for factor, seen in ((0.5, False), (1.5, True)):
        again = decided(_spiked(pattern, base, library, absent, factor * limit, 0))
        assert (library.names.index(absent) in again.phases) == seen, (factor, limit, again.notes)


@pytest.mark.skipif(not CLEAN_SCAN.is_file(), reason="../shared/data/xrd/dara_mixtures is not present")
def test_weak_impurity_peaks_in_a_real_scan_are_reported(dara_scan: tuple[Any, Any]) -> None:
    # NiO 30 + Bi2O3 30 + Li2CO3 40, fitted with exactly the weighed phases: three peaks of 1.5-3.5 % of
    # the strongest stay, where bismutite (Bi2O2CO3, I4/mmm a 3.865 c 13.675 Å; not in the library) has
    # its 011, 200 and 123 reflections (its strongest, 013 at 30.3°, is under Li2CO3's 202). The fixed
    # 4 % floor hid them (ADR 0069); a clean scan of the same series shows none
    from labeltune.core.xrd.alternatives import PhaseSetFits
    from labeltune.core.xrd.readers import read_pattern

    library, _ = dara_scan
    impure = PhaseSetFits(read_pattern(BISMUTITE_LI2CO3_SCAN), library)(["NiO", "Bi2O3", "Li2CO3"])
    angles = [p.two_theta for p in impure.unexplained_peaks]
    for expected in (23.9, 47.0, 56.9):
        assert any(abs(a - expected) < 0.2 for a in angles), angles
    assert all(0.01 < p.height < 0.04 and p.significance >= 5 for p in impure.unexplained_peaks)
    # all three sit on weak Bi2O3 / Li2CO3 reflections (calculated 0.1-0.6 of the residual there), so the
    # warning offers texture or an unknown phase on top
    assert any("24.0°, 47.1°, 57.0°" in w and "unknown phase" in w for w in impure.warnings), impure.warnings
    clean = PhaseSetFits(read_pattern(CLEAN_SCAN), library)(["NiO", "La(OH)3", "ZnO"])
    assert clean.unexplained_peaks == []
