"""Scoring an XRD model on labeled measurements: phase sets compared by reduced formula, fraction error.

``labeltune evaluate XRD_RUN LABELED_DIR`` prints what :func:`score_predictions` returns; the command line
only reads the files, runs the model and words the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from labeltune.core.xrd.library import Library
from labeltune.core.xrd.metrics import FormulaError, label_key, phase_set_metrics, resolve_label
from labeltune.core.xrd.results import XrdPrediction

#: One row of a ``labels.csv``: the pattern, its phase tokens (names or formulas), their weight fractions.
LabeledRow = tuple[Path, list[str], list[float] | None]


def unknown_phases(rows: Iterable[LabeledRow], library: Library) -> set[str]:
    """The phase tokens of ``rows`` that are neither a phase name nor a formula of ``library``."""
    unknown = set()
    for _path, tokens, _fractions in rows:
        for token in tokens:
            try:
                resolve_label(token, library)
            except FormulaError:
                unknown.add(token)
    return unknown


def score_predictions(
    rows: Sequence[LabeledRow], predictions: Iterable[XrdPrediction], library: Library
) -> dict[str, Any]:
    """Phase-set metrics (by reduced formula) and weight-fraction error of ``predictions``.

    One entry per scored file goes under ``files``; rows without a prediction are left out.
    """
    by_path = {Path(p.path).resolve(): p for p in predictions}
    truth: list[set[str]] = []
    pred: list[set[str]] = []
    true_fr: list[dict[str, float] | None] = []
    pred_fr: list[dict[str, float]] = []
    per_file: list[dict[str, Any]] = []
    for path, tokens, fractions in rows:
        p = by_path.get(path.resolve())
        if p is None:
            continue
        t = [label_key(tok, library) for tok in tokens]
        truth.append(set(t))
        pred.append({label_key(c.name, library) for c in p.phases})
        true_fr.append(dict(zip(t, fractions, strict=True)) if fractions else None)
        merged: dict[str, float] = {}
        for c in p.phases:
            key = label_key(c.name, library)
            merged[key] = merged.get(key, 0.0) + (c.fraction or 0.0)
        pred_fr.append(merged)
        per_file.append(
            {
                "path": str(path),
                "truth": sorted(truth[-1]),
                "predicted": sorted(pred[-1]),
                "exact": truth[-1] == pred[-1],
                **({"true_fractions": true_fr[-1], "predicted_fractions": merged} if fractions else {}),
            }
        )
    metrics = phase_set_metrics(truth, pred, true_fr, pred_fr).to_json()
    metrics["files"] = per_file
    return metrics
