"""Likely label errors and near-duplicates, from arrays: the domain-neutral half of ``labeltune audit``.

:func:`label_issues` is confident learning (Northcutt, Jiang & Chuang, JAIR 2021) in its plain form:
the threshold of class ``j`` is the mean predicted probability of ``j`` over the items labeled ``j`` (the
class's self-confidence); an item is an issue when some class other than its label reaches its threshold,
the most probable such class being the suggestion. Issues are ranked by the normalized margin
``(max_{k != label} p_k - p_label + 1) / 2`` (1: the model is sure of another class). The probabilities
must be out-of-fold (core/oof.py), or the model has memorised the wrong labels. ADR 26 says why these
few lines and not cleanlab.

:func:`near_duplicates` links items whose centred, L2-normalised features have cosine similarity at or
above a threshold, by blocked matrix products (memory ``block × n``), and merges linked items into groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Cosine similarity (of centred features) at or above which two items count as near-duplicates. On the
#: shared corn photos no two distinct photos reach it while 8 of 10 re-encoded noisy copies do; on the
#: fish crops only consecutive frames of one video do (true near-duplicates); ADR 26 has the figures.
DUPLICATE_THRESHOLD = 0.95

#: Kinds of a duplicate group, most serious first.
CROSS_CLASS = "cross_class"  # conflicting labels
TRAIN_VAL = "train_val"  # leakage across the run's split
SAME_CLASS = "same_class"

#: Labeled items a class needs before its items are judged, or it is suggested for others: with 5 folds,
#: every out-of-fold head then saw the class at least 4 times.
MIN_CLASS_COUNT = 5


@dataclass(frozen=True)
class LabelIssue:
    """An item whose label disagrees with a confident out-of-fold prediction."""

    index: int
    label: int
    suggested: int
    score: float  # normalized margin in [0, 1]: higher = more likely wrong


@dataclass(frozen=True)
class DuplicateGroup:
    """Items linked by feature similarity ≥ the threshold (transitively)."""

    members: list[int]
    similarity: float  # the weakest link that holds the group together
    kind: str


def class_thresholds(probs: np.ndarray, labels: np.ndarray, min_count: int = MIN_CLASS_COUNT) -> np.ndarray:
    """Per-class self-confidence: mean ``probs[:, j]`` over the items labeled ``j``.

    A class with fewer than ``min_count`` items gets an infinite threshold: out of fold, its items were
    judged by heads that saw the class too rarely (never, for a single item) for its mean to mean much.
    """
    k = probs.shape[1]
    thresholds = np.full(k, np.inf)
    for j in range(k):
        mine = labels == j
        if mine.sum() >= min_count:
            thresholds[j] = float(probs[mine, j].mean())
    return thresholds


def label_issues(probs: np.ndarray, labels: np.ndarray) -> list[LabelIssue]:
    """Confident-learning issues of ``labels`` (n,) given out-of-fold ``probs`` (n, k), likeliest first."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if n == 0:
        return []
    thresholds = class_thresholds(probs, labels)
    passing = probs >= thresholds[None, :] - 1e-12
    passing[np.arange(n), labels] = False
    passing[~np.isfinite(thresholds[labels])] = False  # a class too rare to judge: its items are not
    others = np.where(passing, probs, -np.inf)
    suggested = np.argmax(others, axis=1)
    flagged = np.flatnonzero(np.isfinite(others[np.arange(n), suggested]))
    masked = probs.copy()
    masked[np.arange(n), labels] = -np.inf
    margin = (masked.max(axis=1) - probs[np.arange(n), labels] + 1.0) / 2.0
    issues = [LabelIssue(int(i), int(labels[i]), int(suggested[i]), float(margin[i])) for i in flagged]
    issues.sort(key=lambda issue: (-issue.score, issue.index))
    return issues


def multilabel_issues(probs: np.ndarray, labels: np.ndarray) -> list[tuple[int, list[int], float]]:
    """Label issues of multi-hot ``labels`` (n, k) given one-vs-rest ``probs`` (n, k), likeliest first.

    Each class is a two-class problem (absent, present) given to :func:`label_issues`; an item is an issue
    when any of its classes is, its suggestion is its label set with those classes flipped and its score
    the highest of theirs. Returns ``(index, suggested classes, score)``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    flips: dict[int, list[int]] = {}
    scores: dict[int, float] = {}
    for j in range(probs.shape[1]):
        binary = np.stack([1.0 - probs[:, j], probs[:, j]], axis=1)
        for issue in label_issues(binary, labels[:, j].astype(np.int64)):
            flips.setdefault(issue.index, []).append(j)
            scores[issue.index] = max(scores.get(issue.index, 0.0), issue.score)
    out = []
    for i, flipped in flips.items():
        row = labels[i].copy()
        row[flipped] = ~row[flipped]
        out.append((i, [int(j) for j in np.flatnonzero(row)], scores[i]))
    out.sort(key=lambda item: (-item[2], item[0]))
    return out


def similar_pairs(
    features: np.ndarray, threshold: float = DUPLICATE_THRESHOLD, block: int = 2048
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, cosine)`` with ``i < j`` whose centred features have cosine ≥ ``threshold``."""
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    if len(x) < 2:
        return []
    x = x - x.mean(axis=0, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(x), block):
        sims = x[start : start + block] @ x[start:].T  # only j >= the block's first row
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i, j = start + r, start + c
            if j > i:
                pairs.append((i, j, float(sims[r, c])))
    return pairs


def near_duplicates(
    features: np.ndarray,
    labels: Sequence[object],
    split: Sequence[str] | None = None,
    threshold: float = DUPLICATE_THRESHOLD,
) -> list[DuplicateGroup]:
    """Groups of near-duplicate items, most similar first.

    ``labels[i]`` is item ``i``'s label (any comparable value: a class, a phase set); ``split[i]`` its side
    of the run's split (``"train"``, ``"val"``, or anything else for items the run did not use). A group is
    ``cross_class`` when its labels differ, else ``train_val`` when it spans both sides, else ``same_class``.
    """
    pairs = similar_pairs(features, threshold)
    parent = list(range(len(labels)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in pairs:
        parent[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    weakest: dict[int, float] = {}
    for i, _j, sim in pairs:
        r = root(i)
        weakest[r] = min(weakest.get(r, 1.0), sim)
    for i in range(len(labels)):
        if root(i) in weakest:
            members.setdefault(root(i), []).append(i)
    groups = []
    for r, items in members.items():
        sides = {split[i] for i in items} if split is not None else set()
        if len({_label_key(labels[i]) for i in items}) > 1:
            kind = CROSS_CLASS
        elif {"train", "val"} <= sides:
            kind = TRAIN_VAL
        else:
            kind = SAME_CLASS
        groups.append(DuplicateGroup(sorted(items), min(weakest[r], 1.0), kind))
    groups.sort(key=lambda g: (-g.similarity, g.members[0]))
    return groups


def _label_key(label: object) -> object:
    """A hashable form of a label (phase sets come as lists)."""
    if isinstance(label, (list, tuple, set, frozenset)):
        return frozenset(label)
    return label
