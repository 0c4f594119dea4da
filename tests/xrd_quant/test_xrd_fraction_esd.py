"""Fraction esds, phase evidence and detection limits of the quantification fit (issue 14, ADR 0046).

Simulated mixtures of the shipped library's real phases (anatase, MnO, a 1 wt % minor phase) at known
weight fractions: the fit's esds must cover the true error, shrink with counting statistics, and say a
1 wt % phase is there and an absent one is not.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from labeltune.core.xrd.library import Library, load_library
from labeltune.core.xrd.pattern import Pattern, make_pattern
from labeltune.core.xrd.quantify import FitResult, fit_phases
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.significance import Z_MIN, phase_test
from labeltune.core.xrd.simulate import SimulationConfig, simulate

MODEL = shipped_model_dir()
pytestmark = pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")
TRUTH = {"TiO2_141": 0.59, "MnO_225": 0.40, "Mn2O3_206": 0.01}
ABSENT = "LiMnO2_59"


@cache
def _library() -> Library:
    assert MODEL is not None
    return load_library(MODEL / "library")


def _pattern(seed: int, counts: float) -> Pattern:
    config = SimulationConfig(
        texture_sigma=0.0,
        impurity_probability=0.0,
        crystallite_nm=(80.0, 300.0),
        max_counts=(counts, counts),
        background=(0.05, 0.05),
        ka2_probability=1.0,
    )
    batch = simulate(_library(), 1, config, seed, composition=TRUTH)
    return make_pattern(
        batch.two_theta, batch.x[0] * counts, source=Path("mix.xy"), format="xy", wavelength=1.5406
    )


@cache
def _fit(seed: int, counts: float, names: tuple[str, ...]) -> FitResult:
    return fit_phases(_pattern(seed, counts), _library(), list(names))


def _t(fit: FitResult, name: str) -> float:
    phase = next(p for p in fit.phases if p.name == name)
    return phase.scale / phase.scale_esd


def test_fraction_esds_cover_the_true_error_and_shrink_with_counts() -> None:
    errors = []
    for seed in (1, 2, 3):
        fit = _fit(seed, 20000.0, tuple(TRUTH))
        for p in fit.phases:
            assert 0.0 < p.fraction_esd < 0.05, p
            errors.append(abs(p.weight_fraction - TRUTH[p.name]) / p.fraction_esd)
    assert sum(e < 3.0 for e in errors) >= len(errors) - 1, errors  # esds of the right size, not tiny
    poor = _fit(1, 1000.0, tuple(TRUTH))
    good = _fit(1, 20000.0, tuple(TRUTH))
    ratio = [p.fraction_esd / q.fraction_esd for p, q in zip(poor.phases, good.phases, strict=True)]
    assert all(r > 2.0 for r in ratio), ratio  # 20 x fewer counts: about sqrt(20) = 4.5 x larger esds
    assert good.n_points == len(good.two_theta) and good.n_parameters > 3 * len(TRUTH)
    assert good.chi2_sum == pytest.approx(good.chi2 * (good.n_points - good.n_parameters))


def test_a_one_percent_phase_has_evidence_and_an_absent_one_a_detection_limit() -> None:
    names = tuple(TRUTH)
    with_minor = _fit(1, 20000.0, names)
    without_minor = _fit(1, 20000.0, names[:2])
    assert _t(with_minor, "Mn2O3_206") >= Z_MIN
    assert phase_test(with_minor, without_minor).significant
    with_absent = _fit(1, 20000.0, (*names, ABSENT))
    absent = next(p for p in with_absent.phases if p.name == ABSENT)
    assert absent.scale / max(absent.scale_esd, 1e-300) < Z_MIN
    assert not phase_test(with_absent, with_minor).significant
    assert 0.0 < absent.detection_limit < 0.03, absent  # 3 esds of its scale, as a weight fraction
    assert np.isfinite(absent.fraction_esd)
