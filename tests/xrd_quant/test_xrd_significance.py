"""The statistics behind phase decisions (``core/xrd/significance.py``, ADR 0046): F distribution, F-test."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labeltune.core.xrd.significance import (
    correlation_factor,
    f_quantile,
    f_survival,
    incomplete_beta,
    phase_test,
)


def test_incomplete_beta_matches_closed_forms() -> None:
    # I_x(1, 1) = x; I_x(2, 3) = 1 - (1-x)^3 (1 + 3x) ... checked at x = 0.5: 11/16
    assert incomplete_beta(1.0, 1.0, 0.3) == pytest.approx(0.3)
    assert incomplete_beta(2.0, 3.0, 0.5) == pytest.approx(11 / 16)
    assert incomplete_beta(0.5, 0.5, 0.5) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("f", "d1", "d2", "p"),
    [
        (4.1028, 2, 10, 0.05),  # tabulated critical values
        (3.2059, 5, 100, 0.01),
        (10.828, 1, 1e9, 0.001),  # F(1, ∞) = chi²(1): z = 3.29
        (1.0, 4, 4, 0.5),
    ],
)
def test_f_survival_matches_tables(f: float, d1: float, d2: float, p: float) -> None:
    assert f_survival(f, d1, d2) == pytest.approx(p, rel=2e-3)
    assert f_quantile(p, d1, d2) == pytest.approx(f, rel=2e-3)  # its inverse (detection limits, ADR 0075)


def _fit(chi2: float, points: int, parameters: int, rho: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(
        chi2_sum=chi2, noise_chi2=None, n_points=points, n_parameters=parameters, residual_correlation=rho
    )


def test_f_test_of_nested_fits_and_the_correlation_deflation() -> None:
    # 1000 points, chi² 1000 with the phase (5 more parameters) and 1100 without: F = 20 / 1.01 ≈ 19.8
    big = phase_test(_fit(1000.0, 1000, 15), _fit(1100.0, 1000, 10))
    assert big.f == pytest.approx(100 / 5 / (1000 / 985))
    assert big.significant and big.p < 1e-15
    # a drop the added parameters would give by chance is not evidence
    small = phase_test(_fit(1000.0, 1000, 15), _fit(1005.0, 1000, 10))
    assert not small.significant and small.p > 0.3
    # correlated residuals (lag-1 0.9: each point is worth 1/19 of one): the same drop counts 19 x less
    assert correlation_factor(0.9) == pytest.approx(19.0)
    assert correlation_factor(-0.5) == 1.0
    deflated = phase_test(_fit(1000.0, 1000, 15, rho=0.9), _fit(1100.0, 1000, 10))
    assert deflated.f == pytest.approx(big.f / 19.0)
    assert deflated.p > big.p
