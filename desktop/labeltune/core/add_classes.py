"""Add classes to a trained image run without forgetting the old ones (``train DATA --init RUN``).

The new run starts from RUN's model and trains what RUN's strategy trained, on cached outputs of the
frozen part: the head gains one row per new class (the old rows copied); a *features* run trains the head
on the pretrained pooled features, a *partial* run its top and head on the pretrained trunk's outputs (both
already cached by RUN), a *full* run the head on its fine-tuned network's pooled features. Every item
takes part: the new classes' and, as rehearsal, the old classes' (RUN's items that DATA no longer holds are
read back from RUN's manifest, their features from the cache). RUN's
validation items stay on the validation side, so the old classes' accuracy before and after is measured
on the same items. See docs/adr/0053-add-classes-frozen-network-rehearsal.md.

:func:`merge_with_runs` (the split and the class order) also serves distillation (core/distill.py).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labeltune.core.errors import UnusableInputError
from labeltune.core.model import CONFIG_FILE, MODEL_FILE, ModelConfig
from labeltune.core.run_files import METRICS_FILE, RunResult
from labeltune.core.train_config import DEFAULT_EPOCHS, TrainConfig
from labeltune.core.train_data import MANIFEST_FILE, PreparedData

if TYPE_CHECKING:
    import torch
    from torch import nn

#: Settings a run started with ``--init`` takes from its run: an explicit different value is refused.
INHERITED = ("backbone", "strategy", "input_size", "head_hidden")


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """RUN's ``config.json``; a folder that is not a finished image run is refused in one line."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file() or not (run_dir / MODEL_FILE).is_file():
        raise UnusableInputError(f"{run_dir} is not a finished run (no {CONFIG_FILE} / {MODEL_FILE})")
    try:
        stored: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnusableInputError(f"cannot read {path}: {exc}") from None
    if "train" not in stored or "backbone" not in (stored.get("model") or {}):
        raise UnusableInputError(f"{run_dir} is not an image run (its config.json has no image model)")
    return stored


def inherited_config(run_dir: Path, explicit: Mapping[str, Any], **settings: Any) -> TrainConfig:
    """The new run's settings: RUN's backbone, strategy, input size and head; the rest from ``settings``.

    ``explicit`` holds the options the user gave (``None``: not given); one that differs from RUN's is
    refused, since the new run's network *is* RUN's.
    """
    stored = read_run_config(run_dir)
    train, model = stored["train"], stored["model"]
    have = {
        "backbone": model["backbone"],
        "strategy": train["strategy"],
        "input_size": model["input_size"],
        "head_hidden": model.get("head_hidden", 0),
    }
    for key in INHERITED:
        given = explicit.get(key)
        if given is not None and given != have[key]:
            option = "--" + key.replace("_", "-")
            raise UnusableInputError(
                f"{option} {given} conflicts with the run given to --init ({run_dir}: {have[key]}); a run "
                "that adds classes keeps its run's backbone, strategy and input size: leave the option out"
            )
    if not settings.get("epochs"):
        settings["epochs"] = DEFAULT_EPOCHS["features"]  # only the head trains, as in a features run
    return TrainConfig(
        backbone=have["backbone"],
        strategy=have["strategy"],
        weights=train.get("weights", "imagenet"),
        input_size=have["input_size"],
        head_hidden=have["head_hidden"],
        freeze_batchnorm=train.get("freeze_batchnorm"),
        init=str(Path(run_dir).resolve()),
        **settings,
    )


