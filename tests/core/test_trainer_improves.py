"""Early stopping and the best epoch count real progress only, not float noise."""

from __future__ import annotations

import math

from labeltune.core.trainer import improves


def test_a_better_first_element_wins_whatever_the_second() -> None:
    assert improves((0.80, -0.9), (0.75, -0.5))
    assert not improves((0.75, -0.1), (0.80, -0.9))


def test_equal_accuracy_goes_on_to_the_loss() -> None:
    assert improves((0.8, -0.40), (0.8, -0.50))
    assert not improves((0.8, -0.50), (0.8, -0.40))


def test_noise_below_the_margin_is_no_improvement() -> None:
    best = (0.5, -0.6931471)
    assert not improves((0.5, -0.6931470), best)  # 1e-7: a vanishing learning rate, another thread count
    assert not improves(best, best)


def test_anything_beats_the_start() -> None:
    start = (-math.inf, -math.inf)
    assert improves((0.0, -10.0), start)
    assert improves((-1.0, 0.0), (-math.inf, 0.0))
