"""The fit proposes too: the residual screen finds a 1 wt % phase the network ignored (ADR 0046)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeltune.core.xrd.library import load_library
from labeltune.core.xrd.pattern import make_pattern
from labeltune.core.xrd.quantify import fit_phases
from labeltune.core.xrd.screening import screen_residual
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.significance import SIGNIFICANCE, Z_MIN, normal_quantile
from labeltune.core.xrd.simulate import SimulationConfig, simulate

MODEL = shipped_model_dir()
pytestmark = pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")


def test_normal_quantile() -> None:
    assert normal_quantile(0.001) == pytest.approx(Z_MIN, abs=0.01)
    assert normal_quantile(0.025) == pytest.approx(1.96, abs=1e-3)


def test_the_residual_of_the_majors_names_the_minor_phase_and_nothing_without_one() -> None:
    assert MODEL is not None
    library = load_library(MODEL / "library")
    config = SimulationConfig(
        texture_sigma=0.0, impurity_probability=0.0, crystallite_nm=(80.0, 300.0), max_counts=(2e4, 2e4),
        background=(0.05, 0.05), ka2_probability=1.0,
    )  # fmt: skip
    majors = ["TiO2_141", "MnO_225"]
    searched = len(library.names) - len(majors)
    z = normal_quantile((1.0 - SIGNIFICANCE) / searched)  # Bonferroni over the library
    for composition, minor in (({"TiO2_141": 0.59, "MnO_225": 0.40, "Li2MnO3_12": 0.01}, "Li2MnO3_12"),
                               ({"TiO2_141": 0.6, "MnO_225": 0.4}, None)):  # fmt: skip
        batch = simulate(library, 1, config, 2, composition=composition)
        pattern = make_pattern(
            batch.two_theta, batch.x[0] * 2e4, source=Path("m.xy"), format="xy", wavelength=1.5406
        )
        fit = fit_phases(pattern, library, majors)
        ranked = screen_residual(library, fit, majors)
        assert len(ranked) == searched and not {n for n, _ in ranked} & set(majors)
        if minor is not None:
            assert ranked[0][0] == minor and ranked[0][1] > z, ranked[:3]
        else:
            assert ranked[0][1] < z, ranked[:3]


def test_an_unlikely_phase_needs_stronger_evidence() -> None:
    from labeltune.core.xrd.phase_decision import prior_alpha
    from labeltune.core.xrd.significance import SIGNIFICANCE, normal_quantile

    assert prior_alpha(0.5) == pytest.approx(1.0 - SIGNIFICANCE)
    assert prior_alpha(0.9) == pytest.approx(1.0 - SIGNIFICANCE)  # never looser than the base level
    assert normal_quantile(prior_alpha(0.02)) == pytest.approx(4.1, abs=0.1)
    assert prior_alpha(0.001) < prior_alpha(0.02) < prior_alpha(0.2)
