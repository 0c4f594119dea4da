"""A training run from start to finish: data → split → weights → (cached) features → trainer → run folder.

``train()`` and ``resume()`` are plain functions taking a progress callback and a stop event; the CLI wraps
them with a text progress bar and the GUI with a worker thread.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labeltune import __version__
from labeltune.core.backbones import DEFAULT_BACKBONE, get_spec
from labeltune.core.calibration import calibrate as calibrate_confidence
from labeltune.core.datasets import Dataset, SkippedFile, describe_skipped
from labeltune.core.errors import LabelTuneError, UnusableInputError, describe_weights_error
from labeltune.core.familiarity import fit_familiarity
from labeltune.core.features import (
    FeatureCache,
    FeatureKey,
    calibrate_batchnorm,
    default_cache_root,
    extract_features,
)
from labeltune.core.file_problems import os_error_reason
from labeltune.core.grouping import GroupingSpec, group_ids, grouping_record
from labeltune.core.hashing import HashCache
from labeltune.core.metrics import classification_metrics
from labeltune.core.model import CONFIG_FILE, MODEL_FILE, ModelConfig, build_classifier, save_model
from labeltune.core.probes import (
    CONTENT,
    PROBE_NAMES,
    probe_dims,
    probed_classifier,
    probed_frozen,
    split_probes,
)
from labeltune.core.progress import Progress, ProgressCallback, StoppedError, check_stop, no_progress
from labeltune.core.splits import fold_indices, split_indices
from labeltune.core.trainer import (
    Callback,
    EpochRecord,
    TensorBatches,
    Trainer,
    class_weights,
    predict_batches,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

STRATEGIES = ("features", "partial", "full")
#: The head's learning rate (full fine-tuning: the backbone gets ``backbone_lr_factor`` of it).
DEFAULT_LR = {"features": 1e-3, "partial": 1e-3, "full": 1e-3}
#: Epochs when none are given. A features epoch is a few milliseconds, and ten of them (30 steps on a
#: 120-image project) left the linear head short of where it converges: 0.86 vs 0.92 on the corn demo.
DEFAULT_EPOCHS = {"features": 30, "partial": 10, "full": 10}
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.csv"
#: Feature-cache stage of the probe statistics (core/probes.py): the frozen trunk's, shared by strategies.
PROBE_STAGE = "probes"


@dataclass
class TrainConfig:
    """The user's choices for one run (stored in the run's ``config.json``)."""

    backbone: str = DEFAULT_BACKBONE
    strategy: str = "features"
    weights: str = "imagenet"
    epochs: int = 0  # 0: the strategy's default (DEFAULT_EPOCHS)
    batch_size: int = 32
    lr: float | None = None  # None: the strategy's default
    backbone_lr_factor: float = 0.1  # full fine-tuning: backbone learns this much slower than the head
    #: Full fine-tuning of pretrained weights keeps BatchNorm statistics as pretrained (None: frozen
    #: then, trained from random weights); see docs/adr/0018-full-fine-tuning-frozen-batchnorm.md.
    freeze_batchnorm: bool | None = None
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    folds: int = 0  # >= 2: k-fold cross-validation, validating on fold ``fold`` (0-based) instead
    fold: int = 0
    group_by: str | None = None  # a grouping spec (core/grouping.py); None: the import's groups, if any
    seed: int = 0
    device: str = "auto"
    input_size: int | None = None  # None: the backbone's own (299 for Inception-v3, else 224)
    head_hidden: int = 0  # 0: linear head; >0: MLP with one hidden layer of this width
    augment: bool = True  # partial/full on images; features only through cached_views
    cached_views: int = 0  # augmented views per image cached for features/partial
    patience: int = 5  # early stopping after this many epochs without improvement (0: off)
    class_balanced: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        if not self.epochs:
            self.epochs = DEFAULT_EPOCHS.get(self.strategy, 10)

    def resolved_lr(self) -> float:
        """The learning rate to use."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.strategy]

    def validate(self) -> None:
        """Raise :class:`UnusableInputError` for settings that cannot work."""
        get_spec(self.backbone)
        if self.strategy not in STRATEGIES:
            raise UnusableInputError(
                f"unknown strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise UnusableInputError(
                "the number of epochs and the batch size must be at least 1",
                cli="--epochs and --batch-size must be at least 1",
            )
        if self.lr is not None and not (0 < self.lr < 10):
            raise UnusableInputError(
                f"the learning rate {self.lr} is out of range (0, 10)",
                cli=f"--lr {self.lr} is out of range (0, 10)",
            )
        if self.folds and not (2 <= self.folds <= 100 and 0 <= self.fold < self.folds):
            raise UnusableInputError(
                f"cross-validation needs 2 to 100 folds (got {self.folds}) and a validation fold among them"
            )
        if self.input_size is not None and self.input_size < 16:
            raise UnusableInputError("input size must be at least 16 px")
        GroupingSpec.parse(self.group_by)


