"""A 1 wt % phase beside a 95 wt % one whose peaks are missed by 10-15 % (ADR 0074).

The design of a quantitative-phase-analysis round robin (``bench/bench_xrd_round_robin.py``): corundum,
fluorite and zincite, here 1.15 / 94.81 / 4.04 wt %, scanned over 15-145° 2θ with Cu Kα1+2. The
shared COD CIFs of corundum and fluorite, the app's zincite, and five structures that are absent. The
decision runs on probabilities given here in place of a network's, so no model is trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labeltune.core.xrd.library import Library
from labeltune.core.xrd.pattern import Pattern, make_pattern
from labeltune.core.xrd.simulate import SimulationConfig, simulate

COD = Path(__file__).resolve().parents[3] / "shared" / "data" / "xrd" / "cod_cifs"
ZINCITE = (
    Path(__file__).resolve().parents[2] / "desktop" / "labeltune" / "resources" / "xrd" / "dara" / "ZnO.cif"
)
pytestmark = pytest.mark.skipif(not COD.is_dir(), reason="../shared/data/xrd/cod_cifs is not present")
CORUNDUM, FLUORITE = "1000017", "1000043"
MIXTURE = {CORUNDUM: 0.0115, FLUORITE: 0.9481, ZINCITE.stem: 0.0404}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    from labeltune.core.xrd.library import build_library, load_library

    folder = tmp_path_factory.mktemp("round-robin") / "library"
    build_library([*sorted(COD.glob("*.cif")), ZINCITE], folder, naming="cif", two_theta_range=(15.0, 145.0))
    return load_library(folder)


def _names(library: Library) -> dict[str, str]:
    return {Path(p.source).stem: p.name for p in library.phases}


def _scan(library: Library, misfit: float, seed: int, mix: dict[str, float] | None = None) -> Pattern:
    names = _names(library)
    config = SimulationConfig(
        texture_sigma=misfit, impurity_probability=0.0, crystallite_nm=(80.0, 400.0), max_counts=(2e4, 2e4),
        background=(0.02, 0.1), ka2_probability=1.0,
    )  # fmt: skip
    composition = mix or {names[c]: w for c, w in MIXTURE.items()}
    batch = simulate(library, 1, config, seed, composition=composition)
    return make_pattern(
        batch.two_theta, batch.x[0] * 2e4, source=Path(f"rr{seed}.xy"), format="xy", wavelength=1.5406
    )


def test_the_screen_weighs_the_residual_by_where_the_misfit_is(library: Library) -> None:
    # 15 % per-peak errors on fluorite's 20 reflections: one noise scale for the whole residual (reduced χ²
    # × serial correlation, Poisson weights) put corundum's clean peaks at t 2.8, under the search's
    # threshold; with the systematic term at the fitted phases' peaks (``misfit``) it ranks first at 4+
    from labeltune.core.xrd.quantify import fit_phases
    from labeltune.core.xrd.screening import screen_residual
    from labeltune.core.xrd.significance import SIGNIFICANCE, normal_quantile

    names = _names(library)
    majors = [names[FLUORITE], names[ZINCITE.stem]]
    fit = fit_phases(_scan(library, 0.15, 2000), library, majors)
    ranked = screen_residual(library, fit, majors)
    z = normal_quantile((1.0 - SIGNIFICANCE) / len(ranked))
    assert ranked[0][0] == names[CORUNDUM] and ranked[0][1] > z, ranked[:3]
    assert all(t < z for _, t in ranked[1:]), ranked[:3]


def test_a_one_percent_phase_beside_a_misfitted_major_is_found_and_nothing_absent(library: Library) -> None:
    # 10 % per-peak errors: the presence test with one noise scale gave corundum too few esds; under
    # the misfit-aware weights (bound parameters held, as ADR 0067 holds them) it passes
    from labeltune.core.xrd.alternatives import PhaseSetFits
    from labeltune.core.xrd.metrics import canonical_formula
    from labeltune.core.xrd.phase_decision import PhaseDecision

    names = _names(library)
    index = {name: j for j, name in enumerate(library.names)}
    probs = np.full(len(library.names), 0.002)  # the network proposes the fluorite, unsure of the zincite
    probs[index[names[FLUORITE]]], probs[index[names[ZINCITE.stem]]] = 0.95, 0.2
    keys = [canonical_formula(p.formula) for p in library.phases]
    decision = PhaseDecision(PhaseSetFits(_scan(library, 0.10, 2), library), library.names, keys, probs)
    decided = decision.decide([index[names[FLUORITE]]])
    fractions = {p.name: p.weight_fraction for p in decided.fit.phases}
    assert set(fractions) == {names[c] for c in MIXTURE}, decided.notes
    assert fractions[names[CORUNDUM]] == pytest.approx(0.0115, abs=0.004)
    assert fractions[names[FLUORITE]] == pytest.approx(0.9481, abs=0.015)


@pytest.mark.parametrize(("misfit", "seed"), [(0.10, 2), (0.15, 2000)])
def test_the_detection_limit_predicts_the_f_test(library: Library, misfit: float, seed: int) -> None:
    # A missed 1.15 % corundum was reported with a 0.6-0.8 % limit: the limit counted the scale test and
    # the test without the best reflection, but the F-test of the nested fits (five parameters: scale,
    # lattice, c/a, width, shape) needs about 4.5 esds and was what failed (ADR 0075). f_needed_scale
    # predicts that F at the fitted scale within 25 %, for the 1 % corundum and the 4 % zincite (it
    # measured 5.3 for 6.4 and 6.9 for 6.1 on the corundum)
    from labeltune.core.xrd.misfit import decision_scale, f_needed_scale, misfit_test, needed_scale
    from labeltune.core.xrd.quantify import fit_phases
    from labeltune.core.xrd.significance import f_quantile

    names = _names(library)
    everything = [names[c] for c in MIXTURE]
    pattern = _scan(library, misfit, seed)
    fit = fit_phases(pattern, library, everything)
    for cif in (CORUNDUM, ZINCITE.stem):
        name = names[cif]
        without = fit_phases(pattern, library, [n for n in everything if n != name])
        phase = next(p for p in fit.phases if p.name == name)
        test = misfit_test(fit, without, name, 1e-3).test
        added = fit.n_parameters - without.n_parameters
        assert added == 5  # both hexagonal
        needed = f_needed_scale(fit, without, name, 1e-3)
        predicted = f_quantile(1e-3, added, 1e4) * (phase.scale / needed) ** 2
        assert predicted == pytest.approx(test.f, rel=0.25), name
        both = max(needed_scale(fit, without, name, 3.09), needed)  # what the detection limit uses
        assert decision_scale(fit, without, name, 3.09, 1e-3) == pytest.approx(both), name


def test_a_phase_outside_the_library_does_not_hide_a_one_percent_phase(library: Library) -> None:
    # 3 wt % periclase in the sample, left out of the fit, as a phase outside a lab's library: its peaks
    # stay in the residual. Counted as noise they multiplied the noise scale of every presence test (a
    # simulated clinker's by eight, hiding a 1.5 % periclase). The noise now comes from the points outside
    # the unexplained peaks (ADR 0076): near that of the same sample without it, and the corundum passes
    from labeltune.core.xrd.misfit import misfit_noise
    from labeltune.core.xrd.phase_decision import evidence
    from labeltune.core.xrd.quantify import fit_phases

    names = _names(library)
    fitted = [names[c] for c in MIXTURE]
    rest = [n for n in fitted if n != names[CORUNDUM]]
    unknown = next(p.name for p in library.phases if "periclase" in p.name)
    mix = {names[c]: w for c, w in MIXTURE.items()}
    mix[names[FLUORITE]] -= 0.03
    # the same draws (cells, widths, per-peak errors, noise) without it: at 1e-9 wt
    scans = [_scan(library, 0.05, 1, {**mix, unknown: share}) for share in (1e-9, 0.03)]
    fits = [fit_phases(scan, library, fitted) for scan in scans]
    clean, dirty = (misfit_noise(fit)[1] for fit in fits)
    assert dirty < 1.25 * clean, (clean, dirty)  # 1.10 (was 1.74)
    quiet = [fit.quiet for fit in fits]
    assert quiet[0] is not None and quiet[0].all()
    assert quiet[1] is not None and 0 < np.count_nonzero(~quiet[1]) < 0.05 * len(quiet[1])  # its peaks only
    found, why = evidence(fits[1], fit_phases(scans[1], library, rest), names[CORUNDUM])
    assert found, why


@pytest.fixture(scope="module")
def without_periclase(tmp_path_factory: pytest.TempPathFactory, library: Library) -> Library:
    """The round-robin library without its periclase: a lab's library that lacks a phase of the sample."""
    from labeltune.core.xrd.library import build_library

    periclase = next(Path(p.source) for p in library.phases if "periclase" in p.name)
    cifs = [c for c in [*sorted(COD.glob("*.cif")), ZINCITE] if c.stem != periclase.stem]
    folder = tmp_path_factory.mktemp("round-robin-lab") / "library"
    return build_library(cifs, folder, naming="cif", two_theta_range=(15.0, 145.0))


