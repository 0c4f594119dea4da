"""Label next and Retrain for an image project: the queue with its reasons, and the retraining settings.

The queue is :mod:`labeltune.core.suggest_items`' (``labeltune suggest``: uncertainty with diversity, ADR 27)
on every unlabeled image, with what the app shows beside each item: the two classes the model hesitates
between ("Blight 41 % vs Rust 38 %"). Retrain trains a *features* head with the settings of the run in use
(seconds on cached features) and words the change in validation accuracy between the two runs
(docs/adr/0034-label-next-and-retrain-in-the-app.md).
"""

from __future__ import annotations

import csv
import json
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import ProgressCallback, no_progress
from labeltune.core.suggest_items import image_outputs, rank_outputs, unlabeled_images
from labeltune.core.train_config import DEFAULT_EPOCHS, TrainConfig

QUEUE_SIZE = 500
"""The most images a queue holds: hours of labeling, and Retrain ranks again. The diversity pass compares
each candidate with every image queued, so a queue of all of a 100 000-image project would take minutes."""


@dataclass
class QueueItem:
    """One unlabeled image of the label-next queue and why the model is unsure of it."""

    path: Path
    predicted: str
    confidence: float
    score: float  # uncertainty in [0, 1] (margin): 1 = the two best classes are equally likely
    runner_up: str | None  # the second most probable class (None: a one-class model)
    runner_up_probability: float

    def reason(self) -> str:
        """The two classes the model hesitates between, e.g. ``Blight 41 % vs Rust 38 %``."""
        first = f"{self.predicted} {100 * self.confidence:.0f} %"
        if self.runner_up is None:
            return first
        return f"{first} vs {self.runner_up} {100 * self.runner_up_probability:.0f} %"


def run_classes(run_dir: Path | str) -> list[str]:
    """The classes of an image run, in the order of its probabilities (``config.json``)."""
    try:
        stored = json.loads((Path(run_dir) / "config.json").read_text())
        return [str(name) for name in stored["model"]["classes"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnusableInputError(f"cannot read the classes of the run in {run_dir}: {exc}") from None


def label_queue(
    run_dir: Path | str,
    data: Path | str,
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
    n: int = QUEUE_SIZE,
) -> tuple[list[QueueItem], list[tuple[str, str]]]:
    """The first ``n`` unlabeled images of ``data`` in label-next order for ``run_dir``; the files left out.

    The order is exactly ``labeltune suggest RUN DATA --n N``'s (the same core calls).
    """
    images, unreadable = unlabeled_images(data)
    outputs = image_outputs(run_dir, images, device, progress, stop_event)
    ranked = rank_outputs(outputs, n)
    classes = run_classes(run_dir)
    row_of = {path: i for i, path in enumerate(outputs.paths)}
    queue = []
    for item in ranked:
        probabilities = np.asarray(outputs.probabilities[row_of[item.path]], dtype=np.float64)
        second = _runner_up(probabilities, classes, item.predicted)
        queue.append(QueueItem(item.path, item.predicted, item.confidence, item.score, second[0], second[1]))
    return queue, unreadable + outputs.skipped


def _runner_up(probabilities: np.ndarray, classes: list[str], predicted: str) -> tuple[str | None, float]:
    order = [int(i) for i in np.argsort(-probabilities, kind="stable")]
    others = [i for i in order if i < len(classes) and classes[i] != predicted]
    if not others:
        return None, 0.0
    return classes[others[0]], float(probabilities[others[0]])


# -- Retrain ----------------------------------------------------------------------------------------------
@dataclass
class RetrainPlan:
    """The settings of a retraining run and, when they differ from the run in use, why."""

    config: TrainConfig
    base_strategy: str
    note: str  # "" when the run in use already trained a features head


def retrain_plan(run_dir: Path | str) -> RetrainPlan:
    """A *features* run with the settings of ``run_dir`` (its backbone, weights, input size, split, seed).

    A *partial* or *full* run becomes a features head on the same backbone: minutes become seconds, which
    is what a retrain after a few new labels is for; its strategy's learning rate and epochs give way to
    the features defaults (theirs would under- or over-train a head alone).
    """
    try:
        stored = json.loads((Path(run_dir) / "config.json").read_text())
        train: dict[str, Any] = dict(stored["train"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnusableInputError(f"cannot read the settings of the run in {run_dir}: {exc}") from None
    known = {f.name for f in fields(TrainConfig)}
    settings = {key: value for key, value in train.items() if key in known}
    base = str(settings.get("strategy", "features"))
    note = ""
    if base != "features":
        settings.update(strategy="features", epochs=DEFAULT_EPOCHS["features"], lr=None)
        settings.update(freeze_batchnorm=None, backbone_lr_factor=TrainConfig.backbone_lr_factor)
        note = (
            f"The run in use fine-tuned its backbone ({base}); Retrain trains a quick features head on "
            f"the same {settings.get('backbone')} backbone from cached features (seconds, not minutes). "
            f"Train {base} again on the Train tab when the labels are done."
        )
    return RetrainPlan(TrainConfig(**settings), base, note)


def validation_accuracy(run_dir: Path | str) -> float | None:
    """The validation accuracy in a run's ``metrics.json`` (None: missing or unreadable)."""
    try:
        value = json.loads((Path(run_dir) / "metrics.json").read_text()).get("accuracy")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def manifest_size(run_dir: Path | str) -> int:
    """How many labeled images a run trained and validated on (the rows of its ``manifest.csv``)."""
    try:
        with open(Path(run_dir) / "manifest.csv", newline="", encoding="utf-8") as handle:
            return sum(1 for _ in csv.DictReader(handle))
    except OSError:
        return 0


def metric_change(old_run: Path | str, new_run: Path | str) -> str:
    """``Validation accuracy 0.86 → 0.91 (+12 labels)`` from the two runs' metrics and manifests."""
    before, after = validation_accuracy(old_run), validation_accuracy(new_run)
    added = manifest_size(new_run) - manifest_size(old_run)

    def number(value: float | None) -> str:
        return "?" if value is None else f"{value:.2f}"

    if added > 0:
        images = f"+{added} label" + ("s" if added > 1 else "")
    elif added < 0:  # images left out (X) or unlabeled since
        images = f"{-added} image{'s' if added < -1 else ''} fewer"
    else:
        images = "as many images"
    return f"Validation accuracy {number(before)} → {number(after)} ({images})"
