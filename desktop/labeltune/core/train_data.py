"""The labeled files of an image run: hashes, class indices, the train/validation split and ``manifest.csv``.

:func:`prepare_data` is the first step of a run; :func:`read_manifest` gives a stopped run its files back
(resume); :func:`drop_failed` leaves out the files that could not be decoded.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labeltune.core.atomic import write_text_atomic
from labeltune.core.datasets import Dataset, SkippedFile
from labeltune.core.errors import UnusableInputError
from labeltune.core.features import default_cache_root
from labeltune.core.file_problems import os_error_reason
from labeltune.core.grouping import GroupingSpec, group_ids, grouping_record
from labeltune.core.hashing import HashCache
from labeltune.core.progress import Progress, ProgressCallback, no_progress
from labeltune.core.splits import fold_indices, split_indices
from labeltune.core.train_config import TrainConfig

MANIFEST_FILE = "manifest.csv"


@dataclass
class PreparedData:
    """The labeled files of a run with hashes, class indices and split."""

    paths: list[Path]
    hashes: list[str]
    labels: np.ndarray  # int64 class index
    is_val: np.ndarray  # bool
    classes: list[str]
    skipped: list[SkippedFile]
    #: The group of each file (``None``: its own), where the split was grouped; ``None`` when unknown.
    groups: list[str | None] | None = None
    #: How the split was grouped (core/grouping.py: grouping_record()); ``None`` when not known.
    grouping: dict[str, Any] | None = None


def prepare_data(
    data: Dataset,
    config: TrainConfig,
    progress: ProgressCallback = no_progress,
    cache_root: Path | None = None,
) -> PreparedData:
    """Hash the labeled files, index classes, and split train/validation (stratified, maybe grouped)."""
    samples = data.labeled
    classes = data.classes
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        needs = f"training needs at least 2 classes with labeled images in {data.root} (found {found})"
        how = {
            "folder": "put each class's images in its own sub-folder",
            "csv": "give the images of at least 2 classes in the CSV's label column",
        }.get(data.kind, "add a second class and label some of its images")
        raise UnusableInputError(
            f"{needs}; add a second class and label some of its images", cli=f"{needs}; {how}"
        )
    skipped = list(data.skipped)
    paths: list[Path] = []
    hashes: list[str] = []
    labels: list[int] = []
    groups: list[str | None] = []
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    with HashCache(root / "hashes.sqlite") as hash_cache:
        for i, sample in enumerate(samples):
            try:
                hashes.append(hash_cache.sha256(sample.path))
            except OSError as exc:
                skipped.append(SkippedFile(str(sample.path), os_error_reason(exc)))
                continue
            paths.append(sample.path)
            labels.append(classes.index(sample.label))  # type: ignore[arg-type]
            groups.append(sample.group)
            if i % 256 == 0:
                progress(Progress("hash", i, len(samples), "reading files"))
    spec = GroupingSpec.parse(config.group_by)
    groups = group_ids(spec, paths, groups, data.root if data.kind == "csv" else None)
    use_groups = any(g is not None for g in groups)
    label_names = [classes[i] for i in labels]
    if config.folds:
        _, val_idx = fold_indices(
            label_names, config.folds, config.fold, config.seed, groups if use_groups else None, keys=hashes
        )
    else:
        _, val_idx = split_indices(
            label_names, config.val_fraction, config.seed, groups if use_groups else None, keys=hashes
        )
    is_val = np.zeros(len(paths), dtype=bool)
    is_val[list(val_idx)] = True
    if use_groups and spec.kind != "auto" and not is_val.any() and (config.folds or config.val_fraction):
        raise UnusableInputError(
            f"grouping by {spec.describe()} leaves no image for validation: each class is a single group; "
            "choose another grouping"
        )
    return PreparedData(
        paths,
        hashes,
        np.asarray(labels, dtype=np.int64),
        is_val,
        classes,
        skipped,
        list(groups) if use_groups else None,
        grouping_record(spec, groups if use_groups else [None] * len(paths), is_val.tolist()),
    )


def write_manifest(run_dir: Path, data: PreparedData) -> None:
    """Write ``manifest.csv``: file, sha256, label, split."""
    handle = io.StringIO()
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["file", "sha256", "label", "split"])
    for path, digest, label, val in zip(data.paths, data.hashes, data.labels, data.is_val, strict=True):
        writer.writerow([str(path), digest, data.classes[int(label)], "val" if val else "train"])
    write_text_atomic(run_dir / MANIFEST_FILE, handle.getvalue())  # resume reads it: whole or none


def read_manifest(run_dir: Path, classes: list[str]) -> PreparedData:
    """Read a run's ``manifest.csv`` back (used to resume)."""
    paths, hashes, labels, is_val = [], [], [], []
    with open(run_dir / MANIFEST_FILE, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            paths.append(Path(row["file"]))
            hashes.append(row["sha256"])
            labels.append(classes.index(row["label"]))
            is_val.append(row["split"] == "val")
    return PreparedData(paths, hashes, np.asarray(labels, np.int64), np.asarray(is_val, bool), classes, [])


def drop_failed(data: PreparedData, ok: Sequence[int], failed: dict[int, str]) -> PreparedData:
    """``data`` without the files that failed (``failed``: index -> reason, added to the skipped ones)."""
    if not failed:
        return data
    keep = np.asarray(ok, dtype=np.int64)
    skipped = data.skipped + [SkippedFile(str(data.paths[i]), reason) for i, reason in sorted(failed.items())]
    grouping = data.grouping
    if grouping is not None:  # the record counts the images that were actually used
        groups = [data.groups[i] for i in keep] if data.groups is not None else [None] * len(keep)
        grouping = grouping_record(grouping.get("spec"), groups, data.is_val[keep].tolist())
    return PreparedData(
        [data.paths[i] for i in keep],
        [data.hashes[i] for i in keep],
        data.labels[keep],
        data.is_val[keep],
        data.classes,
        skipped,
        [data.groups[i] for i in keep] if data.groups is not None else None,
        grouping,
    )
