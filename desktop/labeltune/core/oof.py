"""Out-of-fold probabilities of a light head on pooled features: what an audit judges labels against.

Each item's probabilities come from a logistic regression fitted on the other folds (k stratified folds,
groups kept whole: core/splits.py ``fold_indices``), so a wrong label cannot vouch for itself. The head
is multinomial (softmax) for classes, one-vs-rest (sigmoid) for phase sets, on centred and scaled features
with a small L2 penalty, whatever strategy trained the run; plain numpy (no torch import): seconds on
two cores for thousands of items.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from labeltune.core.errors import UnusableInputError
from labeltune.core.splits import fold_indices

DEFAULT_FOLDS = 5


def fold_assignment(
    strata: Sequence[str], folds: int, seed: int = 0, groups: Sequence[str | None] | None = None
) -> np.ndarray:
    """The fold (0..folds-1) of each item: stratified by ``strata``, each group in one fold.

    Strata with fewer items than folds (rare phase sets) are pooled into one, or each would land whole in
    the first fold and leave it nothing to train on.
    """
    n = len(strata)
    folds = max(2, min(folds, n))
    counts = Counter(strata)
    strata = [s if counts[s] >= folds else "\x00rare" for s in strata]
    assignment = np.zeros(n, dtype=np.int64)
    use_groups = groups if groups is not None and any(g is not None for g in groups) else None
    for k in range(folds):
        _, val = fold_indices(list(strata), folds, k, seed, use_groups)
        assignment[val] = k
    return assignment


def fit_predict(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    multilabel: bool = False,
    steps: int = 200,
    l2: float = 3e-2,
) -> np.ndarray:
    """Fit a logistic-regression head on ``(x_train, y_train)`` and return its probabilities on ``x_test``.

    ``y_train``: class indices (n,) with ``multilabel=False``; a 0/1 matrix (n, k) with ``multilabel=True``.
    Plain numpy: Nesterov-accelerated gradient descent on the convex loss with step ``1/L`` (``L`` from the
    largest eigenvalue of the scaled features' covariance), so no torch import and no tuning.
    """
    mean = x_train.mean(axis=0, keepdims=True)
    std = float(x_train.std()) + 1e-6  # one scale for all: per-feature scaling would amplify the noise dims
    xt = ((x_train - mean) / std).astype(np.float32)
    xs = ((x_test - mean) / std).astype(np.float32)
    n = len(xt)
    if multilabel:
        target = np.asarray(y_train, dtype=np.float32)
    else:
        target = np.zeros((n, probs_width(y_train)), dtype=np.float32)
        target[np.arange(n), y_train] = 1.0
    k = target.shape[1]
    xt = np.hstack([xt, np.ones((n, 1), dtype=np.float32)])  # the bias as a last column
    xs = np.hstack([xs, np.ones((len(xs), 1), dtype=np.float32)])
    lipschitz = _top_eigenvalue(xt) / n * (0.25 if multilabel else 0.5) + 2 * l2
    step = 1.0 / lipschitz
    weight = np.zeros((xt.shape[1], k), dtype=np.float32)
    previous = weight
    for t in range(1, steps + 1):
        look = weight + (t - 1) / (t + 2) * (weight - previous)
        grad = xt.T @ (_activate(xt @ look, multilabel) - target) / n + 2 * l2 * look
        previous, weight = weight, (look - step * grad).astype(np.float32)
    return _activate(xs @ weight, multilabel).astype(np.float64)


#: The light head sees at most this many principal components of the features (speed on 2 cores; the
#: labels play no part in them, so reducing all items at once leaks nothing between folds).
MAX_DIMS = 128


def principal_components(x: np.ndarray, dims: int = MAX_DIMS, seed: int = 0) -> np.ndarray:
    """``x`` (n, d) centred and projected on its top ``dims`` principal directions (randomised SVD)."""
    x = x - x.mean(axis=0, keepdims=True)
    if x.shape[1] <= dims:
        return x
    rng = np.random.default_rng(seed)
    sketch = x @ rng.standard_normal((x.shape[1], dims + 16)).astype(np.float32)
    sketch = x @ (x.T @ sketch)  # one power iteration sharpens the spectrum
    basis, _ = np.linalg.qr(sketch)
    _, _, vt = np.linalg.svd(basis.T @ x, full_matrices=False)
    return (x @ vt[:dims].T).astype(np.float32)  # type: ignore[no-any-return]


def _top_eigenvalue(x: np.ndarray, iterations: int = 30) -> float:
    """The largest eigenvalue of ``x.T @ x`` by power iteration (an upper bound's worth of precision)."""
    v = np.ones(x.shape[1], dtype=np.float64) / np.sqrt(x.shape[1])
    value = 1.0
    for _ in range(iterations):
        w = x.T @ (x @ v)
        value = float(np.linalg.norm(w))
        v = w / max(value, 1e-12)
    return value * 1.05


def _activate(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    """Sigmoid (one-vs-rest) or softmax over the last axis, numerically stable."""
    if multilabel:
        return 0.5 * (1.0 + np.tanh(0.5 * logits))  # type: ignore[no-any-return]
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def probs_width(labels: np.ndarray) -> int:
    """The number of classes implied by class indices ``labels``."""
    return int(labels.max()) + 1 if len(labels) else 0


def out_of_fold_probs(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int | None = None,
    folds: int = DEFAULT_FOLDS,
    groups: Sequence[str | None] | None = None,
    multilabel: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold probabilities (n, k) of a logistic-regression head on ``features`` (n, d).

    ``labels``: class indices (n,) or, with ``multilabel``, a 0/1 matrix (n, k). Every item is predicted by
    a head that never saw it; ``groups`` (e.g. one animal, one slide) stay in one fold.
    """
    x = principal_components(np.asarray(features, dtype=np.float32).reshape(len(features), -1), seed=seed)
    y = np.asarray(labels)
    n = len(x)
    if n < 4:
        raise UnusableInputError(f"an audit needs at least 4 labeled items, found {n}")
    if multilabel:
        k = y.shape[1]
        strata = [";".join(str(j) for j in np.flatnonzero(row)) for row in y]
    else:
        k = n_classes if n_classes is not None else probs_width(y)
        strata = [str(int(v)) for v in y]
    assignment = fold_assignment(strata, folds, seed, groups)
    probs = np.zeros((n, k))
    for fold in np.unique(assignment):
        test = assignment == fold
        train = ~test
        if not train.any():  # a single group holds everything: nothing to learn from
            probs[test] = 0.5 if multilabel else 1.0 / max(k, 1)
            continue
        if multilabel:
            probs[test] = fit_predict(x[train], y[train].astype(np.float32), x[test], multilabel=True)
            continue
        present = np.unique(y[train])  # a class absent from the training folds gets probability 0
        remap = np.searchsorted(present, y[train])
        probs[np.ix_(test, present)] = fit_predict(x[train], remap, x[test])
    return probs
