"""The third step of an image fit: the trainer around the model, its run, and the run's summary.

:func:`_make_trainer` puts batches, a class-weighted loss, AdamW with a cosine schedule and the callbacks
around the model and the inputs ``core/train_inputs.py`` prepared; :func:`_run` fits it; :func:`_run_result`
sums the run up from the trainer's final state. The seed and the precision a fit uses are chosen here too.
``core/training.py`` calls these steps in order; torch is imported inside the functions.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from labeltune.core import distributed
from labeltune.core.datasets import describe_skipped
from labeltune.core.errors import UnusableInputError
from labeltune.core.image_task import TensorBatches, class_weights
from labeltune.core.run_files import RunResult
from labeltune.core.train_callbacks import Checkpoints, History, ProgressBar
from labeltune.core.train_config import TrainConfig
from labeltune.core.train_inputs import FitInputs, FitJob
from labeltune.core.trainer import Callback, Trainer, TrainerState

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _precision(config: TrainConfig, device: torch.device) -> str:
    """``auto`` where mixed precision pays: CUDA; on a CPU, the backbone's ``cpu_bf16_strategies``."""
    from labeltune.core.backbones import get_spec

    if device.type == "cuda" or config.precision == "fp32":
        return config.precision
    pays = config.strategy in get_spec(config.backbone).cpu_bf16_strategies
    return config.precision if pays else "fp32"


def _make_trainer(job: FitJob, model: Any, inputs: FitInputs, device: torch.device) -> Trainer:
    """Batches, class-weighted loss, AdamW with a cosine schedule, and the callbacks, around ``model``."""
    import torch

    config, data = job.config, inputs.data
    if config.strategy == "partial" and config.augment and not config.cached_views:
        log.info("partial strategy trains on cached trunk outputs: augmentation needs cached views")
    if len(inputs.y_train) == 0:
        raise UnusableInputError(
            "no training images left after leaving out the files that cannot be read: "
            + describe_skipped(data.skipped)
        )
    from labeltune.core.lazy_backbone import frozen_modules

    for module in frozen_modules(model):  # a lazy backbone's parts are frozen when built
        module.requires_grad_(
            config.strategy == "full" or (config.strategy == "partial" and module is model.top)
        )
    model.to(device)
    y_val = torch.from_numpy(data.labels[data.is_val])
    train_batches = TensorBatches(
        inputs.x_train,
        inputs.y_train,
        config.batch_size,
        device,
        shuffle=True,
        seed=config.seed,
        transform=inputs.transform,
        drop_last=config.strategy != "features",
    )
    val_batches = TensorBatches(
        inputs.x_val, y_val, max(config.batch_size, 64), device, transform=inputs.transform
    )
    hard = inputs.y_train if inputs.y_train.ndim == 1 else inputs.y_train[:, -1].long()  # distillation
    hard = hard[hard >= 0]
    weights = class_weights(hard.numpy(), len(data.classes)) if config.class_balanced else None
    loss_fn: Any = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32, device=device) if weights is not None else None
    )
    if config.init and inputs.y_train.ndim == 2:  # adding classes: RUN's old outputs distilled (ADR 0061)
        from labeltune.core.add_classes import old_outputs_task

        loss_fn = old_outputs_task(loss_fn, val_batches if len(y_val) else None, len(data.classes))
    if config.teachers:
        from labeltune.core.backbones import get_spec
        from labeltune.core.distill import DistillationTask

        val = val_batches if len(y_val) else None
        dims = (get_spec(config.backbone).feature_dim, inputs.y_train.shape[1] - len(data.classes) - 1)
        loss_fn = DistillationTask(loss_fn, val, len(data.classes), config, model.head, dims)
    params = [*inputs.params, *(loss_fn.extra_params() if config.teachers else [])]  # + feature projection
    optimizer: Any
    if config.strategy == "features":  # the same steps without importing torch._dynamo (docs/adr/0059)
        from labeltune.core.head_optim import HeadAdamW, HeadCosineSchedule

        optimizer = HeadAdamW(params, lr=config.resolved_lr(), weight_decay=config.weight_decay)
        scheduler: Any = HeadCosineSchedule(optimizer, T_max=config.epochs)
    else:
        from labeltune.core.optimizer import adamw

        optimizer = adamw(params, lr=config.resolved_lr(), weight_decay=config.weight_decay)  # ADR 0060
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    trainer = Trainer(
        inputs.trainable,
        optimizer,
        loss_fn,
        train_batches,
        val_batches if len(y_val) else None,
        config.epochs,
        len(data.classes),
        scheduler=scheduler,
        stop_event=job.stop_event,
        patience=config.patience,
        amp=config.precision_used != "fp32",
        frozen_batchnorm=bool(config.freeze_batchnorm),
        callbacks=[
            *_memory_probe(config),
            ProgressBar(job.progress, config.epochs),
            *(
                [History(job.run_dir), Checkpoints(job.run_dir, progress=job.progress)]
                if distributed.is_main()
                else []
            ),
            *job.callbacks,
        ],
    )
    if job.checkpoint is not None:
        trainer.restore(job.checkpoint)
    return trainer


def _memory_probe(config: TrainConfig) -> list[Callback]:
    """No batch size given: partial/full steps in micro-batches that fit the free memory (docs/adr/0050)."""
    if not config.batch_auto or config.strategy == "features":
        return []
    from labeltune.core.memory_probe import MemoryAwareBatch

    return [MemoryAwareBatch()]


def _run(trainer: Trainer, config: TrainConfig, device: torch.device) -> TrainerState:
    """Fit (one intra-op thread for a linear head on a CPU)."""
    import torch

    threads = torch.get_num_threads()
    if config.strategy == "features" and device.type == "cpu" and not config.threads:
        # A linear head's operations are tiny: a second intra-op thread only adds synchronisation,
        # which collapses throughput when the other core is busy (measured 4x slower under load).
        torch.set_num_threads(1)
    try:
        return trainer.fit()
    finally:
        torch.set_num_threads(threads)


def _rank_result(job: FitJob, state: TrainerState, inputs: FitInputs) -> RunResult:
    """What a rank other than 0 of a torchrun job reports (it writes no files and prints nothing)."""
    return _run_result(job, state, inputs, {}, state.stopped_by_user)


def _run_result(
    job: FitJob, state: TrainerState, inputs: FitInputs, metrics: dict[str, Any], stopped: bool
) -> RunResult:
    """The run's summary from its job, the trainer's final state and the inputs it trained on."""
    config, data = job.config, inputs.data
    return RunResult(
        run_dir=job.run_dir,
        backbone=config.backbone,
        strategy=config.strategy,
        classes=data.classes,
        train_size=int((~data.is_val).sum()),
        val_size=int(data.is_val.sum()),
        metrics=metrics,
        best_epoch=state.best_epoch,
        epochs_run=state.epoch,
        seconds_total=time.perf_counter() - job.start,
        seconds_features=inputs.seconds_features,
        skipped=data.skipped,
        stopped=stopped,
        stopped_early=state.stopped_early,
        weights_id=inputs.weights_id,
        history=state.history,
        grouping=data.grouping,
        epochs_planned=config.epochs,
    )