@dataclass
class RunResult:
    """What a finished (or stopped) run reports; ``to_json`` is the CLI's ``train --json`` object."""

    run_dir: Path
    backbone: str
    strategy: str
    classes: list[str]
    train_size: int
    val_size: int
    metrics: dict[str, Any]
    best_epoch: int
    epochs_run: int
    seconds_total: float
    seconds_features: float
    skipped: list[SkippedFile]
    stopped: bool = False
    stopped_early: bool = False
    weights_id: str = ""
    history: list[EpochRecord] = field(default_factory=list)
    grouping: dict[str, Any] | None = None  # core/grouping.py: grouping_record()
    epochs_planned: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "run_dir": str(self.run_dir),
            "backbone": self.backbone,
            "strategy": self.strategy,
            "weights_id": self.weights_id,
            "classes": self.classes,
            "train_size": self.train_size,
            "val_size": self.val_size,
            "val_accuracy": self.metrics.get("accuracy"),
            "val_balanced_accuracy": self.metrics.get("balanced_accuracy"),
            "val_macro_f1": self.metrics.get("macro_f1"),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "epochs_planned": self.epochs_planned,
            "stopped": self.stopped,
            "stopped_early": self.stopped_early,
            "seconds_total": round(self.seconds_total, 3),
            "seconds_features": round(self.seconds_features, 3),
            "temperature": (self.metrics.get("calibration") or {}).get("temperature"),
            "ece_before": (self.metrics.get("calibration") or {}).get("ece_before"),
            "ece_after": (self.metrics.get("calibration") or {}).get("ece_after"),
            "val_unfamiliar_rate": (self.metrics.get("unfamiliar") or {}).get("val_unfamiliar_rate"),
            "skipped": [s.to_json() for s in self.skipped],
            "grouping": self.grouping,
        }


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


# -- data ---------------------------------------------------------------------------------------------
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
    with open(run_dir / MANIFEST_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "sha256", "label", "split"])
        for path, digest, label, val in zip(data.paths, data.hashes, data.labels, data.is_val, strict=True):
            writer.writerow([str(path), digest, data.classes[int(label)], "val" if val else "train"])


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


# -- callbacks ----------------------------------------------------------------------------------------
class _ProgressCallback(Callback):
    def __init__(self, progress: ProgressCallback, epochs: int) -> None:
        self.progress, self.epochs = progress, epochs

    def on_batch_end(self, trainer: Trainer, batch: int, batches: int, loss: float) -> None:
        epoch = trainer.state.epoch + 1
        done = trainer.state.epoch * batches + batch
        self.progress(
            Progress("train", done, self.epochs * batches, f"epoch {epoch}/{self.epochs} loss {loss:.3f}")
        )


