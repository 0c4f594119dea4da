"""``labeltune audit``: a run's pooled features of labeled data, judged by core/audit.py and core/oof.py.

One thin adapter per domain turns a run and its labeled data into :class:`AuditInputs` (paths, pooled
features, labels, the run's split and groups); :func:`audit` is the same for both. Image features come
from the feature cache under the run's key (computed once with the run's own frozen network where the
cache lacks them; runs whose backbone was trained get a key of their own); XRD features are the
network's pooled embedding (its last hidden layer) of the measured patterns.
"""

from __future__ import annotations

import csv
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labeltune.core.audit import label_issues, multilabel_issues, near_duplicates
from labeltune.core.datasets import Dataset, SkippedFile
from labeltune.core.errors import UnusableInputError
from labeltune.core.oof import DEFAULT_FOLDS, out_of_fold_probs
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress


@dataclass
class AuditInputs:
    """One domain's labeled items, ready for :func:`audit`."""

    paths: list[Path]
    features: np.ndarray  # (n, d) pooled features
    labels: np.ndarray  # class indices (n,), or a 0/1 matrix (n, k) for phase sets
    classes: list[str]
    multilabel: bool = False
    split: list[str] | None = None  # "train" / "val" / "" (not in the run) per item
    groups: list[str | None] | None = None
    skipped: list[SkippedFile] = field(default_factory=list)


@dataclass
class AuditReport:
    """What ``labeltune audit --json`` prints (plus the skipped files)."""

    label_issues: list[dict[str, Any]]
    duplicates: list[dict[str, Any]]
    n_items: int
    skipped: list[SkippedFile] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON object: ``label_issues`` and ``duplicates``, most likely first."""
        return {"label_issues": self.label_issues, "duplicates": self.duplicates}


def _label_text(inputs: AuditInputs, value: Any) -> str:
    if inputs.multilabel:
        return ";".join(inputs.classes[j] for j in value)
    return inputs.classes[int(value)]


def audit(inputs: AuditInputs, folds: int = DEFAULT_FOLDS, threshold: float | None = None) -> AuditReport:
    """Likely label errors (out-of-fold confident learning) and near-duplicate groups of ``inputs``."""
    from labeltune.core.audit import DUPLICATE_THRESHOLD

    probs = out_of_fold_probs(
        inputs.features, inputs.labels, len(inputs.classes), folds, inputs.groups, inputs.multilabel
    )
    issues: list[dict[str, Any]] = []
    if inputs.multilabel:
        for index, suggested, score in multilabel_issues(probs, inputs.labels):
            own = [int(j) for j in np.flatnonzero(inputs.labels[index])]
            issues.append(_issue(inputs, index, own, suggested, score))
    else:
        for issue in label_issues(probs, inputs.labels):
            issues.append(_issue(inputs, issue.index, issue.label, issue.suggested, issue.score))
    names: list[Any] = (
        [frozenset(np.flatnonzero(row).tolist()) for row in inputs.labels]
        if inputs.multilabel
        else [int(v) for v in inputs.labels]
    )
    groups = near_duplicates(
        inputs.features, names, inputs.split, DUPLICATE_THRESHOLD if threshold is None else threshold
    )
    duplicates = [
        {
            "paths": [str(inputs.paths[i]) for i in g.members],
            "similarity": round(g.similarity, 4),
            "kind": g.kind,
        }
        for g in groups
    ]
    return AuditReport(issues, duplicates, len(inputs.paths), list(inputs.skipped))


def _issue(inputs: AuditInputs, index: int, label: Any, suggested: Any, score: float) -> dict[str, Any]:
    return {
        "path": str(inputs.paths[index]),
        "label": _label_text(inputs, label),
        "suggested": _label_text(inputs, suggested),
        "score": round(score, 4),
    }


# -- images -------------------------------------------------------------------------------------------
def image_inputs(
    run_dir: Path | str,
    data: Dataset,
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> AuditInputs:
    """Pooled features of ``data``'s labeled images under an image run, with the run's split and groups."""
    from labeltune.core.grouping import GroupingSpec, group_ids
    from labeltune.core.inference import labeled_of_classes
    from labeltune.core.model import load_model

    run_dir = Path(run_dir)
    loaded = load_model(run_dir, "cpu")  # refuses unfinished, damaged or newer runs
    classes = list(loaded[1].classes)
    samples, skipped = labeled_of_classes(data, classes)
    paths = [s.path for s in samples]
    run_features = pooled_run_features(run_dir, paths, device, progress, stop_event, loaded)
    extracted, hashes, stored = run_features.extracted, run_features.hashes, run_features.config
    train = stored.get("train") or {}
    skipped += [SkippedFile(str(samples[i].path), why) for i, why in sorted(extracted.failed.items())]
    kept = [samples[i] for i in extracted.ok]
    split_of = _manifest_split(run_dir)
    split = [split_of.get(hashes[i], "") for i in extracted.ok]
    groups = None
    if stored.get("grouping"):
        spec = GroupingSpec.parse(train.get("group_by"))
        source = data.root if data.kind == "csv" else None
        groups = group_ids(spec, [s.path for s in kept], [s.group for s in kept], source)
    return AuditInputs(
        [s.path for s in kept],
        extracted.features.astype(np.float32),
        np.asarray([classes.index(str(s.label)) for s in kept], dtype=np.int64),
        classes,
        split=split,
        groups=groups,
        skipped=skipped,
    )


@dataclass
class RunFeatures:
    """An image run's pooled features of some files (from the cache, computed where it lacks them)."""

    extracted: Any  # core.features.ExtractionResult: rows in input order, ``ok`` and ``failed`` indices
    hashes: list[str]  # content hash of every input file
    config: dict[str, Any]  # the run's config.json
    model: Any  # the run's network (its ``head`` reads the features), on the CPU
    classes: list[str]  # the run's classes, in the head's order


