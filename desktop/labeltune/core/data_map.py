"""The data map: every item's features projected to 2-D, and which points a lasso encloses. Arrays in.

The domain-neutral part is :func:`map_coordinates` (``core/projection.py``'s PCA; ADR 27) and
:func:`points_in_polygon`; :func:`image_map` is the image adapter: the pooled features a run's head reads
(from the feature cache under the run's key, computed once where it lacks them:
``core/audit_run.py`` ``pooled_run_features``) and the run's prediction for each, from its head on the
same features (no second pass over the images). The app's Map tab (``ui/data_map.py``) draws the result.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress
from labeltune.core.projection import project


@dataclass
class DataMap:
    """Map coordinates of the items that could be read, and what the run predicts for each."""

    paths: list[Path]  # one per row of ``coords``, in the input's order
    coords: np.ndarray  # (n, 2) float32
    predicted: list[str]  # the run's class for each item ("" where there is no prediction)
    classes: list[str]  # the run's classes
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): not on the map


def map_coordinates(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(n, 2)`` map coordinates of ``(n, ...)`` features: the first two principal components."""
    return project(np.asarray(features, dtype=np.float32), seed)


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Boolean mask of the ``(n, 2)`` ``points`` inside the closed ``(m, 2)`` ``polygon`` (even-odd rule).

    Ray casting, vectorised over the points (one pass per edge): 10 000 points and a lasso of a few
    hundred vertices take milliseconds. Fewer than three vertices enclose nothing.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    inside = np.zeros(len(pts), dtype=bool)
    if len(poly) < 3 or len(pts) == 0:
        return inside
    x, y = pts[:, 0], pts[:, 1]
    for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        if y1 == y2:
            continue  # a horizontal edge never crosses a horizontal ray
        crosses = (y1 > y) != (y2 > y)
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_at)
    return inside


def image_map(
    run_dir: Path | str,
    paths: list[Path],
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> DataMap:
    """The map of ``paths`` under an image run: cached (else computed) pooled features, PCA, predictions."""
    import torch

    from labeltune.core.audit_run import pooled_run_features

    found = pooled_run_features(run_dir, list(paths), device, progress, stop_event)
    extracted, model = found.extracted, found.model
    classes = found.classes
    check_stop(stop_event)
    progress(Progress("map", 0, 1, "projecting the features"))
    features = extracted.features.astype(np.float32).reshape(len(extracted.ok), -1)
    coords = map_coordinates(features)
    predicted = [""] * len(extracted.ok)
    if len(extracted.ok) and classes:
        with torch.inference_mode():
            logits = model.head(torch.from_numpy(features))
        index = logits.argmax(dim=1).numpy()  # the temperature does not change the argmax
        predicted = [classes[int(i)] if int(i) < len(classes) else "" for i in index]
    progress(Progress("map", 1, 1, "projecting the features"))
    skipped = [(str(paths[i]), why) for i, why in sorted(extracted.failed.items())]
    return DataMap([Path(paths[i]) for i in extracted.ok], coords, predicted, classes, skipped)
