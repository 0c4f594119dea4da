"""Label next for a run and a data source: the image and XRD adapters around :mod:`labeltune.core.suggest`.

Each domain supplies two things: which items of ``DATA`` are unlabeled, and the run's outputs on them
(:class:`ItemOutputs`: probabilities and features, one row per item). Everything else is shared:
the ranking (:func:`labeltune.core.suggest.rank_unlabeled`) and the answer (:class:`Suggestion`). The
outputs are also what the data map projects (:mod:`labeltune.core.projection`).

* images — a project (its unlabeled samples), a class folder (its top-level files), a CSV (rows without a
  label); probabilities and pooled features from :func:`labeltune.core.inference.predict_files`;
* XRD — a project (patterns without phases), a folder (pattern files at top level not in its
  ``labels.csv``); probabilities from the network alone (no fit: a queue must be quick), features = the
  pattern on the model's 2θ grid, so near-identical measurements are near-copies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress
from labeltune.core.suggest import MAX_SIMILARITY, rank_unlabeled

XRD_MAX_SIMILARITY = 0.99
"""Patterns on the grid are all-positive curves with a shared background: a mixture and its main phase
reach a cosine of 0.95-0.97 (the Li-Mn-Ti-O patterns), so only repeated measurements count as copies."""


@dataclass
class ItemOutputs:
    """What a run says about items: one row per item that could be read, and the ones that could not."""

    paths: list[Path]
    predicted: list[str]  # a class, or a ``;``-joined phase set (XRD)
    confidence: np.ndarray  # (N,) calibrated probability of the answer (XRD: of its least sure decision)
    probabilities: np.ndarray  # (N, classes or phases)
    features: np.ndarray  # (N, D) what items are compared by
    method: str  # the uncertainty that fits the outputs: "margin" (one class each) or "multilabel"
    threshold: float = 0.5
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    #: Cosine of ``features`` above which two items are near-copies (the domain's default; ADR 27).
    max_similarity: float = MAX_SIMILARITY


@dataclass
class Suggestion:
    """One item of the label-next queue."""

    path: Path
    predicted: str
    confidence: float
    score: float  # uncertainty in [0, 1]: 1 = the model cannot decide

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (what ``labeltune suggest --json`` lists)."""
        return {
            "path": str(self.path),
            "predicted": self.predicted,
            "confidence": round(self.confidence, 6),
            "score": round(self.score, 6),
        }


# -- images ---------------------------------------------------------------------------------------------
def unlabeled_images(data: Path | str) -> tuple[list[Path], list[tuple[str, str]]]:
    """The unlabeled images of a project, class folder (top-level files) or CSV, and unreadable files."""
    from labeltune.core.datasets import scan

    found = scan(data, check=False)
    return [s.path for s in found.unlabeled], [(s.path, s.reason) for s in found.skipped]


