"""How unsure a model is about one item, from plain arrays: any domain, no model needed.

Two measures, both 0 (sure) .. 1 (a coin toss), so they can be combined with ``max`` and sorted on:

* :func:`presence_doubt`: for independent yes/no outputs (multi-label, e.g. XRD phase presence) the
  smallest distance of any probability from the decision threshold; one output sitting on the threshold
  makes the whole item doubtful.
* :func:`hypothesis_doubt`: for competing explanations scored by a loss (lower is better, e.g. the Rwp of
  whole XRD phase sets), how close the second best comes to the best: equal scores = 1, a second that is
  ``SURE_GAP`` (relative) worse or more = 0. A richer explanation always fits a little better, so each
  may carry a complexity (e.g. its number of phases) that multiplies its loss by ``(1 + penalty)`` each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SURE_GAP = 0.2
"""A second-best hypothesis whose loss is this much (relative) worse than the best leaves no doubt."""


def presence_doubt(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per row of ``probabilities`` (items × outputs): 1 − the smallest margin from ``threshold``, scaled.

    The margin is divided by the largest one possible (``max(threshold, 1 - threshold)``) so that a
    row of 0s and 1s gives 0 and a probability on the threshold gives 1. A row with no outputs gives 1.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be items × outputs, got shape {p.shape}")
    if p.shape[1] == 0:
        return np.ones(p.shape[0])
    margin = np.min(np.abs(p - threshold), axis=1) / max(threshold, 1.0 - threshold)
    return np.clip(1.0 - margin, 0.0, 1.0)


def hypothesis_doubt(
    losses: Sequence[float],
    complexity: Sequence[float] | None = None,
    penalty: float = 0.0,
    sure_gap: float = SURE_GAP,
) -> float:
    """1 − (relative gap between the best two ``losses``) / ``sure_gap``, within 0..1; 0 with fewer than 2.

    With ``complexity``, loss i counts as ``losses[i] * (1 + penalty) ** complexity[i]``.
    """
    sizes = [0.0] * len(losses) if complexity is None else [float(c) for c in complexity]
    if len(sizes) != len(losses):
        raise ValueError("one complexity per loss")
    ordered = sorted(float(v) * (1.0 + penalty) ** c for v, c in zip(losses, sizes, strict=True))
    if len(ordered) < 2:
        return 0.0
    best, second = ordered[0], ordered[1]
    gap = (second - best) / max(abs(best), 1e-12)
    return float(np.clip(1.0 - gap / sure_gap, 0.0, 1.0))
