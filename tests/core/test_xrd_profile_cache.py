"""The profile cache hands back exactly what ``phase_parts`` computes, per thread, within its memory bound."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from labeltune.core.xrd import profile_cache
from labeltune.core.xrd.peak_profile import phase_parts
from labeltune.core.xrd.profile_cache import cached_phase_parts

X = np.arange(10.0, 80.0, 0.02)
D = np.array([3.5, 2.8, 2.1, 1.6, 1.3])
REL = np.array([1.0, 0.4, 0.7, 0.2, 0.1])
ARGS = {
    "zero_shift": 0.01,
    "fwhm_of_theta": (0.08, 0.03, 0.0),
    "wavelength2": 1.54439,
    "ka2_ratio": 0.5,
    "asymmetry": 0.02,
}


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    profile_cache.clear()


def test_a_repeated_call_is_the_same_profile_computed_once() -> None:
    first = cached_phase_parts(X, D, REL, 1.54056, **ARGS)  # type: ignore[arg-type]
    np.testing.assert_array_equal(first, phase_parts(X, D, REL, 1.54056, **ARGS))  # type: ignore[arg-type]
    assert first.shape == (2, len(X)) and first[0].max() > 1.0  # a real profile, not zeros
    # equal contents in new arrays (a binned grid is rebuilt for every fit) find the same entry
    again = cached_phase_parts(X.copy(), D.copy(), REL.copy(), 1.54056, **ARGS)  # type: ignore[arg-type]
    assert again is first
    assert profile_cache.stats()[:2] == (1, 1)
    with pytest.raises(ValueError):  # handed out twice: nobody may change it
        again[0, 0] = 1.0


@pytest.mark.parametrize(
    "change",
    [
        {"zero_shift": 0.011},
        {"fwhm_of_theta": (0.08, 0.03, 0.001)},
        {"ka2_ratio": 0.0},
        {"asymmetry": 0.0},
        {"d": D * 1.0001},  # a lattice step
        {"rel": REL * np.array([1.0, 1.0, 1.1, 1.0, 1.0])},  # a texture factor
        {"x": X[:-1]},
    ],
)
def test_any_changed_argument_is_computed_anew(change: dict[str, object]) -> None:
    base = cached_phase_parts(X, D, REL, 1.54056, **ARGS)  # type: ignore[arg-type]
    x, d, rel = (change.pop(k, v) for k, v in (("x", X), ("d", D), ("rel", REL)))
    args = {**ARGS, **change}
    other = cached_phase_parts(x, d, rel, 1.54056, **args)  # type: ignore[arg-type]
    assert profile_cache.stats()[:2] == (0, 2)
    np.testing.assert_array_equal(other, phase_parts(x, d, rel, 1.54056, **args))  # type: ignore[arg-type]
    assert other.shape != base.shape or not np.array_equal(other, base)


def test_memory_is_bounded_oldest_out_first(monkeypatch: pytest.MonkeyPatch) -> None:
    one = 2 * len(X) * 8
    monkeypatch.setattr(profile_cache, "MAX_BYTES", 3 * one)
    for i in range(5):
        cached_phase_parts(X, D * (1 + 1e-4 * i), REL, 1.54056, **ARGS)  # type: ignore[arg-type]
    assert profile_cache.stats()[2] == 3 * one
    cached_phase_parts(X, D * (1 + 1e-4 * 4), REL, 1.54056, **ARGS)  # type: ignore[arg-type]  # newest: kept
    cached_phase_parts(X, D, REL, 1.54056, **ARGS)  # type: ignore[arg-type]  # oldest: gone
    assert profile_cache.stats()[:2] == (1, 6)


def test_threads_keep_their_own_cache() -> None:
    cached_phase_parts(X, D, REL, 1.54056, **ARGS)  # type: ignore[arg-type]
    seen: list[tuple[int, int, int]] = []

    def work() -> None:
        cached_phase_parts(X, D, REL, 1.54056, **ARGS)  # type: ignore[arg-type]
        seen.append(profile_cache.stats())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen[0][:2] == (0, 1)  # a miss there, although this thread holds the same entry
    assert profile_cache.stats()[:2] == (0, 1)