class _RunFilesCallback(Callback):
    """Writes ``history.csv`` after every epoch, and the resume checkpoint at most every ``interval`` s.

    A checkpoint of a fully fine-tuned DenseNet is ~200 MB: writing it after every short GPU epoch would
    cost more than the epoch. The last epoch (and a Stop, early stop or error) always writes one.
    """

    def __init__(
        self, run_dir: Path, interval: float = 30.0, progress: ProgressCallback = no_progress
    ) -> None:
        self.run_dir = run_dir
        self.interval = interval
        self.progress = progress
        self._last = time.monotonic()
        self._saved_epoch = -1

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        write_history(self.run_dir, trainer.state.history)
        if time.monotonic() - self._last >= self.interval or record.epoch >= trainer.epochs:
            self._save(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        self._save(trainer)

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        if trainer.state.epoch > 0:
            self._save(trainer)

    def _save(self, trainer: Trainer) -> None:
        import torch

        if trainer.state.epoch == self._saved_epoch:
            return
        self.progress(Progress("save", 0, 1, "saving the model"))
        tmp = self.run_dir / (CHECKPOINT_FILE + ".tmp")
        torch.save(trainer.checkpoint(), tmp)
        tmp.replace(self.run_dir / CHECKPOINT_FILE)
        self._saved_epoch = trainer.state.epoch
        self._last = time.monotonic()


def write_history(run_dir: Path, history: Sequence[EpochRecord]) -> None:
    """Write ``history.csv`` (one row per epoch)."""
    names = list(EpochRecord.__dataclass_fields__)
    with open(run_dir / HISTORY_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names)
        for record in history:
            writer.writerow([getattr(record, n) for n in names])


# -- the run ------------------------------------------------------------------------------------------
def new_run_dir(base: Path) -> Path:
    """A fresh ``base/<timestamp>-<id>`` folder name."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(base) / f"{stamp}-{uuid.uuid4().hex[:6]}"


def train(
    data: Dataset,
    config: TrainConfig,
    run_dir: Path,
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
    callbacks: Sequence[Callback] = (),
    cache_root: Path | None = None,
) -> RunResult:
    """Train a model on ``data`` as ``config`` says; write everything to ``run_dir``."""
    start = time.perf_counter()
    config.validate()
    prepared = prepare_data(data, config, progress, cache_root)
    run_dir = Path(run_dir)
    if (run_dir / CONFIG_FILE).exists() or (run_dir / MODEL_FILE).exists():
        taken = f"{run_dir} already holds a run; choose another folder (its model is not overwritten)"
        raise UnusableInputError(taken, cli=f"{taken}, or continue that run with --resume")
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        write_manifest(run_dir, prepared)
        return _fit(run_dir, config, prepared, None, progress, stop_event, callbacks, cache_root, start, data)
    except (LabelTuneError, StoppedError):
        # A run that failed before it had a model (weights missing, stopped while caching features) leaves
        # no half-made folder behind for the runs list to show.
        if created and not (run_dir / MODEL_FILE).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def resume(
    run_dir: Path,
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
    callbacks: Sequence[Callback] = (),
    epochs: int | None = None,
    cache_root: Path | None = None,
) -> RunResult:
    """Continue an interrupted or stopped run from its last checkpoint (optionally to more epochs)."""
    import torch

    start = time.perf_counter()
    run_dir = Path(run_dir)
    checkpoint_path = run_dir / CHECKPOINT_FILE
    if not (run_dir / CONFIG_FILE).is_file() or not checkpoint_path.is_file():
        raise UnusableInputError(f"{run_dir} has no {CHECKPOINT_FILE} to resume from")
    stored = json.loads((run_dir / CONFIG_FILE).read_text())
    config = TrainConfig(**stored["train"])
    if epochs is not None:
        config.epochs = epochs
    prepared = read_manifest(run_dir, stored["model"]["classes"])
    prepared.skipped = [SkippedFile(**item) for item in (stored.get("data") or {}).get("skipped", [])]
    prepared.grouping = stored.get("grouping")
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # PyTorch's text (which suggests weights_only=False) goes to the log only
        reason = describe_weights_error(exc, str(checkpoint_path))
        raise UnusableInputError(f"cannot resume {run_dir}: {CHECKPOINT_FILE}: {reason}") from None
    return _fit(
        run_dir, config, prepared, checkpoint, progress, stop_event, callbacks, cache_root, start, None
    )


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _fit(
    run_dir: Path,
    config: TrainConfig,
    data: PreparedData,
    checkpoint: dict[str, Any] | None,
    progress: ProgressCallback,
    stop_event: threading.Event | None,
    callbacks: Sequence[Callback],
    cache_root: Path | None,
    start: float,
    source: Dataset | None,
) -> RunResult:
    import torch

    from labeltune.core.device import describe_device, select_device
    from labeltune.core.weights import resolve_weights

    if config.threads:
        torch.set_num_threads(config.threads)
    device = select_device(config.device)
    _seed_everything(config.seed)
    state, weights_id = resolve_weights(config.backbone, config.weights, config.seed, progress, stop_event)
    if config.freeze_batchnorm is None:  # recorded resolved in config.json
        config.freeze_batchnorm = config.strategy == "full" and not weights_id.startswith("random")
    model_config = ModelConfig.for_backbone(config.backbone, data.classes, config.input_size)
    model_config.head_hidden = config.head_hidden
    model: Any = build_classifier(model_config, state)  # Classifier: normalize, trunk, top, head
    if state is None:
        # From random weights, BatchNorm statistics must follow the weights quickly; MobileNetV3's
        # momentum of 0.01 leaves them far behind on a small data set (validation at chance level).
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.momentum is not None:
                module.momentum = max(module.momentum, 0.1)
    del state
    stop_event = stop_event or threading.Event()

    # Features for the frozen part, from the cache where possible.
    seconds_features = 0.0
    cache_root = Path(cache_root) if cache_root is not None else default_cache_root()
    if config.strategy in ("features", "partial"):
        stage = "pooled" if config.strategy == "features" else "trunk"
        frozen = torch.nn.Sequential(model.normalize, model.trunk)
        if stage == "pooled":
            frozen.append(model.top)
        calibrate: list[Path] = []
        if weights_id.startswith("random"):
            # Random weights: BatchNorm statistics are estimated on (up to 64) training images first; the
            # images used are part of the cache key, since the features depend on them.
            candidates = np.flatnonzero(~data.is_val)
            train_idx = np.unique(candidates[np.linspace(0, len(candidates) - 1, 64).astype(int)])
            calibrate = [data.paths[i] for i in train_idx]
            calibration = hashlib.sha256("".join(data.hashes[i] for i in train_idx).encode()).hexdigest()
            weights_id = f"{weights_id}-bn{calibration[:10]}"
        key = FeatureKey(
            config.backbone, weights_id, model_config.preprocessing, model_config.input_size, stage
        )
        probe_key = FeatureKey(
            config.backbone, weights_id, model_config.preprocessing, model_config.input_size, PROBE_STAGE
        )
        with FeatureCache(cache_root, key) as cache, FeatureCache(cache_root, probe_key) as probe_cache:
            if calibrate:
                seconds_features += _calibrated_batchnorm(
                    frozen, cache, calibrate, model_config.input_size, device, stop_event
                )
            extracted = extract_features(
                probed_frozen(model, config.backbone, with_top=stage == "pooled"),
                data.paths,
                data.hashes,
                cache,
                model_config.input_size,
                device,
                batch_size=max(config.batch_size, 32),
                progress=progress,
                stop_event=stop_event,
                extra_cache=probe_cache,
            )
            probes_all = extracted.extra
            seconds_features += extracted.seconds_backbone
            x_all = torch.from_numpy(extracted.features)
            views = [x_all]
            if config.cached_views:
                from labeltune.core.augment import augment_batch

                for v in range(1, config.cached_views + 1):
                    extra = extract_features(
                        frozen,
                        data.paths,
                        [f"{h}:aug{v}:seed{config.seed}" for h in data.hashes],
                        cache,
                        model_config.input_size,
                        device,
                        max(config.batch_size, 32),
                        progress,
                        stop_event,
                        transform=augment_batch,
                    )
                    seconds_features += extra.seconds_backbone
                    views.append(torch.from_numpy(extra.features))
        data = _drop_failed(data, extracted.ok, extracted.failed)
        trainable: nn.Module = model.head if stage == "pooled" else torch.nn.Sequential(model.top, model.head)
        params: list[dict[str, Any]] = [{"params": list(trainable.parameters())}]
        n_views = len(views)
        train_mask = ~data.is_val
        x_train = torch.cat([v[torch.from_numpy(train_mask)] for v in views])
        y_train = torch.from_numpy(np.tile(data.labels[train_mask], n_views))
        x_val = x_all[torch.from_numpy(data.is_val)]

        def to_float(x: torch.Tensor, _train: bool) -> torch.Tensor:
            return x.float()

        transform: Any = to_float
    else:
        from labeltune.core.augment import augment_batch
        from labeltune.core.device import memory_format
        from labeltune.core.features import decode_all

        arrays, errors = decode_all(data.paths, model_config.input_size, progress, stop_event)
        failed = {i: e for i, e in enumerate(errors) if e is not None}
        ok = [i for i in range(len(arrays)) if i not in failed]
        data = _drop_failed(data, ok, failed)
        good: list[np.ndarray] = [a for a in arrays if a is not None]
        images = torch.from_numpy(np.stack(good)) if good else torch.zeros((0,))
        x_all = images
        trainable = model
        base_lr = config.resolved_lr()
        backbone_params = [p for m in (model.trunk, model.top) for p in m.parameters()]
        params = [
            {"params": backbone_params, "lr": base_lr * config.backbone_lr_factor},
            {"params": list(model.head.parameters()), "lr": base_lr},
        ]
        fmt = memory_format(device)
        model.to(memory_format=fmt)
        augment = config.augment
        probes_all = None

        def to_image(x: torch.Tensor, train_mode: bool) -> torch.Tensor:
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            if train_mode and augment:
                x = augment_batch(x)
            return x.contiguous(memory_format=fmt)

        transform = to_image
        train_mask = ~data.is_val
        x_train = images[torch.from_numpy(train_mask)]
        y_train = torch.from_numpy(data.labels[train_mask])
        x_val = images[torch.from_numpy(data.is_val)]

    if config.strategy == "partial" and config.augment and not config.cached_views:
        log.info("partial strategy trains on cached trunk outputs: augmentation needs cached views")
    if len(y_train) == 0:
        raise UnusableInputError(
            "no training images left after leaving out the files that cannot be read: "
            + describe_skipped(data.skipped)
        )
    for module in (model.normalize, model.trunk, model.top):
        module.requires_grad_(
            config.strategy == "full" or (config.strategy == "partial" and module is model.top)
        )
    model.to(device)
    y_val = torch.from_numpy(data.labels[data.is_val])
    train_batches = TensorBatches(
        x_train,
        y_train,
        config.batch_size,
        device,
        shuffle=True,
        seed=config.seed,
        transform=transform,
        drop_last=config.strategy != "features",
    )
    val_batches = TensorBatches(x_val, y_val, max(config.batch_size, 64), device, transform=transform)
    weights = class_weights(y_train.numpy(), len(data.classes)) if config.class_balanced else None
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32, device=device) if weights is not None else None
    )
    optimizer = torch.optim.AdamW(params, lr=config.resolved_lr(), weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)

    def write_run_config() -> None:  # now, and again at the end with the fitted temperature
        _write_config(
            run_dir,
            config,
            model_config,
            weights_id,
            describe_device(device),
            source,
            data.skipped,
            data.grouping,
        )

    write_run_config()
    trainer = Trainer(
        trainable,
        optimizer,
        loss_fn,
        train_batches,
        val_batches if len(y_val) else None,
        config.epochs,
        len(data.classes),
        scheduler=scheduler,
        stop_event=stop_event,
        patience=config.patience,
        amp=device.type == "cuda",
        frozen_batchnorm=bool(config.freeze_batchnorm),
        callbacks=[
            _ProgressCallback(progress, config.epochs),
            _RunFilesCallback(run_dir, progress=progress),
            *callbacks,
        ],
    )
    if checkpoint is not None:
        trainer.restore(checkpoint)
    threads = torch.get_num_threads()
    if config.strategy == "features" and device.type == "cpu" and not config.threads:
        # A linear head's operations are tiny: a second intra-op thread only adds synchronisation,
        # which collapses throughput when the other core is busy (measured 4x slower under load).
        torch.set_num_threads(1)
    try:
        state_out = trainer.fit()
    finally:
        torch.set_num_threads(threads)

    stopped = state_out.stopped_by_user
    if len(y_val) and state_out.best_val_logits is not None:  # the best epoch's, no second pass
        logits, targets = state_out.best_val_logits, y_val
        metrics = classification_metrics(targets.numpy(), logits.argmax(1).numpy(), data.classes)
    elif len(y_val) and not stopped:
        logits, targets = predict_batches(trainable, val_batches)
        metrics = classification_metrics(targets.numpy(), logits.argmax(1).numpy(), data.classes)
    else:
        logits, targets = torch.zeros((0, len(data.classes))), torch.zeros((0,), dtype=torch.long)
        metrics = {
            "note": "stopped before the first epoch ended: no validation results yet"
            if stopped
            else "no validation set (val fraction 0)"
        }

    # Post-fit: calibrated confidence and the unfamiliar-input score (docs/adr/0012). A stopped run skips
    # it (Stop must answer at once); continuing the run to its end fits them (docs/adr/0015).
    if not stopped:
        progress(Progress("reliability", 0, 1, "calibrating confidence"))
        try:
            metrics.update(
                _fit_reliability(
                    run_dir,
                    model,
                    model_config,
                    config,
                    data,
                    logits,
                    targets,
                    x_all,
                    probes_all,
                    transform,
                    device,
                    stop_event,
                )
            )
        except StoppedError:
            stopped = True
            model_config.temperature = 1.0
        progress(Progress("reliability", 1, 1, "calibrating confidence"))
    if stopped:
        metrics["unfamiliar"] = {"note": "not available: the run was stopped; continue it to fit the check"}
    progress(Progress("save", 0, 1, "saving the model"))
    save_model(run_dir, model.cpu(), model_config)
    write_run_config()
    write_history(run_dir, state_out.history)
    result = RunResult(
        run_dir=run_dir,
        backbone=config.backbone,
        strategy=config.strategy,
        classes=data.classes,
        train_size=int((~data.is_val).sum()),
        val_size=int(data.is_val.sum()),
        metrics=metrics,
        best_epoch=state_out.best_epoch,
        epochs_run=state_out.epoch,
        seconds_total=time.perf_counter() - start,
        seconds_features=seconds_features,
        skipped=data.skipped,
        stopped=stopped,
        stopped_early=state_out.stopped_early,
        weights_id=weights_id,
        history=state_out.history,
        grouping=data.grouping,
        epochs_planned=config.epochs,
    )
    summary = result.to_json()
    (run_dir / METRICS_FILE).write_text(json.dumps({**metrics, "summary": summary}, indent=2))
    progress(Progress("save", 1, 1, "saving the model"))
    return result


#: At most this many training (and validation) items fit the unfamiliar-input densities: a random
#: subset describes the distribution as well, and bounds the time and memory on 100 000-image projects.
RELIABILITY_MAX_TRAIN = 20_000
RELIABILITY_MAX_VAL = 5_000


def _fit_reliability(
    run_dir: Path,
    model: Any,
    model_config: ModelConfig,
    config: TrainConfig,
    data: PreparedData,
    logits: torch.Tensor,
    targets: torch.Tensor,
    x_all: torch.Tensor,
    probes_all: np.ndarray | None,
    transform: Any,
    device: torch.device,
    stop_event: threading.Event | None = None,
) -> dict[str, Any]:
    """Fit the temperature (into ``model_config``) and the unfamiliar-input densities (into ``run_dir``).

    Returns the ``calibration`` and ``unfamiliar`` entries of ``metrics.json``; raises
    :class:`StoppedError` when Stop is pressed meanwhile (before anything is written).
    """
    groups = np.asarray(data.groups, dtype=object) if data.groups is not None else None
    report = calibrate_confidence(
        logits.numpy(),
        targets.numpy(),
        groups=groups[data.is_val] if groups is not None else None,
        seed=config.seed,
    )
    model_config.temperature = report.temperature
    out: dict[str, Any] = {"calibration": report.to_json()}
    rng = np.random.default_rng(config.seed)
    train_idx = np.flatnonzero(~data.is_val)
    val_idx = np.flatnonzero(data.is_val)
    if len(train_idx) > RELIABILITY_MAX_TRAIN:
        train_idx = np.sort(rng.choice(train_idx, RELIABILITY_MAX_TRAIN, replace=False))
    if len(val_idx) > RELIABILITY_MAX_VAL:
        val_idx = np.sort(rng.choice(val_idx, RELIABILITY_MAX_VAL, replace=False))
    chosen = np.concatenate([train_idx, val_idx])
    reps = _representations(
        model, config, x_all, probes_all, transform, device, model_config.input_size, chosen, stop_event
    )
    check_stop(stop_event)
    n_train = len(train_idx)
    try:
        familiarity = fit_familiarity(
            {name: rep[:n_train] for name, rep in reps.items()},
            data.labels[train_idx],
            [groups[i] for i in train_idx] if groups is not None else None,
            {name: rep[n_train:] for name, rep in reps.items()},
            seed=config.seed,
        )
    except ValueError as error:  # e.g. a single training image: nothing to describe
        log.warning("no unfamiliar-input score for %s: %s", run_dir, error)
        out["unfamiliar"] = {"note": f"not available: {error}"}
        return out
    check_stop(stop_event)
    familiarity.save(run_dir)
    out["unfamiliar"] = familiarity.report
    return out


def _representations(
    model: Any,
    config: TrainConfig,
    x_all: torch.Tensor,
    probes_all: np.ndarray | None,
    transform: Any,
    device: torch.device,
    input_size: int,
    indices: np.ndarray,
    stop_event: threading.Event | None = None,
) -> dict[str, np.ndarray]:
    """Representations of the items at ``indices`` for the unfamiliar-input score (core/probes.py).

    *features*: the cached pooled features and probe statistics; *partial*: the trained top on the cached
    trunk output, and the cached probes; *full*: one pass of the final model over the decoded images.
    """
    import torch

    from labeltune.core.device import inference_precision

    model.eval()
    # Full fine-tuning passes images through the whole network: batches of the training size, so that
    # Stop (checked between them) answers about as fast as during training.
    batch = config.batch_size if config.strategy == "full" else max(config.batch_size, 64)
    chosen = torch.from_numpy(np.asarray(indices, dtype=np.int64))
    x_all = x_all[chosen]
    if probes_all is not None:
        probes_all = np.asarray(probes_all)[indices]
    if config.strategy == "features":
        content = x_all.float().numpy()
    elif config.strategy == "partial":
        outs = []
        with torch.inference_mode(), inference_precision(device):
            for start in range(0, len(x_all), batch):
                check_stop(stop_event)
                outs.append(model.top(x_all[start : start + batch].to(device).float()).float().cpu())
        content = torch.cat(outs).numpy() if outs else np.zeros((0, 1), np.float32)
    else:
        probed = probed_classifier(model, config.backbone)
        pooled, stats = [], []
        with torch.inference_mode(), inference_precision(device):
            for start in range(0, len(x_all), batch):
                check_stop(stop_event)
                _, p, st = probed(transform(x_all[start : start + batch].to(device), False))
                pooled.append(p.float().cpu())
                stats.append(st.float().cpu())
        content = torch.cat(pooled).numpy()
        probes_all = torch.cat(stats).numpy()
    assert probes_all is not None
    dims = probe_dims(model, config.backbone, input_size)
    parts = split_probes(np.asarray(probes_all, dtype=np.float32), dims)
    return {CONTENT: np.asarray(content, np.float32), **{n: np.asarray(parts[n]) for n in PROBE_NAMES}}


def _calibrated_batchnorm(
    frozen: nn.Module,
    cache: FeatureCache,
    paths: list[Path],
    input_size: int,
    device: torch.device,
    stop_event: threading.Event | None = None,
) -> float:
    """Calibrate BatchNorm statistics once per cache (later runs load them); return the seconds spent."""
    from safetensors.torch import load as load_tensors
    from safetensors.torch import save as save_tensors

    stored = cache.get_blob("batchnorm")
    if stored is not None:
        frozen.load_state_dict(load_tensors(stored), strict=False)
        return 0.0
    start = time.perf_counter()
    calibrate_batchnorm(frozen, paths, input_size, device, stop_event=stop_event)
    buffers = {k: v.detach().cpu().contiguous() for k, v in frozen.named_buffers()}
    cache.put_blob("batchnorm", save_tensors(buffers))
    return time.perf_counter() - start


def _drop_failed(data: PreparedData, ok: Sequence[int], failed: dict[int, str]) -> PreparedData:
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


def _write_config(
    run_dir: Path,
    config: TrainConfig,
    model_config: ModelConfig,
    weights_id: str,
    device: str,
    source: Dataset | None,
    skipped: Sequence[SkippedFile] = (),
    grouping: dict[str, Any] | None = None,
) -> None:
    path = run_dir / CONFIG_FILE
    previous = json.loads(path.read_text()) if path.is_file() else {}
    content = {
        "labeltune_version": __version__,
        "created": previous.get("created", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")),
        "model": asdict(model_config),
        "train": asdict(config),
        "weights_id": weights_id,
        "device": device,
        "data": previous.get("data")
        or (
            {"source": str(source.root), "kind": source.kind, "skipped": [x.to_json() for x in skipped]}
            if source is not None
            else None
        ),
        "grouping": grouping or previous.get("grouping"),
    }
    path.write_text(json.dumps(content, indent=2))
