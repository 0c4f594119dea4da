"""What the gallery shows and in what order: filters, sort orders and their keys (no Qt).

The prediction browser's filters (by predicted class, correct / incorrect, excluded, a confusion-matrix
cell) and orders (confidence, loss, margin, review) are decided here from the newest checked run's
predictions (:func:`passes`, :func:`row_key`; the order itself is core/review.py's ``review_key``);
:class:`~labeltune.ui.gallery_model.GalleryModel` keeps the rows.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from labeltune.core.review import review_key

Row = tuple[int, str, str | None]  # sample id, absolute path, label
Prediction = tuple[str, float, float | None]  # label, confidence, ood_score

FilterKind = Literal[
    "all",
    "unlabeled",
    "class",
    "split",
    "unfamiliar",
    "predicted",
    "correct",
    "incorrect",
    "excluded",
    "cell",
    "map",
    "next",
    "label_errors",
    "duplicates",
]
SortOrder = Literal["name", "folder", "added", "confidence", "loss", "margin", "review"]
#: The gallery's orders, as offered to the user.
SORT_ORDERS: dict[str, str] = {
    "name": "Name",
    "folder": "Folder",
    "added": "Order added",
    "confidence": "Confidence (low first)",
    "loss": "Loss (high first)",
    "margin": "Margin (low first)",
    "review": "Review predictions: most confident first",
}
#: The orders that follow the newest checked run's predictions (core/review.py ``review_key``).
PREDICTION_ORDERS = frozenset({"confidence", "loss", "margin", "review"})
#: Filters that keep the files of a set of paths (a run's split; the items behind a confusion-matrix cell;
#: the points selected on the data map; the label-next queue, shown in its own order: ui/label_next.py).
PATH_FILTERS = frozenset({"split", "cell", "map", "next"})
#: Filters that keep what a run's stored audit found, in its order (core/audit_store.py, ADR 33).
AUDIT_FILTERS = frozenset({"label_errors", "duplicates"})


@dataclass(frozen=True)
class GalleryFilter:
    """Which samples the gallery shows: all, unlabeled, one class (``value``), a split, or unfamiliar ones.

    ``unfamiliar``: the images the newest checked run finds unlike its training images; ``predicted``: those
    it predicts as class ``value``; ``correct`` / ``incorrect``: labeled images whose label it agrees /
    disagrees with; ``excluded``: images left out of training; ``cell``: the validation images behind a
    confusion-matrix cell (``value`` names it, the paths come with the filter); ``map``: the images
    selected on the data map (``value`` says how many; the paths come with the filter); ``next``: the
    label-next queue (its paths come with the filter, in the queue's order, which the gallery keeps);
    ``label_errors`` / ``duplicates``: what the newest stored audit found (likely label errors not yet
    fixed; near-duplicates).
    """

    kind: FilterKind = "all"
    value: str | None = None  # the class name, "train" / "val", or the cell "true → predicted"

    def matches(self, label: str | None) -> bool:
        """Whether a sample with ``label`` belongs here (split membership is decided by path)."""
        if self.kind == "unlabeled":
            return label is None
        if self.kind == "class":
            return label == self.value
        return True


_DIGITS = re.compile(r"\d+")


def _number(match: re.Match[str]) -> str:
    """A digit run as text that sorts as its number, after any text at the same place (see below)."""
    digits = match.group().lstrip("0") or "0"
    run = "\uffff" + chr(0x100 + len(digits)) + digits  # more digits sort later; then digit by digit
    return run if match.start() == 0 else "\x00" + run  # "\x00": the text before it ends here


def natural_key(text: str) -> str:
    r"""Sort key that puts ``img2`` before ``img10`` (digit runs compare as numbers), case-insensitive.

    One string rather than a tuple of parts, so that sorting 100 000 names is fast (docs/adr/0044):
    a text run ends with ``\x00`` (a shorter text sorts first), a number begins with ``\uffff`` (text
    sorts before a number at the same place) and its length (a longer number is larger).
    """
    return _DIGITS.sub(_number, text.casefold()) + "\x00"


@functools.lru_cache(maxsize=4096)
def _folder_key(folder: str) -> str:
    """:func:`natural_key` of a folder: 100 000 images lie in a few folders, each keyed once."""
    return natural_key(folder)


def order_key(row: Row, order: SortOrder) -> tuple[Any, ...]:
    """Where ``row`` goes in ``order`` (ties, and "added", by sample id)."""
    sample_id, path = row[0], row[1]
    if order == "added":
        return (sample_id,)
    folder, name = os.path.split(path)
    if order == "folder":
        return (_folder_key(folder), natural_key(name), sample_id)
    return (natural_key(name), _folder_key(folder), sample_id)


def read_split_paths(run_dir: Path, split: str) -> frozenset[str]:
    """Files of a run's ``manifest.csv`` in ``split`` ("train" or "val"), as normalised path strings.

    Plain Python (reads a file): call it in a worker thread.
    """
    with open(run_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
        return frozenset(
            os.path.normpath(row["file"]) for row in csv.DictReader(handle) if row.get("split") == split
        )


def passes(
    gallery_filter: GalleryFilter,
    row: Row,
    predictions: Mapping[int, Prediction],
    excluded: Collection[int],
) -> bool:
    """Whether a row passes a filter that asks the predictions or the excluded flag (True for others)."""
    kind, sample_id, label = gallery_filter.kind, row[0], row[2]
    if kind == "excluded":
        return sample_id in excluded
    if kind not in ("unfamiliar", "predicted", "correct", "incorrect"):
        return True
    predicted = predictions.get(sample_id)
    if predicted is None:
        return False
    if kind == "unfamiliar":
        return predicted[2] is not None and predicted[2] > 1.0
    if kind == "predicted":
        return predicted[0] == gallery_filter.value
    if kind == "correct":
        return label is not None and predicted[0] == label
    return label is not None and predicted[0] != label


def row_key(order: SortOrder, row: Row, topk: Sequence[tuple[str, float]] | None) -> tuple[Any, ...]:
    """Where ``row`` goes in ``order``; the prediction orders break ties by file name."""
    if order in PREDICTION_ORDERS:
        return (*review_key(order, row[2], topk), *order_key(row, "name"))
    return order_key(row, order)
