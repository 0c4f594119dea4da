"""A Portland clinker: five to seven phases at once, polymorphs in the library (ADR 0071, 0072).

Simulated clinkers from the shared NIST SRM 2686a clinker CIFs, as ``bench/bench_xrd_clinker.py`` draws
them (5 % per-peak intensity errors, 20 000 counts). The decision runs on probabilities given here in
place of a network's (``phase_decision`` takes them as they come), so no model is trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labeltune.core.xrd.fit_refine import best_value, local_minima
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.pattern import Pattern, make_pattern
from labeltune.core.xrd.simulate import SimulationConfig, simulate

CLINKER = Path(__file__).resolve().parents[3] / "shared" / "data" / "xrd" / "cod_cifs" / "clinker"
needs_cifs = pytest.mark.skipif(
    not CLINKER.is_dir(), reason="../shared/data/xrd/cod_cifs/clinker is not present"
)

ALITE, BELITE, C3A, C3A_NA, FERRITE, PERICLASE, APHTHITALITE = (
    "9008366", "9012794", "1000039", "8103596", "1200009", "1000053", "9007639"
)  # fmt: skip


def test_local_minima_are_ranked_and_include_the_ends() -> None:
    values = np.arange(8.0)
    scores = np.array([1.0, 3.0, 2.0, 5.0, 0.5, 4.0, 6.0, 0.8])
    assert local_minima(values, scores, 3).tolist() == [4.0, 7.0, 0.0]
    assert local_minima(values, scores, 9).tolist() == [4.0, 7.0, 0.0, 2.0]
    assert local_minima(values[:0], scores[:0], 3).tolist() == []


def test_scan_ties_go_to_the_reference_value_not_to_the_lowest() -> None:
    # a phase without weight gives the same χ² at every lattice scale: the CIF's (1.0) is kept
    values = np.array([0.985, 0.99, 0.995, 1.0, 1.005])
    assert best_value(values, np.full(5, 7.0), 1.0) == 3
    assert best_value(values, np.array([7.0, 6.0, 7.0, 7.0, 7.0]), 1.0) == 1
    assert best_value(np.array([-0.1, 0.0, 0.1]), np.array([2.0, 2.0 + 1e-12, 2.0]), 0.0) == 1


@pytest.fixture(scope="module")
def library_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from labeltune.core.xrd.library import build_library

    folder = tmp_path_factory.mktemp("clinker") / "library"
    build_library(sorted(CLINKER.glob("*.cif")), folder)
    return folder


@pytest.fixture(scope="module")
def library(library_dir: Path) -> Library:
    """The library as ``predict`` and the app use it: read back from its folder (peak tables as stored)."""
    from labeltune.core.xrd.library import load_library

    return load_library(library_dir)


def _clinker(library: Library, by_cod: dict[str, float], seed: int) -> Pattern:
    names = {Path(p.source).stem: p.name for p in library.phases}
    config = SimulationConfig(
        texture_sigma=0.05, impurity_probability=0.0, crystallite_nm=(80.0, 400.0), max_counts=(2e4, 2e4),
        background=(0.02, 0.1), ka2_probability=1.0,
    )  # fmt: skip
    batch = simulate(library, 1, config, seed, composition={names[c]: w for c, w in by_cod.items()})
    return make_pattern(
        batch.two_theta, batch.x[0] * 2e4, source=Path(f"clinker{seed}.xy"), format="xy", wavelength=1.5406
    )


@needs_cifs
def test_a_phase_among_many_is_fitted_at_its_lattice_not_at_a_coarse_false_match(library: Library) -> None:
    # bench_xrd_clinker's clinker 5: with the five other phases fitted, the cubic C3A (5.2 wt %, its
    # lattice drawn 0.9 % below the CIF's) ended at lattice 1.007 with zero weight — the coarse scan's
    # pick, with broad peaks among alite's hundreds of reflections, was a false match and the fine scan
    # searched only around it and the CIF's lattice. The fine scan now also searches the coarse scan's
    # next minima (``COARSE_MINIMA``).
    from labeltune.core.xrd.quantify import fit_phases

    truth = {BELITE: 0.1504, C3A: 0.0515, FERRITE: 0.0647, PERICLASE: 0.0119, APHTHITALITE: 0.0137}
    truth[ALITE] = 1.0 - sum(truth.values())
    pattern = _clinker(library, truth, 5)
    names = {Path(p.source).stem: p.name for p in library.phases}
    fit = fit_phases(pattern, library, [names[c] for c in truth])
    c3a = next(p for p in fit.phases if p.name == names[C3A])
    assert c3a.weight_fraction == pytest.approx(0.0515, abs=0.01), (c3a.lattice_scale, c3a.weight_fraction)
    assert c3a.lattice_scale == pytest.approx(0.991, abs=0.002)


@needs_cifs
def test_an_added_phase_is_not_swapped_for_a_phase_with_peaks_of_its_own(library: Library) -> None:
    # bench_xrd_clinker's clinker 8 (a network trained on at most three phases a pattern): alite called,
    # belite, C3A and periclase added by the fit; the ferrite (6 wt %, probability 0.46) was tried first,
    # while belite was still missing, and not found. Its look-alike check then replaced the periclase
    # (3.9 wt %) by the ferrite — "χ² lower by 371 σ²", gained on the ferrite's own peaks, not on the
    # periclase's. A look-alike now replaces a phase only when that phase is not needed beside it; the
    # ferrite is added instead.
    from labeltune.core.xrd.alternatives import PhaseSetFits
    from labeltune.core.xrd.metrics import canonical_formula
    from labeltune.core.xrd.phase_decision import PhaseDecision

    truth = {BELITE: 0.2398, C3A: 0.071, FERRITE: 0.0613, PERICLASE: 0.0393}
    truth[ALITE] = 1.0 - sum(truth.values())
    pattern = _clinker(library, truth, 8)
    by_cod = {Path(p.source).stem: j for j, p in enumerate(library.phases)}
    network = {ALITE: 0.849, FERRITE: 0.457, BELITE: 0.433, C3A: 0.316, PERICLASE: 0.296, "1538413": 0.135}
    probs = np.full(len(library.names), 0.08)
    for cod, p in network.items():
        probs[by_cod[cod]] = p
    keys = [canonical_formula(p.formula) for p in library.phases]
    decision = PhaseDecision(PhaseSetFits(pattern, library), library.names, keys, probs)
    decided = decision.decide([by_cod[ALITE]])
    found = {library.names[j] for j in decided.phases}
    assert found == {library.names[by_cod[c]] for c in truth}, decided.notes
    fractions = {p.name: p.weight_fraction for p in decided.fit.phases}
    for cod, weight in truth.items():
        assert fractions[library.names[by_cod[cod]]] == pytest.approx(weight, abs=0.015)


# bench_xrd_clinker's clinker 9: seven phases, the Na-orthorhombic C3A at 1.9 wt % beside 7.8 % cubic C3A
CLINKER_9 = {
    BELITE: 0.2459, C3A: 0.0776, C3A_NA: 0.0193, FERRITE: 0.1431, PERICLASE: 0.0239, APHTHITALITE: 0.019,
    ALITE: 0.4713,
}  # fmt: skip


@pytest.fixture(scope="module")
def clinker_9(library: Library) -> tuple[dict[str, str], object]:
    from labeltune.core.xrd.alternatives import PhaseSetFits

    names = {Path(p.source).stem: p.name for p in library.phases}
    return names, PhaseSetFits(_clinker(library, CLINKER_9, 9), library)


@needs_cifs
def test_a_minor_polymorph_beside_the_major_one_is_fitted_at_its_lattice(clinker_9: tuple) -> None:
    # Both C3A lattices were drawn 0.9 % below the CIFs'. With broad peaks the coarse lattice scan gave
    # the orthorhombic C3A no weight at any scale (its reflections merge with the cubic's): every value
    # tied, the lowest (0.985) won, and the refinement left it at the bound (0.98) with zero weight while
    # the cubic C3A took 9.4 %. Ties now go to the CIF's lattice and a phase the coarse scan could not
    # see is scanned over the whole range with sharp peaks (ADR 0072).
    names, fits = clinker_9
    fit = fits([names[c] for c in CLINKER_9])
    by_name = {p.name: p for p in fit.phases}
    ortho, cubic = by_name[names[C3A_NA]], by_name[names[C3A]]
    assert ortho.lattice_scale == pytest.approx(0.9913, abs=0.002), ortho
    assert ortho.weight_fraction == pytest.approx(0.0193, abs=0.004)
    assert cubic.weight_fraction == pytest.approx(0.0776, abs=0.008)


@needs_cifs
def test_the_detection_limit_predicts_the_decisions_test(clinker_9: tuple) -> None:
    # The detection limit of a phase not found is the scale at which the decision's test beyond the
    # others' misfit, without its most evident peak (t_rest), would pass. Checked on found minor phases:
    # the t_rest that needed_scale predicts for their fitted scale is near the one the decision computes
    # (within 25 % for phases with reflections of their own; the orthorhombic C3A, whose reflections the
    # cubic one's lattice moves to take up, 37 % optimistic), and nearer than counting statistics
    # (scale / esd, what the limit was before) for a phase whose peaks coincide with another's.
    from labeltune.core.xrd.misfit import decision_limit, misfit_test, needed_scale
    from labeltune.core.xrd.significance import Z_MIN

    names, fits = clinker_9
    everything = [names[c] for c in CLINKER_9]
    fit = fits(everything)
    for cod, tolerance in ((PERICLASE, 0.25), (APHTHITALITE, 0.25), (C3A_NA, 0.45)):
        name = names[cod]
        without = fits([n for n in everything if n != name])
        phase = next(p for p in fit.phases if p.name == name)
        needed = needed_scale(fit, without, name, Z_MIN)
        t_rest = misfit_test(fit, without, name, 1e-3).t_rest
        predicted = Z_MIN * phase.scale / needed
        assert predicted == pytest.approx(t_rest, rel=tolerance), name
        if cod == C3A_NA:
            assert abs(predicted - t_rest) < abs(phase.scale / phase.scale_esd - t_rest)
        assert phase.detection_limit <= decision_limit(phase, needed) < phase.weight_fraction


@needs_cifs
def test_a_weak_phase_keeps_its_lattice_through_the_refinement(library: Library) -> None:
    # bench_xrd_clinker's seed-1 clinker 0, the six phases in the order the decision tried them: the
    # lattice search put the 2.7 wt % orthorhombic C3A at +0.75 % (drawn +0.6 %), and the refinement's
    # first large steps, taken while the widths were still far off, carried it to -0.1 % among the
    # cubic C3A's peaks (Rwp 4.2 instead of 3.5 %; the decision then rejected the phase). A start that
    # differed by 3e-5 in another phase's lattice stayed, and so did this fit with the library still in
    # memory, before its peak tables were stored and read back. A lattice now moves at most one peak
    # width per refinement step (ADR 0073).
    from labeltune.core.xrd.quantify import fit_phases

    names = {Path(p.source).stem: p.name for p in library.phases}
    truth = {
        FERRITE: 0.09682792227322451, ALITE: 0.5412994350558676, BELITE: 0.2425695544488903,
        C3A: 0.08640546129960708, PERICLASE: 0.005964568963507393, C3A_NA: 0.026933057958903026,
    }  # fmt: skip
    fit = fit_phases(_clinker(library, truth, 1000), library, [names[c] for c in truth])
    ortho = next(p for p in fit.phases if p.name == names[C3A_NA])
    assert ortho.lattice_scale == pytest.approx(1.006, abs=0.002), ortho
    assert ortho.weight_fraction == pytest.approx(0.0269, abs=0.005)
    assert fit.rwp < 0.037


@needs_cifs
def test_of_two_phases_holding_the_same_peaks_the_one_that_fits_better_alone_stays(library: Library) -> None:
    # bench_xrd_clinker's seed-1 clinker 5: 5.3 wt % cubic C3A beside 1.0 % orthorhombic C3A. Beside
    # each other each shows little evidence of its own: the cubic's, beyond the misfit, rests on one
    # reflection (21.6°), so the decision dropped it, and the orthorhombic C3A read 5.0 %. The phase
    # that goes is now the one whose absence costs less (ADR 0073): the orthorhombic C3A; the cubic
    # reads 5.5 %.
    from labeltune.core.xrd.alternatives import PhaseSetFits
    from labeltune.core.xrd.metrics import canonical_formula
    from labeltune.core.xrd.phase_decision import PhaseDecision, evidence

    truth = {
        BELITE: 0.22919252442665028, C3A: 0.05303368035511531, C3A_NA: 0.01028367314412665,
        FERRITE: 0.12479184451578237, PERICLASE: 0.014865723957758975, APHTHITALITE: 0.014589970700998817,
        ALITE: 0.5532425828995675,
    }  # fmt: skip
    by_cod = {Path(p.source).stem: j for j, p in enumerate(library.phases)}
    keys = [canonical_formula(p.formula) for p in library.phases]
    fits = PhaseSetFits(_clinker(library, truth, 1005), library)
    decision = PhaseDecision(fits, library.names, keys, np.full(len(library.names), 0.5))
    called = [by_cod[c] for c in truth]
    cubic, ortho = by_cod[C3A], by_cod[C3A_NA]
    everything = fits([library.names[j] for j in called])
    without_cubic = fits([library.names[j] for j in called if j != cubic])
    assert not evidence(everything, without_cubic, library.names[cubic])[0]  # why it was dropped
    stand_in = decision.stand_in(called, everything, without_cubic, cubic)
    assert stand_in is not None
    k, alone = stand_in
    assert k == ortho
    fractions = {p.name: p.weight_fraction for p in alone.phases}
    assert library.names[ortho] not in fractions
    assert fractions[library.names[cubic]] == pytest.approx(0.053, abs=0.008)  # measured 5.5 %
    # the same rule leaves a phase that is not the better one alone: without the orthorhombic C3A
    without_ortho = fits([library.names[j] for j in called if j != ortho])
    assert decision.stand_in(called, everything, without_ortho, ortho) is None
    # the decision's own path drops the orthorhombic C3A for the cubic; its detection limit must not
    # say it would have been seen at less than it read beside the cubic (ADR 0077)
    kept, final = decision._prune(called, everything)
    assert ortho not in kept and cubic in kept
    assert any(n.startswith(f"{library.names[ortho]} dropped by the fit") for n in decision.notes)
    assert any("holds the same peaks" in n for n in decision.notes)
    beside = next(p.weight_fraction for p in everything.phases if p.name == library.names[ortho])
    limit = decision._detection_limits(kept, final)[library.names[ortho]]
    assert limit >= beside > 0.005, (limit, beside)
