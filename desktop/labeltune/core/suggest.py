"""What to label next: unlabeled items ranked by uncertainty, with diversity. Arrays in, no domain.

The queue walks the items from the most to the least uncertain and *defers* an item whose features are
almost the same as those of one already queued (cosine above ``max_similarity``): twenty near-copies of one
ambiguous image would teach the model one thing twenty times.
Deferred items come after every distinct one, still by uncertainty, so the queue always holds ``n`` items
when there are ``n``. Why this and not k-center greedy: docs/adr/0027-label-next-and-data-map.md.

Uncertainty is a number in [0, 1], 1 the least sure:

* ``margin`` — 1 − (p1 − p2), the gap between the two most probable classes (single-label);
* ``entropy`` — the entropy of the probabilities over log(number of classes) (single-label);
* ``multilabel`` — for a set of independent yes/no decisions (XRD phases): how close the closest decision
  is to the threshold, 1 − |p − t| / max(t, 1 − t) for the phase nearest it.
"""

from __future__ import annotations

import numpy as np

METHODS = ("margin", "entropy", "multilabel")
MAX_SIMILARITY = 0.8
"""Cosine above which two items count as near-copies (one of them is deferred). On the fish photos'
pooled EfficientNet-Lite0 features it links 44 % of the pairs of frames of one track, 1.9 % of pairs of
one species from different tracks and 0.01 % of pairs of different species (ADR 27)."""


def _class_rows(probabilities: np.ndarray) -> np.ndarray:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError("probabilities must be (items, classes)")
    return p


def margin_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """1 − (p1 − p2) per row of ``(N, C)`` class probabilities (1 for a single class: nothing to decide)."""
    p = _class_rows(probabilities)
    if p.shape[1] < 2:
        return np.ones(len(p))
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return np.clip(1.0 - (top2[:, 0] - top2[:, 1]), 0.0, 1.0)


def entropy_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """Entropy of each row of ``(N, C)`` probabilities, divided by log(C) so that it lies in [0, 1]."""
    p = _class_rows(probabilities)
    if p.shape[1] < 2:
        return np.ones(len(p))
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)
    h = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)
    return np.clip(h / np.log(p.shape[1]), 0.0, 1.0)


def multilabel_uncertainty(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per row of ``(N, K)`` independent probabilities: how near the phase closest to ``threshold`` is."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError("probabilities must be (items, phases) with at least one phase")
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must lie strictly between 0 and 1")
    distance = np.abs(p - threshold).min(axis=1) / max(threshold, 1.0 - threshold)
    return np.clip(1.0 - distance, 0.0, 1.0)


def uncertainty(probabilities: np.ndarray, method: str = "margin", threshold: float = 0.5) -> np.ndarray:
    """The uncertainty of each item by ``method`` (one of :data:`METHODS`)."""
    if method == "margin":
        return margin_uncertainty(probabilities)
    if method == "entropy":
        return entropy_uncertainty(probabilities)
    if method == "multilabel":
        return multilabel_uncertainty(probabilities, threshold)
    raise ValueError(f"unknown uncertainty method {method!r}; use one of {', '.join(METHODS)}")


def unit_rows(features: np.ndarray, centre: bool = False) -> np.ndarray:
    """Rows scaled to unit length (after subtracting the mean row when ``centre``) for cosine similarity.

    The queue uses plain cosines: centred ones depend on which items are candidates, and on the fish
    photos they separated the frames of one track from other fish no better (ADR 27).
    """
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    if centre and len(x) > 1:
        x = x - x.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.clip(norms, 1e-12, None), dtype=np.float32)


def diverse_order(
    scores: np.ndarray,
    features: np.ndarray,
    n: int | None = None,
    max_similarity: float = MAX_SIMILARITY,
) -> list[int]:
    """Indices of the first ``n`` items (all when ``None``): by ``scores`` descending, near-copies deferred.

    An item whose cosine to an item already taken exceeds ``max_similarity`` waits until every
    distinct item has been taken; ties in ``scores`` keep the input order (a stable, reproducible queue).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(features):
        raise ValueError(f"{len(scores)} scores but {len(features)} feature rows")
    total = len(scores) if n is None else max(0, min(int(n), len(scores)))
    by_score = [int(i) for i in np.argsort(-scores, kind="stable")]
    if total == 0:
        return []
    unit = unit_rows(features)
    taken: list[int] = []
    deferred: list[int] = []
    chosen = np.zeros((total, unit.shape[1]), dtype=np.float32)
    for i in by_score:
        if len(taken) == total:
            break
        if taken and float((chosen[: len(taken)] @ unit[i]).max()) > max_similarity:
            deferred.append(i)
            continue
        chosen[len(taken)] = unit[i]
        taken.append(i)
    return (taken + deferred)[:total]


def rank_unlabeled(
    probabilities: np.ndarray,
    features: np.ndarray,
    n: int | None = None,
    method: str = "margin",
    threshold: float = 0.5,
    max_similarity: float = MAX_SIMILARITY,
) -> tuple[list[int], np.ndarray]:
    """The label-next queue: (indices, most useful first; every item's uncertainty score)."""
    scores = uncertainty(probabilities, method, threshold)
    return diverse_order(scores, features, n, max_similarity), scores
