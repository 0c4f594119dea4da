"""Classification metrics (numpy only), with scikit-learn's definitions and JSON-ready results.

Conventions (the same as scikit-learn's ``accuracy_score``, ``balanced_accuracy_score``,
``precision_recall_fscore_support`` and ``f1_score(average="macro")`` with ``zero_division=0``):

* ``precision = tp / predicted``, ``recall = tp / support``, ``f1 = 2 tp / (2 tp + fp + fn)``; any 0/0 is 0.0.
* ``balanced_accuracy`` is the mean recall over the classes that have at least one true sample; classes that
  occur only in the predictions are left out of it (scikit-learn warns and does the same).
* ``macro_f1`` is the mean F1 over the classes present in ``y_true`` or ``y_pred``; a class that is neither a
  true label nor a prediction has no meaningful F1 and is left out. A class that is predicted but never true
  (or true but never predicted) counts, with F1 0.0.
* ``per_class`` and ``confusion_matrix`` cover every class in ``classes``, absent ones included (all zeros).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labeltune.core.errors import UnusableInputError

__all__ = ["classification_metrics", "confusion_matrix", "top_k"]

LabelArray = Sequence[int] | np.ndarray


def _as_labels(values: LabelArray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class indices, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _checked_pair(y_true: LabelArray, y_pred: LabelArray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    true = _as_labels(y_true, "y_true")
    pred = _as_labels(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length ({true.size} vs {pred.size})")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    for name, array in (("y_true", true), ("y_pred", pred)):
        if array.size and (int(array.min()) < 0 or int(array.max()) >= num_classes):
            raise ValueError(
                f"{name} holds class indices outside [0, {num_classes}): "
                f"min {int(array.min())}, max {int(array.max())}"
            )
    return true, pred


def confusion_matrix(y_true: LabelArray, y_pred: LabelArray, num_classes: int) -> np.ndarray:
    """Return the ``(num_classes, num_classes)`` int64 confusion matrix; rows are true, columns predicted.

    Entry ``[i, j]`` counts the samples of true class ``i`` predicted as ``j``. Empty input gives zeros.
    Raises :class:`ValueError` for mismatched lengths, non-integer labels or indices outside the range.
    """
    true, pred = _checked_pair(y_true, y_pred, num_classes)
    counts = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ``numerator / denominator`` with 0.0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def classification_metrics(y_true: LabelArray, y_pred: LabelArray, classes: Sequence[str]) -> dict[str, Any]:
    """Compute accuracy, balanced accuracy, macro F1, per-class scores and the confusion matrix.

    ``y_true`` and ``y_pred`` are class indices into ``classes``. The result holds only builtins
    (``float``, ``int``, ``str``, ``list``, ``dict``) so it can go straight to ``json.dump``::

        {"n": int, "accuracy": float, "balanced_accuracy": float, "macro_f1": float,
         "per_class": [{"class": str, "precision": float, "recall": float, "f1": float, "support": int}],
         "confusion_matrix": [[int, ...], ...]}   # rows = true class, columns = predicted class

    See the module docstring for the conventions (scikit-learn's, zero division gives 0.0).
    Raises :class:`UnusableInputError` when there are no samples to evaluate.
    """
    num_classes = len(classes)
    true, pred = _checked_pair(y_true, y_pred, num_classes)
    if true.size == 0:
        raise UnusableInputError("no samples to evaluate: the evaluation set is empty")
    matrix = confusion_matrix(true, pred, num_classes)

    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    fp = predicted - tp
    fn = support - tp
    precision = _safe_ratio(tp, predicted.astype(np.float64))
    recall = _safe_ratio(tp, support.astype(np.float64))
    f1 = _safe_ratio(2.0 * tp, 2.0 * tp + fp + fn)

    n = int(true.size)
    has_true = support > 0
    present = has_true | (predicted > 0)
    return {
        "n": n,
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": float(recall[has_true].mean()),
        "macro_f1": float(f1[present].mean()),
        "per_class": [
            {
                "class": str(name),
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        ],
        "confusion_matrix": [[int(v) for v in row] for row in matrix],
        "accuracy_interval": list(wilson_interval(int(tp.sum()), n)),
    }


#: Below this many validation items a headline figure gets a warning: its 95 % interval is wider than
#: about ±14 points.
FEW_ITEMS = 50


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % for ``z`` = 1.96); ``(0, 1)`` when ``n`` is 0.

    Unlike "p ± z·sqrt(p(1-p)/n)" it stays inside [0, 1] and is not zero-width at 0 % or 100 %: 19 right
    of 19 gives 83–100 %, not "100 %".
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return round(float(max(0.0, centre - half)), 4), round(float(min(1.0, centre + half)), 4)


def headline_warnings(n: int, weights_id: str = "", interval: Sequence[float] | None = None) -> list[str]:
    """Plain-words warnings for a run's headline figures: too few validation items, random weights."""
    warnings = []
    if 0 < n < FEW_ITEMS:
        span = ""
        if interval is not None and len(interval) == 2:
            low, high = 100 * interval[0], 100 * interval[1]
            span = f": the accuracy could well be anywhere from {low:.0f} to {high:.0f} %"
        warnings.append(
            f"Only {n} validation image{'s' if n != 1 else ''}{span}. Label more images (or use k-fold "
            "cross-validation) before trusting these figures."
        )
    if weights_id.startswith("random"):
        warnings.append(
            "Trained from random weights (no pretraining): such a network rarely carries over to new "
            "images; start from ImageNet weights when you can."
        )
    return warnings


def top_k(probabilities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(indices, values)`` of the ``k`` largest entries along the last axis, largest first.

    Works on one sample (shape ``(C,)``) or a batch (shape ``(N, C)``); the results have shape ``(k,)`` or
    ``(N, k)``. ``k`` larger than ``C`` is clipped to ``C``. Ties keep the lower class index first, and NaN
    sorts last. ``indices`` are int64; ``values`` keep the input dtype.
    """
    probs = np.asarray(probabilities)
    if probs.ndim not in (1, 2):
        raise ValueError(f"probabilities must have shape (C,) or (N, C), got {probs.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(int(k), probs.shape[-1])
    key = probs if probs.dtype.kind == "f" else probs.astype(np.float64)  # negating unsigned ints would wrap
    # A stable sort of the negated values: descending, ties in index order, NaN (which stays NaN) last.
    order = np.argsort(-key, axis=-1, kind="stable")[..., :k].astype(np.int64, copy=False)
    values = np.take_along_axis(probs, order, axis=-1)
    return order, values
