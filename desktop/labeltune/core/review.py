"""The prediction browser's core: a run's validation answers per item, and the orders and filters over them.

Domain-neutral: functions take arrays of labels, probabilities and paths (image runs pass their
validation files, XRD runs their patterns). ``val_predictions.csv`` in a run folder lists every validation
item with its true and predicted class, so the items behind a confusion-matrix cell are exactly the
ones counted in it (docs/adr/0030).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labeltune.core.atomic import write_text_atomic

__all__ = [
    "VAL_PREDICTIONS_FILE",
    "ValPrediction",
    "cell_paths",
    "margin",
    "read_val_predictions",
    "review_key",
    "write_val_predictions",
]

VAL_PREDICTIONS_FILE = "val_predictions.csv"


@dataclass(frozen=True)
class ValPrediction:
    """One validation item of a run: its file, true class and the class the run predicted."""

    path: str
    true: str
    predicted: str
    confidence: float


def write_val_predictions(
    run_dir: Path,
    paths: Sequence[str | os.PathLike[str]],
    targets: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
) -> None:
    """Write ``val_predictions.csv``: file, true, predicted, confidence (the rows of the confusion matrix).

    ``targets`` are class indices, ``probs`` an ``(n, classes)`` array (logits work too: only the argmax
    and the softmax of each row are used).
    """
    targets = np.asarray(targets)
    scores = np.asarray(probs, dtype=np.float64)
    if len(paths) != len(targets) or len(targets) != len(scores):
        raise ValueError(f"{len(paths)} paths, {len(targets)} targets and {len(scores)} predictions")
    predicted = scores.argmax(1) if len(scores) else np.zeros(0, dtype=np.int64)
    if len(scores):
        shifted = np.exp(scores - scores.max(1, keepdims=True))
        confidence = (shifted / shifted.sum(1, keepdims=True)).max(1)
    else:
        confidence = np.zeros(0)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["file", "true", "predicted", "confidence"])
    for path, true, pred, conf in zip(paths, targets, predicted, confidence, strict=True):
        writer.writerow([os.fspath(path), classes[int(true)], classes[int(pred)], f"{float(conf):.6f}"])
    write_text_atomic(
        run_dir / VAL_PREDICTIONS_FILE, text.getvalue()
    )  # a resumed run keeps the old on failure


def read_val_predictions(run_dir: Path) -> list[ValPrediction]:
    """The validation items of a run (empty when the run wrote none: older runs, stopped before an epoch)."""
    try:
        with open(run_dir / VAL_PREDICTIONS_FILE, newline="", encoding="utf-8") as handle:
            return [
                ValPrediction(
                    os.path.normpath(row["file"]), row["true"], row["predicted"], float(row["confidence"])
                )
                for row in csv.DictReader(handle)
            ]
    except FileNotFoundError:
        return []


def cell_paths(items: Sequence[ValPrediction], true: str, predicted: str) -> frozenset[str]:
    """The files behind one confusion-matrix cell: validation items of ``true`` predicted as ``predicted``."""
    return frozenset(item.path for item in items if item.true == true and item.predicted == predicted)


def margin(topk: Sequence[tuple[str, float]]) -> float:
    """Probability of the best class minus that of the second (1 when only one is known)."""
    first = topk[0][1] if topk else 0.0
    second = topk[1][1] if len(topk) > 1 else 0.0
    return first - second


def review_key(order: str, label: str | None, topk: Sequence[tuple[str, float]] | None) -> tuple[int, float]:
    """Where an item goes in a prediction order; items without a prediction come last.

    ``confidence``: least confident first; ``margin``: smallest margin first; ``loss``: highest loss
    first (labeled items; ``-log p(label)``); ``review``: unlabeled items the model is most sure about
    first (the fastest to accept).
    """
    if not topk:
        return (1, 0.0)
    confidence = topk[0][1]
    if order == "confidence":
        return (0, confidence)
    if order == "margin":
        return (0, margin(topk))
    if order == "loss":
        if label is None:
            return (1, 0.0)
        probability = dict(topk).get(label, 0.0)
        return (0, math.log(max(probability, 1e-12)))
    if order == "review":
        return (0, -confidence) if label is None else (1, 0.0)
    raise ValueError(f"unknown prediction order {order!r}")
