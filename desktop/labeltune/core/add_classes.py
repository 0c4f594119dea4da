"""Add classes to a trained image run without forgetting the old ones (``train DATA --init RUN``).

The new run starts from RUN's model and trains its head on cached pooled features: the head gains one
row per new class (the old rows copied); a *features* run's features are the pretrained network's (already
cached by RUN), a *partial* or *full* run's those of its fine-tuned network, and of an augmented view of
each image, extracted once (ADR 0064: retraining a partial run's top cost as much as a run from scratch;
without the augmented view the old classes lost items to the new). Every item takes part: the new
classes' and, as rehearsal, the old classes' (RUN's items that DATA no longer holds are read back from
RUN's manifest, their features from the cache). RUN's validation items stay on the validation side, so
the old classes' accuracy before and after is measured on the same items. See
docs/adr/0053-add-classes-frozen-network-rehearsal.md.

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
    import threading

    import torch
    from torch import nn

    from labeltune.core.train_inputs import FitInputs

#: Settings a run started with ``--init`` takes from its run: an explicit different value is refused.
INHERITED = ("backbone", "strategy", "input_size", "head_hidden")
#: The shifts tried on the new classes' logits (docs/adr/0061), and the held-out folds that choose one.
SHIFTS = tuple(0.25 * k for k in range(33))
SHIFT_FOLDS = 3
#: The fraction of the held-out old items, at most, that the new classes may take from the old ones.
OLD_TOLERANCE = 0.01
#: Distillation on RUN's old-class outputs while the head learns the new classes (docs/adr/0061).
KD_TEMPERATURE = 2.0
KD_WEIGHT = 1.0


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

    The weights id names the frozen part's outputs in the cache: a *features* run's network is the
    pretrained one (its outputs already cached); a *partial* or *full* run's fine-tuned network is keyed by
    its file's hash (docs/adr/0064).
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
    if stored["train"]["strategy"] == "features":  # the network is as pretrained
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
    shift: float | None = None,
) -> RunResult:
    """Add the old/new classes' accuracy and the time against RUN to ``result`` and its ``metrics.json``.

    ``shift``: what was subtracted from the new classes' logits (:func:`choose_new_class_shift`).
    """
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
        "new_classes_logit_shift": shift,
    }
    result = replace(result, strategy=config.strategy)
    result.metrics["added_classes"] = added
    path = Path(result.run_dir) / METRICS_FILE
    metrics = {**result.metrics, "summary": result.to_json()}
    from labeltune.core.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(metrics, indent=2))
    return result


def last_linear(head: nn.Module) -> nn.Linear:
    """The head's output layer (a linear head, or the last layer of the one-hidden-layer MLP)."""
    from torch import nn

    layers = [m for m in head.modules() if isinstance(m, nn.Linear)]
    return layers[-1]


def with_old_outputs(head: nn.Module, x: torch.Tensor, y: torch.Tensor, n_old: int) -> torch.Tensor:
    """Targets ``(N, n_old + 1)``: RUN's head's logits on ``x`` (``head`` before training), then the label."""
    import torch

    was_training = head.training
    head.eval()
    try:
        with torch.inference_mode():
            device = next(head.parameters()).device
            old = torch.cat(
                [head(x[i : i + 4096].float().to(device))[:, :n_old].cpu() for i in range(0, len(x), 4096)]
            )
    finally:
        head.train(was_training)
    return torch.cat([old, y.float()[:, None]], 1)


def old_outputs_loss(
    logits: torch.Tensor, targets: torch.Tensor, loss_fn: Any, temperature: float = KD_TEMPERATURE
) -> torch.Tensor:
    """Cross-entropy on the labels + T² × KL from RUN's old-class distribution to the new head's (LwF)."""
    import torch.nn.functional as F

    old, hard = targets[:, :-1].float(), targets[:, -1].long()
    t = temperature
    kd = F.kl_div(
        F.log_softmax(logits[:, : old.shape[1]].float() / t, 1), F.softmax(old / t, 1), reduction="batchmean"
    )
    return loss_fn(logits, hard) + KD_WEIGHT * kd * t * t


def old_outputs_task(loss_fn: Any, val: Any, num_classes: int) -> Any:
    """The trainer's task for adding classes: :func:`old_outputs_loss` on ``(N, n_old + 1)`` targets."""
    from labeltune.core.image_task import ClassificationTask, StepOutput

    class OldOutputsKept(ClassificationTask):
        """Cross-entropy on the labels plus distillation on RUN's old-class outputs (ADR 0061)."""

        def loss(self, model: nn.Module, batch: Any) -> StepOutput:
            """The blended loss; correct = arg-max hits on the labels."""
            x, y = batch
            logits = model(x)
            hard = y[:, -1].long()
            correct = int((logits.detach().argmax(1) == hard).sum())
            return StepOutput(old_outputs_loss(logits, y, self.loss_fn), correct, len(hard))

    return OldOutputsKept(loss_fn, val, num_classes)