def _decided_without_periclase(library: Library, lab: Library, seed: int) -> tuple[Pattern, Any, Any, Any]:
    """The round-robin mixture with 3 % periclase (10 % per-peak errors, draw ``seed``) decided with ``lab``.

    The network's probabilities are given (fluorite 0.95, zincite 0.2, the rest 0.002): the corundum must
    come from the residual screen. Returns the scan, its ``PhaseSetFits``, the ``PhaseDecision`` and its
    ``Decision``.
    """
    from labeltune.core.xrd.alternatives import PhaseSetFits
    from labeltune.core.xrd.metrics import canonical_formula
    from labeltune.core.xrd.phase_decision import PhaseDecision

    names = _names(library)
    periclase = next(p.name for p in library.phases if "periclase" in p.name)
    mix = {names[c]: w for c, w in MIXTURE.items()}
    mix[names[FLUORITE]] -= 0.03
    scan = _scan(library, 0.10, seed, {**mix, periclase: 0.03})
    index = {name: j for j, name in enumerate(lab.names)}
    probs = np.full(len(lab.names), 0.002)
    probs[index[names[FLUORITE]]], probs[index[names[ZINCITE.stem]]] = 0.95, 0.2
    keys = [canonical_formula(p.formula) for p in lab.phases]
    fits = PhaseSetFits(scan, lab)
    decision = PhaseDecision(fits, lab.names, keys, probs)
    return scan, fits, decision, decision.decide([index[names[FLUORITE]]])


