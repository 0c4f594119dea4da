"""Minor phases: decided by the fit's evidence, proposed by training mixtures that hold them (issue 14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labeltune.core.xrd.library import Library
from labeltune.core.xrd.pattern import Pattern, make_pattern
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.simulate import SimulationConfig, simulate
from labeltune.core.xrd.train_config import XrdTrainConfig

MODEL = shipped_model_dir()


def test_training_mixtures_hold_minor_phases_down_to_half_a_percent(tmp_path: Path) -> None:
    from conftest import write_library
    from labeltune.core.xrd.library import load_library

    names = (("A_1", "AO"), ("B_2", "BO2"), ("C_3", "CO"), ("D_4", "DO"))
    library: Library = load_library(write_library(tmp_path / "lib", names))
    config = SimulationConfig(
        min_phases=2, max_phases=3, min_fraction=0.03, minor_probability=1.0, points=500
    )
    batch = simulate(library, 300, config, seed=4)
    smallest = np.where(batch.present, batch.fractions, 1.0).min(axis=1)
    assert np.allclose(batch.fractions.sum(axis=1), 1.0, atol=1e-5)
    assert ((smallest >= 0.005 - 1e-6) & (smallest <= 0.03 + 1e-6)).all()
    assert (smallest < 0.01).mean() > 0.2  # log-uniform over 0.5-3 %: about 39 % under 1 %
    # the training default asks for them; without it the 3 % floor holds as before
    assert XrdTrainConfig().minor_probability > 0
    plain = simulate(library, 300, SimulationConfig(min_phases=2, min_fraction=0.03, points=500), seed=4)
    assert np.where(plain.present, plain.fractions, 1.0).min() >= 0.03 - 1e-6


@pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")
@pytest.mark.parametrize(
    ("minor_probability", "how"),
    [(0.3, "added by the fit (scale"), (0.001, "added by the fit, found in the residual (scale")],
)
def test_the_fit_adds_a_one_percent_phase_and_drops_an_absent_call_on_evidence(
    minor_probability: float, how: str
) -> None:
    from labeltune.core.xrd.inference import load_xrd_model

    assert MODEL is not None
    model = load_xrd_model(MODEL)
    truth = {"TiO2_141": 0.59, "MnO_225": 0.40, "Mn2O3_206": 0.01}
    config = SimulationConfig(
        texture_sigma=0.0, impurity_probability=0.0, crystallite_nm=(80.0, 300.0), max_counts=(2e4, 2e4),
        background=(0.05, 0.05), ka2_probability=1.0,
    )  # fmt: skip
    batch = simulate(model.library, 1, config, 1, composition=truth)
    pattern = make_pattern(
        batch.two_theta, batch.x[0] * 2e4, source=Path("m.xy"), format="xy", wavelength=1.5406
    )
    names = model.names
    probs = np.full(len(names), 0.001)
    probs[names.index("TiO2_141")] = 0.99
    probs[names.index("MnO_225")] = 0.99
    probs[names.index("LiMnO2_59")] = 0.9  # called, absent
    probs[names.index("Mn2O3_206")] = minor_probability  # present at 1 %, not called
    probs[names.index("Li2MnO3_12")] = 0.2  # absent, not called
    x = np.zeros(len(model.grid), dtype=np.float32)
    prediction = model._decide(
        pattern, x, probs, np.zeros(len(names), dtype=np.float32), fit=True, activation=False
    )
    phases = {p.name: p for p in prediction.phases}
    assert set(phases) == set(truth), prediction.warnings
    assert any(w.startswith("LiMnO2_59 dropped by the fit: no evidence") for w in prediction.warnings)
    assert any(w.startswith(f"Mn2O3_206 {how}") for w in prediction.warnings), prediction.warnings
    minor = phases["Mn2O3_206"]
    assert minor.fraction is not None and minor.fraction_esd is not None
    assert abs(minor.fraction - 0.01) < 3 * minor.fraction_esd + 0.002
    assert 0.0 < prediction.detection_limits["Li2MnO3_12"] < 0.05
    assert "Mn2O3_206" not in prediction.detection_limits
    data = prediction.to_json()
    assert data["detection_limits"]["Li2MnO3_12"] > 0 and all(p["fraction_esd"] > 0 for p in data["phases"])


def _bench_mixture(library: Library, truth: dict[str, float], seed: int) -> Pattern:
    """A mixture simulated as ``bench/bench_xrd_minor.py`` does: good data, 20 000 counts at the top."""
    config = SimulationConfig(
        texture_sigma=0.0, impurity_probability=0.0, crystallite_nm=(60.0, 400.0), max_counts=(2e4, 2e4),
        background=(0.02, 0.1), ka2_probability=1.0,
    )  # fmt: skip
    batch = simulate(library, 1, config, seed, composition=truth)
    return make_pattern(
        batch.two_theta, batch.x[0] * 2e4, source=Path(f"sim{seed}.xy"), format="xy", wavelength=1.5406
    )


@pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")
def test_a_phase_added_early_goes_when_a_later_addition_explains_its_peaks() -> None:
    # from bench_xrd_minor (2 wt % LiF): LiTiO2 was added first, LiF then took its peaks and LiTiO2 was
    # reported at 0.00 ± 0.04 wt % because added phases were exempt from the final check
    from labeltune.core.xrd.inference import load_xrd_model

    assert MODEL is not None
    model = load_xrd_model(MODEL)
    truth = {"Li2Ti(OF3)2_12": 0.4636, "Li2Ti6O13_12": 0.5164, "LiF_225": 0.02}
    prediction = model.predict(_bench_mixture(model.library, truth, 20))
    assert {p.name for p in prediction.phases} == set(truth), prediction.warnings
    assert all(p.fraction is not None and p.fraction > 0.01 for p in prediction.phases)


@pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")
def test_a_one_percent_phase_whose_profile_sits_at_a_bound_is_found() -> None:
    # bench_xrd_minor's one 1 % miss (ADR 0066): LiMnF4's Lorentzian share and size width end at their
    # bound 0; treated as free they inflated its scale esd 2.4× (3.9 esd < 4.12, the screen's level).
    # Held at the bound, as Rietveld programs hold a parameter at its limit (ADR 0067): 9.4 esd
    from labeltune.core.xrd.inference import load_xrd_model

    assert MODEL is not None
    model = load_xrd_model(MODEL)
    truth = {"MnO2_227": 0.6036, "Li3Ti4O8_3": 0.3864, "LiMnF4_14": 0.01}
    pattern = _bench_mixture(model.library, truth, 2010)
    probs = np.full(len(model.names), 0.001)
    for name in ("MnO2_227", "Li3Ti4O8_3"):
        probs[model.names.index(name)] = 0.99
    prediction = model._decide(
        pattern, np.zeros(len(model.grid), dtype=np.float32), probs,
        np.zeros(len(model.names), dtype=np.float32), fit=True, activation=False,
    )  # fmt: skip
    assert {p.name for p in prediction.phases} == set(truth), prediction.warnings
    assert any(w.startswith("LiMnF4_14 added by the fit, found in the residual") for w in prediction.warnings)


LOOK_ALIKES = [
    # 2 wt % LiTi2O4 (spinel, a 8.40 Å): the network's candidate LiMn2O4 (spinel, a 8.25 Å) stretched its
    # lattice 1.9 % onto LiTi2O4's peaks and was added in its place; the true phase was never tried
    ({"LiF_225": 0.4493353544806752, "Li2Ti(OF3)2_12": 0.5306646455193248, "LiTi2O4_227": 0.02}, 12_020,
     "LiTi2O4_227 fits better than LiMn2O4_227 (the same peaks"),
    # 1 wt % Li2O, few weak reflections: Mn2O3 in its place fits a little better (χ² lower by 3.8 σ²),
    # not enough to give way
    ({"MnO2_227": 0.6468270405398817, "MnF3_15": 0.3431729594601183, "Li2O_225": 0.01}, 1010, None),
]  # fmt: skip


@pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")
@pytest.mark.parametrize(("truth", "seed", "note"), LOOK_ALIKES)
def test_an_added_phase_gives_way_only_to_a_look_alike_that_fits_clearly_better(
    truth: dict[str, float], seed: int, note: str | None
) -> None:
    # from bench_xrd_minor (ADR 0070)
    from labeltune.core.xrd.inference import load_xrd_model

    assert MODEL is not None
    model = load_xrd_model(MODEL)
    prediction = model.predict(_bench_mixture(model.library, truth, seed))
    assert {p.name for p in prediction.phases} == set(truth), prediction.warnings
    swapped = [w for w in prediction.warnings if "(the same peaks" in w]
    assert (note is None and not swapped) or any(note in w for w in swapped), swapped
    minor = next(p for p in prediction.phases if truth[p.name] < 0.05)
    assert minor.fraction is not None and minor.fraction_esd is not None
    assert abs(minor.fraction - truth[minor.name]) < 2 * minor.fraction_esd + 0.002


@pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")
def test_a_weak_phase_is_fitted_at_its_own_lattice_not_in_the_majors_misfit() -> None:
    # from bench_xrd_minor (2 wt % Ti2MnO4 beside MnO + Ti2O3): the broad-peak lattice scan put the
    # weak spinel where its broad peaks filled the majors' misfit; the fine scan around that pick ended
    # at the lattice bound (0.98) with zero weight, and TiMn2O4 took the peaks. The fine scan also
    # covers the CIF's lattice now (ADR 0070)
    from labeltune.core.xrd.inference import load_xrd_model
    from labeltune.core.xrd.quantify import fit_phases

    assert MODEL is not None
    library = load_xrd_model(MODEL).library
    truth = {"MnO_186": 0.40610713139242954, "Ti2O3_62": 0.5738928686075705, "Ti2MnO4_227": 0.02}
    fit = fit_phases(_bench_mixture(library, truth, 11_020), library, list(truth))
    minor = next(p for p in fit.phases if p.name == "Ti2MnO4_227")
    assert abs(minor.lattice_scale - 1.0) < 0.005
    assert abs(minor.weight_fraction - 0.02) < 2 * minor.fraction_esd + 0.002
    assert fit.unexplained_peaks == []