def pooled_run_features(
    run_dir: Path | str,
    paths: list[Path],
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
    loaded: tuple[Any, Any] | None = None,
) -> RunFeatures:
    """The pooled features the run's head reads for ``paths``, under the run's feature-cache key.

    Computed once with the run's own frozen network where the cache lacks them; runs whose backbone was
    trained get a key of their own. Shared by ``audit`` and the data map. ``loaded``: the run's
    ``load_model(run_dir, "cpu")`` when the caller has it already.
    """
    import torch

    from labeltune.core.device import select_device
    from labeltune.core.features import FeatureCache, FeatureKey, default_cache_root, extract_features
    from labeltune.core.hashing import HashCache, file_sha256
    from labeltune.core.model import CONFIG_FILE, MODEL_FILE, load_model

    run_dir = Path(run_dir)
    model, model_config = loaded if loaded is not None else load_model(run_dir, "cpu")
    stored = json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    train = stored.get("train") or {}
    cache_root = default_cache_root()
    with HashCache(cache_root / "hashes.sqlite") as hash_cache:
        hashes = [hash_cache.sha256(p) for p in paths]
    weights_id = str(stored.get("weights_id", ""))
    if train.get("strategy", "features") != "features":  # the backbone changed: features of its own
        weights_id = f"run-{file_sha256(run_dir / MODEL_FILE)[:16]}"
    key = FeatureKey(
        model_config.backbone, weights_id, model_config.preprocessing, model_config.input_size, "pooled"
    )
    parts: list[Any] = [model.normalize, model.trunk, model.top]
    frozen = torch.nn.Sequential(*parts)
    with FeatureCache(cache_root, key) as cache:
        extracted = extract_features(
            frozen, list(paths), hashes, cache, model_config.input_size,
            select_device(device), progress=progress, stop_event=stop_event,
        )  # fmt: skip
    return RunFeatures(extracted, hashes, stored, model, list(model_config.classes))


def _manifest_split(run_dir: Path) -> dict[str, str]:
    """sha256 → "train" / "val" from the run's ``manifest.csv`` (empty when it has none)."""
    from labeltune.core.train_data import MANIFEST_FILE

    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["sha256"]: row["split"] for row in csv.DictReader(handle)}


# -- XRD ----------------------------------------------------------------------------------------------
def phase_indices(tokens: list[str] | tuple[str, ...], library: Any) -> list[int]:
    """The library phases a label's tokens stand for, as the audit reads them (a formula: its first phase).

    Raises ``FormulaError`` for a token the library does not know.
    """
    from labeltune.core.xrd.metrics import resolve_label

    return sorted({resolve_label(token, library)[0] for token in tokens})


def xrd_label_text(tokens: list[str] | tuple[str, ...], library: Any) -> str:
    """A phase-set label as the audit writes it: library names in library order, ";"-joined.

    A label with a token the library does not know is written as it is (the audit skips such patterns).
    """
    from labeltune.core.xrd.metrics import FormulaError

    try:
        return ";".join(library.names[i] for i in phase_indices(tokens, library))
    except FormulaError:
        return ";".join(tokens)


def xrd_inputs(
    run_dir: Path | str,
    folder: Path | str,
    wavelength: float | None = None,
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> AuditInputs:
    """The XRD network's pooled embedding of a labeled folder's (or project's) patterns, phase sets."""
    import torch

    from labeltune.core.errors import LabelTuneError
    from labeltune.core.xrd.inference import load_xrd_model
    from labeltune.core.xrd.measured import pattern_on_grid, read_labels_csv
    from labeltune.core.xrd.metrics import FormulaError
    from labeltune.core.xrd.model import prepare_input
    from labeltune.core.xrd.readers import read_pattern

    folder = Path(folder).expanduser()
    if not (folder / "labels.csv").is_file():
        raise UnusableInputError(f"{folder} has no labels.csv (path,phases[,fractions])")
    model = load_xrd_model(run_dir)
    library = model.library
    default = wavelength if wavelength is not None else library.wavelength
    paths: list[Path] = []
    grids: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    skipped: list[SkippedFile] = []
    labeled = [r for r in read_labels_csv(folder) if r[1]]
    for n, (path, tokens, _fractions) in enumerate(labeled):
        check_stop(stop_event)
        progress(Progress("read", n, len(labeled), "reading the patterns"))
        row = np.zeros(len(library.names), dtype=np.float32)
        try:
            row[phase_indices(tokens, library)] = 1.0
            grids.append(pattern_on_grid(read_pattern(path, default_wavelength=default), library, model.grid))
        except (LabelTuneError, FormulaError, OSError) as exc:
            skipped.append(SkippedFile(str(path), str(exc)))
            continue
        paths.append(Path(path))
        rows.append(row)
    if not paths:
        raise UnusableInputError(f"{folder}: no labeled pattern could be read")
    net = model.net.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.stack(grids).astype(np.float32))
        features = net.dense(net.trunk(prepare_input(x))).numpy()
    return AuditInputs(paths, features, np.stack(rows), list(library.names), multilabel=True, skipped=skipped)
