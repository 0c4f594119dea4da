"""Confidence that means what it says: temperature scaling fitted on held-out data, and its error.

A network trained to low loss is usually over-confident: "97 %" is right far less often than 97 times in
a hundred. Temperature scaling (Guo et al. 2017) divides the logits by one number ``T`` fitted to minimise
the negative log-likelihood of held-out (validation) data; it keeps every prediction's ranking, so accuracy
does not change, and it needs only the logits, so it works for any domain and model.

* ``multilabel=False``: softmax over classes (image classifiers); the error is the top-label expected
  calibration error (ECE, 15 equal-width bins).
* ``multilabel=True``: one sigmoid per label (e.g. XRD phase presence); the error is the ECE of every
  (item, label) probability against its 0/1 truth.

:func:`calibrate` fits ``T`` on all the data given and reports ECE before and after. With enough data the
"after" figure is cross-fitted — each fold is scaled by a temperature fitted on the other folds — so it is
not measured on the data that chose ``T``; with too little data it is in-sample and says so.

NumPy only (no torch), so the reports can be made and read anywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from labeltune.core.golden import golden_section

#: ECE bins (equal width over [0, 1]).
ECE_BINS = 15
#: Cross-fitting folds; fewer items than ``MIN_PER_FOLD * folds`` give an in-sample report.
CV_FOLDS = 5
MIN_PER_FOLD = 8
#: Temperatures are searched in [1/50, 50] (log scale).
_LOG_T_RANGE = (-math.log(50.0), math.log(50.0))
#: Standard deviation of a Gaussian prior on log T (MAP fit). With a few dozen validation items that are
#: all classified correctly, maximum likelihood sends T to 0 (every later answer "100 %"); the prior keeps
#: T near 1 unless the data say otherwise, and its weight fades as 1/n.
PRIOR_SD = 0.5


@dataclass
class CalibrationReport:
    """A fitted temperature and what it does to the calibration error."""

    temperature: float
    ece_before: float
    ece_after: float
    n: int
    cross_fitted: bool
    method: str = "temperature scaling"
    multilabel: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, with a sentence saying how the figures were measured."""
        out: dict[str, Any] = asdict(self)
        # NaN (no validation items) is not JSON: None says "not measured"
        out["ece_before"] = round(self.ece_before, 5) if math.isfinite(self.ece_before) else None
        out["ece_after"] = round(self.ece_after, 5) if math.isfinite(self.ece_after) else None
        out["temperature"] = round(self.temperature, 5)
        if self.n == 0:
            out["note"] = "no validation items: the confidence is not calibrated (temperature 1)"
            return out
        out["note"] = (
            f"ECE on {self.n} validation items; 'after' is cross-fitted ({CV_FOLDS} folds: each fold scaled "
            "by a temperature fitted on the others)"
            if self.cross_fitted
            else f"ECE on {self.n} validation items, in-sample (too few to cross-fit): 'after' is optimistic"
        )
        return out


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``."""
    return np.exp(_log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def sigmoid(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Element-wise sigmoid of ``logits / temperature``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float, multilabel: bool = False) -> float:
    """Mean negative log-likelihood of ``targets`` under ``logits / temperature``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if multilabel:
        y = np.asarray(targets, dtype=np.float64)
        # log(1 + exp(-|z|)) + max(z, 0) - y z, the stable binary cross-entropy
        return float(np.mean(np.logaddexp(0.0, z) - y * z))
    rows = np.arange(len(z))
    return float(-_log_softmax(z)[rows, np.asarray(targets, dtype=np.int64)].mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray, multilabel: bool = False) -> float:
    """The temperature minimising the NLL of ``targets`` plus a weak prior (golden-section over log T).

    The objective is the mean NLL + ``(log T)^2 / (2 PRIOR_SD^2 n)``; both terms are unimodal in log T,
    so the search finds the global minimum. Returns 1.0 for empty input.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.size == 0 or len(logits) == 0:
        return 1.0
    weight = 1.0 / (2.0 * PRIOR_SD**2 * len(logits))

    def objective(log_t: float) -> float:
        return nll(logits, targets, math.exp(log_t), multilabel) + weight * log_t * log_t

    bracket = golden_section(objective, *_LOG_T_RANGE, iterations=80)
    return float(math.exp((bracket.lo + bracket.hi) / 2.0))


def expected_calibration_error(
    probabilities: np.ndarray, targets: np.ndarray, multilabel: bool = False, bins: int = ECE_BINS
) -> float:
    """ECE: the bin-weighted mean gap between confidence and accuracy (0 = perfectly calibrated).

    Multi-class: the top label's probability against whether the top label is right. Multi-label: every
    probability against its 0/1 truth.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.size == 0:
        return float("nan")
    if multilabel:
        confidence = p.ravel()
        correct = np.asarray(targets, dtype=np.float64).ravel()
    else:
        confidence = p.max(axis=1)
        correct = (p.argmax(axis=1) == np.asarray(targets)).astype(np.float64)
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.sum() * abs(confidence[members].mean() - correct[members].mean())
    return float(total / len(confidence))


def _probabilities(logits: np.ndarray, temperature: float, multilabel: bool) -> np.ndarray:
    return sigmoid(logits, temperature) if multilabel else softmax(logits, temperature)


def calibrate(
    logits: np.ndarray,
    targets: np.ndarray,
    multilabel: bool = False,
    groups: np.ndarray | None = None,
    seed: int = 0,
) -> CalibrationReport:
    """Fit the temperature on ``logits``/``targets`` and report the ECE before and after (see module doc).

    ``groups`` (optional, one per item) keeps items of a group in one cross-fitting fold.
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets)
    n = len(logits)
    if n == 0:
        return CalibrationReport(1.0, float("nan"), float("nan"), 0, False, multilabel=multilabel)
    temperature = fit_temperature(logits, targets, multilabel)
    before = expected_calibration_error(_probabilities(logits, 1.0, multilabel), targets, multilabel)
    folds = _folds(n, groups, seed)
    if folds is None:
        after = expected_calibration_error(
            _probabilities(logits, temperature, multilabel), targets, multilabel
        )
        return CalibrationReport(temperature, before, after, n, False, multilabel=multilabel)
    crossed = np.zeros((n, logits.shape[1]), dtype=np.float64)
    for fold in range(CV_FOLDS):
        held = folds == fold
        t = fit_temperature(logits[~held], targets[~held], multilabel)
        crossed[held] = _probabilities(logits[held], t, multilabel)
    after = expected_calibration_error(crossed, targets, multilabel)
    return CalibrationReport(temperature, before, after, n, True, multilabel=multilabel)


def _folds(n: int, groups: np.ndarray | None, seed: int) -> np.ndarray | None:
    """A fold number per item (whole groups per fold), or ``None`` when there are too few items."""
    if n < CV_FOLDS * MIN_PER_FOLD:
        return None
    rng = np.random.default_rng(seed)
    if groups is None:
        return np.asarray(rng.permutation(n) % CV_FOLDS)
    keys = np.asarray([str(g) for g in groups])
    unique = np.unique(keys)
    if len(unique) < CV_FOLDS:
        return None
    fold_of = dict(zip(unique[rng.permutation(len(unique))], np.arange(len(unique)) % CV_FOLDS, strict=True))
    return np.asarray([fold_of[k] for k in keys])