def test_a_peak_outside_the_library_that_pulls_a_one_percent_phase_is_left_out(
    library: Library, without_periclase: Library
) -> None:
    # 3 % periclase in the sample, absent from the lab's library, 10 % per-peak errors. Tried in full, the
    # 1.15 % corundum moved its lattice 1.8 % to put its 113 reflection on the periclase's 200 (42.5° in
    # this draw) and failed the test without that reflection (−0.3 esd): missed, although at its own lattice
    # it passes. The second look leaves that peak's region out and tests it again (ADR 0078)
    from labeltune.core.xrd.alternatives import phase_set_profile

    names = _names(library)
    scan, fits, _, decided = _decided_without_periclase(library, without_periclase, 4)
    fractions = {p.name: p.weight_fraction for p in decided.fit.phases}
    assert set(fractions) == {names[c] for c in MIXTURE}, decided.notes
    assert fractions[names[CORUNDUM]] == pytest.approx(0.0115, abs=0.006)
    ((lo, hi),) = fits.excluded
    assert lo < 42.5 < hi < 43.2  # the periclase's 200 and its Kα2, not the corundum's own 113 at 43.35°
    assert not np.any((decided.fit.two_theta > lo) & (decided.fit.two_theta < hi))
    assert any(lo < p.two_theta < hi for p in decided.fit.unexplained_peaks)  # still reported
    assert any("left out of the fit" in w and names[CORUNDUM] in w for w in decided.fit.warnings)
    assert decided.fit.excluded == ((lo, hi),)  # what `predict` reports, and the app refits a set with
    majors = [names[FLUORITE], names[ZINCITE.stem]]
    x, _ = phase_set_profile(scan, without_periclase, majors, exclude=decided.fit.excluded)
    assert len(x) == len(decided.fit.two_theta) and not np.any((x > lo) & (x < hi))


def test_a_phase_the_second_look_rejects_keeps_the_limit_without_the_pulling_peak(
    library: Library, without_periclase: Library
) -> None:
    # draw 11: the corundum, pulled onto the periclase's 200, fails again with that peak left out. The
    # pulled fit's limit (1.2 %, which credits the periclase peak) was reported; the limit of the fits
    # without it is 2.3 % (ADR 0078)
    _, fits, decision, decided = _decided_without_periclase(library, without_periclase, 11)
    corundum = _names(library)[CORUNDUM]
    assert corundum not in {p.name for p in decided.fit.phases} and fits.excluded == ()
    assert decision.masked_limits[corundum] > 0.015
    assert decided.detection_limits[corundum] == pytest.approx(decision.masked_limits[corundum])