def fit_head_copy(
    template: nn.Module,
    x: torch.Tensor,
    y: np.ndarray,
    n_old: int,
    config: TrainConfig,
    stop_event: threading.Event | None = None,
) -> nn.Module:
    """A copy of ``template`` fitted on ``(x, y)`` as the run's head is (a fold's fit, on the CPU)."""
    import copy

    import torch

    from labeltune.core.head_optim import HeadAdamW, HeadCosineSchedule
    from labeltune.core.image_task import class_weights
    from labeltune.core.progress import check_stop

    head = copy.deepcopy(template).cpu().float()
    n = last_linear(head).out_features
    targets = with_old_outputs(head, x, torch.from_numpy(np.asarray(y, dtype=np.int64)), n_old)
    head.train()
    # The head's own AdamW: torch.optim's first use imports torch._dynamo (5 s of a 40 s fish run, ADR 0059).
    optimizer = HeadAdamW(
        [{"params": head.parameters()}], lr=config.resolved_lr(), weight_decay=config.weight_decay
    )
    scheduler = HeadCosineSchedule(optimizer, T_max=config.epochs)
    weight = torch.tensor(class_weights(y, n), dtype=torch.float32) if config.class_balanced else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        check_stop(stop_event)
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = old_outputs_loss(head(x[batch].float()), targets[batch], loss_fn)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return head.eval()


def choose_new_class_shift(
    template: nn.Module,
    inputs: FitInputs,
    n_old: int,
    config: TrainConfig,
    stop_event: threading.Event | None = None,
) -> float:
    """The shift of the new classes' logits that keeps the old classes, chosen on held-out training items.

    The training items are split by group (fish track) into folds; a copy of ``template`` is fitted on
    the other folds (:func:`fit_head_copy`) and its logits on each fold tell, for every shift in
    :data:`SHIFTS`, how many old items stay right (the best old class wins over every new one) and how
    many new items stay right. Chosen: among the shifts that lose at most :data:`OLD_TOLERANCE` of the
    old items right without the new classes, the one with the most new items right (the smallest on
    ties). The validation items play no part.
    """
    import torch

    data = inputs.data
    train = np.flatnonzero(~data.is_val)
    labels = data.labels[train]
    x = inputs.x_all[torch.from_numpy(train)].float()
    groups = [data.groups[i] if data.groups is not None else None for i in train]
    keys = [g if g is not None else f"item{i}" for g, i in zip(groups, train, strict=True)]
    unique = sorted(set(keys))
    np.random.default_rng(config.seed).shuffle(unique)
    fold_of = {key: k % SHIFT_FOLDS for k, key in enumerate(unique)}
    folds = np.array([fold_of[key] for key in keys])
    shifts = np.asarray(SHIFTS)
    old_kept = np.zeros(len(shifts))
    new_right = np.zeros(len(shifts))
    old_right = 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a linear head's steps are tiny: more threads only wait on each other
    try:
        fitted = [
            fit_head_copy(
                template, x[torch.from_numpy(folds != k)], labels[folds != k], n_old, config, stop_event
            )
            if (folds == k).any() and (labels[folds != k] >= n_old).any()
            else None
            for k in range(SHIFT_FOLDS)
        ]
    finally:
        torch.set_num_threads(threads)
    for fold, head in enumerate(fitted):
        held = folds == fold
        if head is None:
            continue
        with torch.inference_mode():
            logits = head(x[torch.from_numpy(held)].float()).numpy()
        y = labels[held]
        old, new = logits[:, :n_old], logits[:, n_old:]
        is_old = y < n_old
        right = old[is_old].argmax(1) == y[is_old]
        margin = old[is_old].max(1) - new[is_old].max(1)  # an old item stays old while margin > -shift
        gap = new[~is_old].max(1) - old[~is_old].max(1)  # a new item stays new while gap > shift
        hit = new[~is_old].argmax(1) + n_old == y[~is_old]
        old_right += int(right.sum())
        old_kept += (right[None, :] & (margin[None, :] > -shifts[:, None])).sum(1)
        new_right += (hit[None, :] & (gap[None, :] > shifts[:, None])).sum(1)
    if old_right == 0:
        return 0.0
    allowed = np.flatnonzero(old_kept >= old_right * (1 - OLD_TOLERANCE))
    if len(allowed) == 0:
        return float(shifts[-1])
    return float(shifts[allowed[np.argmax(new_right[allowed])]])


def shift_new_classes(head: nn.Module, n_old: int, shift: float, val_logits: torch.Tensor | None) -> None:
    """Subtract ``shift`` from the new classes' outputs: in ``head``'s bias and in ``val_logits``."""
    import torch

    with torch.no_grad():
        last_linear(head).bias[n_old:] -= shift
        if val_logits is not None:
            val_logits[:, n_old:] -= shift
