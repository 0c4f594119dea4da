"""Label next (core/suggest.py) and the data map (core/projection.py): arrays in, no model."""

from __future__ import annotations

import numpy as np
import pytest

from labeltune.core.projection import knn_accuracy, pca_axes, project
from labeltune.core.suggest import (
    diverse_order,
    entropy_uncertainty,
    margin_uncertainty,
    multilabel_uncertainty,
    rank_unlabeled,
    uncertainty,
)


def test_uncertainty_values() -> None:
    p = np.array([[0.5, 0.5, 0.0], [0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    assert margin_uncertainty(p) == pytest.approx([1.0, 0.15, 1.0, 0.0])
    assert entropy_uncertainty(p) == pytest.approx(
        [np.log(2) / np.log(3), 0.3944 / np.log(3), 1.0, 0.0], abs=1e-3
    )
    phases = np.array([[0.02, 0.97, 0.5], [0.1, 0.9, 0.8], [0.0, 1.0, 0.0]])
    assert multilabel_uncertainty(phases) == pytest.approx([1.0, 0.4, 0.0])  # 0.8 is 0.3 from 0.5
    assert multilabel_uncertainty(np.array([[0.3, 0.95]]), threshold=0.3) == pytest.approx([1.0])
    with pytest.raises(ValueError, match="unknown uncertainty"):
        uncertainty(p, "variance")


def _planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """200 items in 64-d: 20 near-copies of one very ambiguous item, 15 distinct ambiguous ones."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(200, 64)).astype(np.float32)
    p1 = rng.uniform(0.9, 0.99, 200)  # sure
    cluster = np.arange(20, 40)
    features[cluster] = features[20] + rng.normal(scale=0.02, size=(20, 64))
    p1[cluster] = rng.uniform(0.50, 0.52, 20)  # the most ambiguous of all
    ambiguous = np.arange(100, 115)
    p1[ambiguous] = rng.uniform(0.53, 0.6, 15)
    probabilities = np.stack([p1, 1 - p1], axis=1)
    return probabilities, features, cluster, ambiguous


def test_near_copies_are_spread_and_ambiguous_items_come_first() -> None:
    probabilities, features, cluster, ambiguous = _planted()
    order, scores = rank_unlabeled(probabilities, features, n=10)
    assert len(order) == 10 and len(set(order)) == 10
    assert np.isin(order, cluster).sum() <= 2
    assert np.isin(order, ambiguous).sum() >= 8  # the rest of the top 10: the genuinely ambiguous items
    assert scores[order[0]] == scores.max()
    # without diversity the planted copies would fill the queue: the check above can fail
    plain = diverse_order(scores, features, n=10, max_similarity=1.1)
    assert np.isin(plain, cluster).sum() == 10


def test_the_queue_is_full_even_when_everything_is_a_copy() -> None:
    features = np.ones((6, 8)) + np.random.default_rng(1).normal(scale=1e-3, size=(6, 8))
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3, 0.2])
    order = diverse_order(scores, np.tile(features[:1], (6, 1)), n=4)
    assert order == [1, 3, 2, 4]  # one distinct item, then the deferred ones by score
    assert diverse_order(scores, features, n=0) == []
    assert sorted(diverse_order(scores, features)) == list(range(6))


def test_multilabel_queue_puts_the_undecided_phase_first() -> None:
    probs = np.array([[0.99, 0.01, 0.02], [0.9, 0.48, 0.05], [0.7, 0.1, 0.2], [0.02, 0.97, 0.95]])
    features = np.eye(4)
    order, scores = rank_unlabeled(probs, features, method="multilabel")
    assert order[:2] == [1, 2] and order[-1] in (0, 3)
    assert scores[1] == pytest.approx(0.96)


# -- the data map ---------------------------------------------------------------------------------------
def _blobs(n_per: int = 200, dims: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(3, dims))
    x = np.concatenate([c + rng.normal(size=(n_per, dims)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(3), n_per)


def test_projection_keeps_separable_clusters_separable() -> None:
    x, y = _blobs()
    coords = project(x, seed=0)
    assert coords.shape == (600, 2) and coords.dtype == np.float32
    assert knn_accuracy(coords, y, k=5) > 0.9
    # a map of noise with the same labels is no better than chance: the measure can fail
    noise = np.random.default_rng(3).normal(size=(600, 2))
    assert knn_accuracy(noise, y, k=5) < 0.6


def test_projection_is_deterministic_and_matches_the_exact_pca() -> None:
    x, _ = _blobs(n_per=150, dims=300, seed=2)
    first, second = project(x, seed=7), project(x, seed=7)
    assert np.array_equal(first, second)
    _, axes = pca_axes(x, 2, seed=7)  # randomized (450 × 300 is above the exact-SVD size)
    centred = x - x.mean(axis=0)
    exact = np.linalg.svd(centred.astype(np.float64), full_matrices=False)[2][:2]
    for got, want in zip(axes, exact, strict=True):
        assert abs(float(got @ want)) == pytest.approx(1.0, abs=1e-4)


def test_projection_of_degenerate_inputs() -> None:
    assert project(np.zeros((0, 5))).shape == (0, 2)
    assert np.array_equal(project(np.ones((1, 5))), np.zeros((1, 2), dtype=np.float32))
    line = np.outer(np.arange(10.0), np.ones(4))  # one direction of spread only
    coords = project(line.astype(np.float16))
    assert coords.shape == (10, 2) and np.allclose(coords[:, 1], 0.0, atol=1e-3)
    assert np.all(np.diff(coords[:, 0]) > 0) or np.all(np.diff(coords[:, 0]) < 0)
