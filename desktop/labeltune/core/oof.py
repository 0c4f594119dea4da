"""Out-of-fold probabilities of a light head on pooled features: what an audit judges labels against.

Each item's probabilities come from a logistic regression fitted on the other folds (k stratified folds,
groups kept whole: core/splits.py ``fold_indices``), so a wrong label cannot vouch for itself. The head
is multinomial (softmax) for classes, one-vs-rest (sigmoid) for phase sets; features are standardised,
fitted with L-BFGS and a small L2 penalty, whatever strategy trained the run: seconds on two cores for
thousands of items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labeltune.core.errors import UnusableInputError
from labeltune.core.splits import fold_indices

DEFAULT_FOLDS = 5


def fold_assignment(
    strata: Sequence[str], folds: int, seed: int = 0, groups: Sequence[str | None] | None = None
) -> np.ndarray:
    """The fold (0..folds-1) of each item: stratified by ``strata``, each group in one fold."""
    n = len(strata)
    folds = max(2, min(folds, n))
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
    l2: float = 1e-3,
) -> np.ndarray:
    """Fit a logistic-regression head on ``(x_train, y_train)`` and return its probabilities on ``x_test``.

    ``y_train``: class indices (n,) with ``multilabel=False``; a 0/1 matrix (n, k) with ``multilabel=True``.
    """
    import torch

    mean = x_train.mean(axis=0, keepdims=True)
    std = x_train.std(axis=0, keepdims=True) + 1e-6
    xt = torch.from_numpy(((x_train - mean) / std).astype(np.float32))
    xs = torch.from_numpy(((x_test - mean) / std).astype(np.float32))
    k = y_train.shape[1] if multilabel else int(probs_width(y_train))
    generator = torch.Generator().manual_seed(0)
    weight = (torch.randn(xt.shape[1], k, generator=generator) * 0.01).requires_grad_(True)
    bias = torch.zeros(k, requires_grad=True)
    target = torch.from_numpy(np.asarray(y_train, dtype=np.float32 if multilabel else np.int64))
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=steps, history_size=10, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = xt @ weight + bias
        if multilabel:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        else:
            loss = torch.nn.functional.cross_entropy(logits, target)
        loss = loss + l2 * (weight * weight).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        logits = xs @ weight + bias
        out = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
    return out.numpy().astype(np.float64)


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
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
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
        if multilabel:
            probs[test] = fit_predict(x[train], y[train].astype(np.float32), x[test], multilabel=True)
            continue
        present = np.unique(y[train])  # a class absent from the training folds gets probability 0
        remap = np.searchsorted(present, y[train])
        probs[np.ix_(test, present)] = fit_predict(x[train], remap, x[test])
    return probs