def image_outputs(
    run_dir: Path | str,
    paths: list[Path],
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> ItemOutputs:
    """Calibrated probabilities and pooled features of an image run on ``paths``."""
    from labeltune.core.inference import predict_files

    predictions, bad = predict_files(
        run_dir, paths, k=1, device=device, progress=progress, stop_event=stop_event, keep_features=True
    )
    rows = [p for p in predictions if p.probabilities is not None and p.features is not None]
    return ItemOutputs(
        paths=[p.path for p in rows],
        predicted=[p.label for p in rows],
        confidence=np.asarray([p.confidence for p in rows], dtype=np.float64),
        probabilities=_stack([p.probabilities for p in rows]),
        features=_stack([p.features for p in rows]),
        method="margin",
        skipped=[(s.path, s.reason) for s in bad],
    )


# -- XRD --------------------------------------------------------------------------------------------------
def unlabeled_patterns(data: Path | str) -> tuple[list[Path], float | None]:
    """The unlabeled pattern files of an XRD project or folder, and the wavelength of files lacking one."""
    from labeltune.core.xrd.pattern_import import pattern_files
    from labeltune.core.xrd.xrd_project import XrdProject, is_xrd_project

    folder = Path(data).expanduser()
    if not folder.is_dir():
        raise UnusableInputError(f"{folder} is not a folder of patterns or an XRD project")
    if is_xrd_project(folder):
        project = XrdProject.open(folder)
        try:
            return [p for p in project.patterns() if not project.labels(p).is_labeled], project.wavelength
        finally:
            project.close()
    labeled: set[Path] = set()
    if (folder / "labels.csv").is_file():
        from labeltune.core.xrd.measured import read_labels_csv

        labeled = {Path(path).resolve() for path, _, _ in read_labels_csv(folder)}
    files = [p for p in pattern_files(folder) if p.name != "labels.csv"]
    return [p for p in files if p.resolve() not in labeled], None


def xrd_outputs(
    run_dir: Path | str,
    paths: list[Path],
    default_wavelength: float | None = None,
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> ItemOutputs:
    """Phase probabilities (network only) and on-grid patterns of an XRD run on ``paths``."""
    from labeltune.core.xrd.inference import load_xrd_model
    from labeltune.core.xrd.readers import read_pattern

    model = load_xrd_model(run_dir)
    wavelength = model.library.wavelength if default_wavelength is None else default_wavelength
    patterns, kept, skipped = [], [], []
    for i, path in enumerate(paths):
        check_stop(stop_event)
        progress(Progress("Reading patterns", i, len(paths), path.name))
        try:
            patterns.append(read_pattern(path, default_wavelength=wavelength))
            kept.append(path)
        except (UnusableInputError, OSError) as exc:
            skipped.append((str(path), str(exc)))
    progress(Progress("Reading patterns", len(paths), len(paths)))
    if not patterns:
        empty = np.zeros((0, len(model.names)))
        return ItemOutputs(
            [], [], np.zeros(0), empty, empty, "multilabel", model.threshold, skipped, XRD_MAX_SIMILARITY
        )
    grid_x, probs, _ = model.network(patterns)
    called = probs >= model.threshold
    predicted = [";".join(n for n, c in zip(model.names, row, strict=True) if c) for row in called]
    sureness = np.where(called, probs, 1.0 - probs).min(axis=1)
    return ItemOutputs(
        kept,
        predicted,
        sureness.astype(np.float64),
        probs,
        grid_x,
        "multilabel",
        model.threshold,
        skipped,
        XRD_MAX_SIMILARITY,
    )


# -- both ----------------------------------------------------------------------------------------------------
def suggest(
    run_dir: Path | str,
    data: Path | str,
    n: int = 20,
    *,
    device: str = "auto",
    wavelength: float | None = None,
    max_similarity: float | None = None,
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> tuple[list[Suggestion], list[tuple[str, str]]]:
    """The ``n`` unlabeled items of ``data`` most worth labeling next for ``run_dir`` (image or XRD run).

    ``max_similarity`` overrides the domain's near-copy threshold (:attr:`ItemOutputs.max_similarity`).
    """
    from labeltune.core.xrd.inference import is_xrd_run

    if n < 1:
        raise UnusableInputError("the number of suggestions must be at least 1")
    if not Path(data).expanduser().exists():
        raise UnusableInputError(f"{data} does not exist")
    if is_xrd_run(run_dir):
        patterns, project_wavelength = unlabeled_patterns(data)
        default = wavelength if wavelength is not None else project_wavelength
        outputs = xrd_outputs(run_dir, patterns, default, progress, stop_event)
    else:
        images, unreadable = unlabeled_images(data)
        outputs = image_outputs(run_dir, images, device, progress, stop_event)
        outputs.skipped = unreadable + outputs.skipped
    return rank_outputs(outputs, n, max_similarity), outputs.skipped


def rank_outputs(outputs: ItemOutputs, n: int, max_similarity: float | None = None) -> list[Suggestion]:
    """The first ``n`` of ``outputs``' items in label-next order (near-copies: the domain's threshold)."""
    if not outputs.paths:
        return []
    similarity = outputs.max_similarity if max_similarity is None else max_similarity
    order, scores = rank_unlabeled(
        outputs.probabilities, outputs.features, n, outputs.method, outputs.threshold, similarity
    )
    return [
        Suggestion(outputs.paths[i], outputs.predicted[i], float(outputs.confidence[i]), float(scores[i]))
        for i in order
    ]


def _stack(rows: list[Any]) -> np.ndarray:
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), dtype=np.float32)