def _read_manifest_rows(run_dir: Path) -> list[dict[str, str]]:
    try:
        with open(Path(run_dir) / MANIFEST_FILE, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except OSError as exc:
        raise UnusableInputError(f"cannot read {Path(run_dir) / MANIFEST_FILE}: {exc.strerror}") from None


def merge_with_runs(data: PreparedData, run_dirs: Sequence[Path], *, new_classes: bool) -> PreparedData:
    """``data`` ordered and split as the runs were: their classes first, their validation items kept.

    An item (by content hash) that a run validated on stays on the validation side; one a run trained on
    stays on the training side; with groups, a new item of a validation group joins the validation side.
    The runs' items that ``data`` lacks are added (rehearsal: their features come from the cache).
    ``new_classes=False`` (distillation): items of classes the runs do not know are left out, each listed
    with the reason among the skipped files.
    """
    from labeltune.core.grouping import grouping_record

    runs = [(Path(r), read_run_config(Path(r))["model"]["classes"]) for r in run_dirs]
    old = list(runs[0][1])
    for run, classes in runs[1:]:
        if set(classes) != set(old):
            raise UnusableInputError(
                f"{run} knows the classes {', '.join(classes)}, {runs[0][0]} {', '.join(old)}: "
                "the runs must know the same classes"
            )
    extra = [c for c in data.classes if c not in old]
    if extra and not new_classes:
        data = _without_classes(data, extra, "the teachers do not know its class")
        extra = []
    classes = old + extra
    val_hashes: set[str] = set()
    rows: dict[str, dict[str, str]] = {}
    for run, _ in runs:
        for row in _read_manifest_rows(run):
            rows.setdefault(row["sha256"], row)
            if row["split"] == "val":
                val_hashes.add(row["sha256"])
    paths, hashes = list(data.paths), list(data.hashes)
    labels = [classes.index(data.classes[int(label)]) for label in data.labels]
    is_val = [bool(v) for v in data.is_val]
    groups: list[str | None] = list(data.groups) if data.groups is not None else [None] * len(paths)
    known = [h in rows for h in hashes]
    for i, digest in enumerate(hashes):
        if known[i]:
            is_val[i] = digest in val_hashes
    val_groups = {g for g, k, v in zip(groups, known, is_val, strict=True) if k and v and g is not None}
    train_groups = {g for g, k, v in zip(groups, known, is_val, strict=True) if k and not v and g is not None}
    for i, group in enumerate(groups):
        if not known[i] and group is not None and (group in val_groups or group in train_groups):
            is_val[i] = group in val_groups
    present = set(hashes)
    for digest, row in rows.items():  # rehearsal: the runs' items that DATA no longer holds
        if digest not in present and row["label"] in classes:
            paths.append(Path(row["file"]))
            hashes.append(digest)
            labels.append(classes.index(row["label"]))
            is_val.append(digest in val_hashes)
            groups.append(None)
    spec = (data.grouping or {}).get("spec")
    return PreparedData(
        paths,
        hashes,
        np.asarray(labels, dtype=np.int64),
        np.asarray(is_val, dtype=bool),
        classes,
        list(data.skipped),
        groups if data.groups is not None else None,
        grouping_record(spec, groups, is_val) if data.grouping is not None else None,
    )


def _without_classes(data: PreparedData, classes: Sequence[str], reason: str) -> PreparedData:
    """``data`` without the items labeled ``classes``; they join the skipped files with ``reason``."""
    from labeltune.core.train_data import drop_failed

    gone = {data.classes.index(c) for c in classes}
    failed = {i: f"{reason} ({data.classes[int(y)]})" for i, y in enumerate(data.labels) if int(y) in gone}
    ok = [i for i in range(len(data.paths)) if i not in failed]
    return drop_failed(data, ok, failed)


def build_from_run(run_dir: Path, classes: list[str]) -> tuple[nn.Module, ModelConfig, str]:
    """RUN's model with its head extended to ``classes`` (RUN's first, their rows copied), and a weights id.

    The weights id names the frozen part's outputs in the cache: a *features* or *partial* run's trunk is
    the pretrained one (its outputs already cached); a *full* run's network is keyed by its file's hash.
    """
    import torch

    from labeltune.core.backbones import get_spec
    from labeltune.core.model import load_model, make_head

    stored = read_run_config(run_dir)
    model, old = load_model(run_dir)
    n_old = len(old.classes)
    if list(classes[:n_old]) != list(old.classes):
        raise UnusableInputError(f"the classes of {run_dir} must come first, in its order")
    config = replace(old, classes=list(classes), temperature=1.0, extra=dict(old.extra))
    head = make_head(get_spec(old.backbone).feature_dim, len(classes), old.head_hidden, old.head_dropout)
    fresh = head.state_dict()
    with torch.no_grad():
        for key, value in model.head.state_dict().items():  # type: ignore[union-attr]
            if fresh[key].shape == value.shape:
                fresh[key].copy_(value)
            else:  # the last layer: the old classes' rows, the new rows as initialised
                fresh[key][:n_old].copy_(value)
    head.load_state_dict(fresh)
    model.head = head  # type: ignore[union-attr]
    if stored["train"]["strategy"] in ("features", "partial"):  # the trunk is as pretrained
        weights_id = str(stored["weights_id"])
    else:
        digest = hashlib.sha256((Path(run_dir) / MODEL_FILE).read_bytes()).hexdigest()
        weights_id = f"run-{digest[:16]}"
    return model, config, weights_id


def head_accuracy(
    head: nn.Module, x: torch.Tensor, y: np.ndarray, classes: Sequence[int], columns: int
) -> float | None:
    """Accuracy of ``head`` (its first ``columns`` outputs) on the items of ``x`` labeled in ``classes``."""
    import torch

    mask = np.isin(y, list(classes))
    if not mask.any():
        return None
    was_training = head.training
    head.eval()
    try:
        with torch.inference_mode():
            logits = head(x[torch.from_numpy(mask)].float().to(next(head.parameters()).device))
    finally:
        head.train(was_training)
    hits = logits[:, :columns].argmax(1).cpu().numpy() == y[mask]
    return float(hits.mean())


def record(
    result: RunResult,
    config: TrainConfig,
    n_old: int,
    before: float | None,
    head: nn.Module,
    x_val: torch.Tensor,
    y_val: np.ndarray,
) -> RunResult:
    """Add the old/new classes' accuracy and the time against RUN to ``result`` and its ``metrics.json``."""
    assert config.init is not None
    classes = result.classes
    n = len(classes)
    old_run = Path(config.init)
    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads((old_run / METRICS_FILE).read_text()).get("summary") or {}
    old_seconds = previous.get("seconds_total")
    added = {
        "init_run": str(old_run),
        "old_classes": classes[:n_old],
        "new_classes": classes[n_old:],
        "old_classes_accuracy_before": before,
        "old_classes_accuracy_after": head_accuracy(head, x_val, y_val, range(n_old), n),
        "new_classes_accuracy": head_accuracy(head, x_val, y_val, range(n_old, n), n),
        "old_val_items": int(np.isin(y_val, range(n_old)).sum()),
        "new_val_items": int(np.isin(y_val, range(n_old, n)).sum()),
        "init_run_seconds_total": old_seconds,
    }
    result = replace(result, strategy=config.strategy)
    result.metrics["added_classes"] = added
    path = Path(result.run_dir) / METRICS_FILE
    metrics = {**result.metrics, "summary": result.to_json()}
    from labeltune.core.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(metrics, indent=2))
    return result
