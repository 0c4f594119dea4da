"""An image training run from start to finish: data → split → weights → inputs → trainer → run folder.

``train()`` and ``resume()`` are plain functions taking a progress callback and a stop event; the CLI wraps
them with a text progress bar and the GUI with a worker thread. A fit is a few named steps
(:func:`_fit`): build the model, prepare the strategy's inputs (``core/train_inputs.py``), set up the
optimiser and schedule and run the :class:`~labeltune.core.trainer.Trainer` (``core/train_setup.py``), then
the post-fit reliability (``core/reliability_fit.py``) and the run folder's files (``core/run_files.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune.core import distributed
from labeltune.core.atomic import write_text_atomic
from labeltune.core.batch_plan import DeviceLostError
from labeltune.core.datasets import Dataset, SkippedFile
from labeltune.core.errors import (
    HAS_OBJECTS,
    HOLDS_OBJECTS,
    LabelTuneError,
    StorageError,
    UnusableInputError,
    describe_weights_error,
)
from labeltune.core.file_problems import storage_error
from labeltune.core.image_task import predict_batches
from labeltune.core.metrics import classification_metrics
from labeltune.core.model import CONFIG_FILE, MODEL_FILE, ModelConfig, build_classifier, save_model
from labeltune.core.progress import Progress, ProgressCallback, StoppedError, no_progress
from labeltune.core.project_lock import ProjectLock
from labeltune.core.reliability_fit import fit_reliability
from labeltune.core.review import write_val_predictions
from labeltune.core.run_files import METRICS_FILE, RunResult, write_run_config
from labeltune.core.run_schema import check_run_schema
from labeltune.core.run_state import run_in_progress
from labeltune.core.train_callbacks import CHECKPOINT_FILE
from labeltune.core.train_config import TrainConfig
from labeltune.core.train_data import prepare_data, read_manifest, write_manifest
from labeltune.core.train_inputs import FitInputs, FitJob, prepare_inputs
from labeltune.core.train_setup import (
    _make_trainer,
    _precision,
    _rank_result,
    _run,
    _run_result,
    _seed_everything,
)
from labeltune.core.trainer import Callback, Trainer, TrainerState

if TYPE_CHECKING:
    import torch


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
    if config.init or config.teachers:  # the split (and class order) of the runs it starts from
        from labeltune.core.add_classes import merge_with_runs

        runs = [Path(config.init)] if config.init else [Path(t) for t in config.teachers or ()]
        prepared = merge_with_runs(prepared, runs, new_classes=bool(config.init))
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    distributed.main_only(lambda: _make_run_dir(run_dir, prepared))  # under torchrun: rank 0 writes
    try:
        job = FitJob(run_dir, config, prepared, None, progress, stop_event or threading.Event(), callbacks)
        return _fit(replace(job, cache_root=cache_root, start=start, source=data))
    except (LabelTuneError, StoppedError):
        # A run that failed before it had a model (weights missing, stopped while caching features) leaves
        # no half-made folder behind for the runs list to show.
        # One with a checkpoint (a lost GPU, out of memory in epoch 3) stays: it continues from there.
        gone = created and distributed.is_main()
        if gone and not (run_dir / MODEL_FILE).exists() and not (run_dir / CHECKPOINT_FILE).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _make_run_dir(run_dir: Path, prepared: Any) -> None:
    """Create the new run's folder with its manifest, refusing a folder that holds a run."""
    if (run_dir / CONFIG_FILE).exists() or (run_dir / MODEL_FILE).exists():
        taken = f"{run_dir} already holds a run; choose another folder (its model is not overwritten)"
        raise UnusableInputError(taken, cli=f"{taken}, or continue that run with --resume")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # disk full, read-only, folder gone: one line naming it (ADR 0042)
        raise storage_error(exc, run_dir, "create") from exc
    write_manifest(run_dir, prepared)


def resume(
    run_dir: Path,
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
    callbacks: Sequence[Callback] = (),
    epochs: int | None = None,
    cache_root: Path | None = None,
    device: str | None = None,
) -> RunResult:
    """Continue an interrupted or stopped run from its last checkpoint (optionally to more epochs).

    ``device`` overrides the run's (e.g. ``"cpu"`` after the GPU was lost).
    """
    import torch

    start = time.perf_counter()
    run_dir = Path(run_dir)
    checkpoint_path = run_dir / CHECKPOINT_FILE
    if not (run_dir / CONFIG_FILE).is_file() or not checkpoint_path.is_file():
        raise UnusableInputError(f"{run_dir} has no {CHECKPOINT_FILE} to resume from")
    running = run_in_progress(run_dir) if distributed.is_main() else ""  # rank 0 may hold the lock now
    if running:
        raise UnusableInputError(f"{run_dir} is being trained {running}; wait for it or stop it first")
    for leftover in run_dir.glob(".*.tmp") if distributed.is_main() else ():  # a write cut short by a kill
        leftover.unlink(missing_ok=True)
    stored = json.loads((run_dir / CONFIG_FILE).read_text())
    check_run_schema(run_dir, stored)
    config = TrainConfig(**stored["train"])
    if epochs is not None:
        config.epochs = epochs
    if device is not None:
        config.device = device
    prepared = read_manifest(run_dir, stored["model"]["classes"])
    prepared.skipped = [SkippedFile(**item) for item in (stored.get("data") or {}).get("skipped", [])]
    prepared.grouping = stored.get("grouping")
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # PyTorch's text (which suggests weights_only=False) goes to the log only
        reason = describe_weights_error(exc, str(checkpoint_path))
        reason = HOLDS_OBJECTS if reason == HAS_OBJECTS else reason  # no "official weights file" advice
        raise UnusableInputError(f"cannot resume {run_dir}: {CHECKPOINT_FILE}: {reason}") from None
    job = FitJob(run_dir, config, prepared, checkpoint, progress, stop_event or threading.Event(), callbacks)
    return _fit(replace(job, cache_root=cache_root, start=start))


def _fit(job: FitJob) -> RunResult:
    """Build the model, prepare its inputs, set up the trainer, run it, then write the run folder."""
    import torch

    from labeltune.core.device import select_device

    config = job.config
    if config.threads:
        torch.set_num_threads(config.threads)
    device = select_device(config.device)
    group = distributed.world()
    if group is not None and device.type == "cuda":
        device = torch.device("cuda", group.local_rank)
    # while it trains: another process does not take the run as killed (under torchrun: rank 0's lock)
    lock = ProjectLock(job.run_dir) if distributed.is_main() else None
    try:
        return _fit_on(job, device)
    except DeviceLostError as error:  # the GPU's state is gone: the checkpoint is what continues (ADR 0041)
        raise DeviceLostError(
            f"{error}. Continue the run once the GPU is back, or on the CPU",
            cli=f"{error}. Continue with: labeltune train --resume {job.run_dir} (--device cpu for the CPU)",
        ) from error
    except StorageError as error:  # already one line naming the file and the reason in words (ADR 0042)
        raise StorageError(f"{error}; what the run saved before is kept", errno=error.errno) from error
    except OSError as error:  # disk full, read-only, folder gone: the files written before are whole
        name = error.filename
        if name is not None and Path(os.fsdecode(name)).parent != job.run_dir:
            raise
        raise storage_error(error, job.run_dir, "save the run in") from error
    finally:
        if lock is not None:
            lock.release()


def _fit_on(job: FitJob, device: torch.device) -> RunResult:
    """:func:`_fit` on ``device``, with the run folder locked."""
    from labeltune.core.device import describe_device, resolved_precision

    config = job.config
    _seed_everything(config.seed)
    config.precision_used = resolved_precision(device, _precision(config, device))
    model, model_config, weights_id = _build_model(job)
    local_stop = job.stop_event
    if distributed.world() is not None:  # the ranks stop together, at a step they agree on
        job = replace(job, stop_event=threading.Event())
    # Adding classes to a *partial* or *full* run trains the head on its frozen, fine-tuned network's pooled
    # features (a features run), with an augmented view of every item: the network has learned RUN's old
    # training images by heart, not their augmented versions (docs/adr/0064).
    head_only = config.init and config.strategy in ("partial", "full")
    head_config = replace(config, strategy="features", cached_views=max(config.cached_views, 1))
    fit_job = replace(job, config=head_config) if head_only else job

    def inputs_for(first: bool) -> FitInputs:
        chosen = replace(fit_job, stop_event=local_stop) if first else fit_job
        return prepare_inputs(chosen, model, model_config, weights_id, device)

    # Under torchrun each machine's first rank fills the feature cache; the others then read it.
    full = fit_job.config.strategy == "full"
    inputs = inputs_for(True) if full else distributed.local_main_first(inputs_for)
    added = _old_classes_before(config, model, inputs) if config.init else None
    template, shift = None, None
    if added is not None and fit_job.config.strategy == "features":  # RUN's outputs distilled (ADR 0061)
        import copy

        from labeltune.core import add_classes

        template = copy.deepcopy(inputs.trainable)
        targets = add_classes.with_old_outputs(template, inputs.x_train, inputs.y_train, added[0])
        inputs = replace(inputs, y_train=targets)
    distilled = None
    if config.teachers:
        from labeltune.core.distill import soft_target_inputs

        inputs, distilled = soft_target_inputs(fit_job, model, model_config, inputs, device)
    trainer = _make_trainer(fit_job, model, inputs, device)
    distributed.prepare_trainer(trainer, local_stop)
    data = inputs.data
    if not distributed.is_main():  # rank 0 writes the run folder
        state = _run(trainer, fit_job.config, device)
        return _rank_result(job, state, inputs)
    if len(data.paths) != len(job.data.paths):  # files that changed since the scan were dropped
        write_manifest(job.run_dir, data)  # the manifest lists what the model is trained on

    def write_config() -> None:  # now, and again at the end with the fitted temperature
        write_run_config(
            job.run_dir,
            config,
            model_config,
            inputs.weights_id,
            describe_device(device),
            job.source,
            data.skipped,
            data.grouping,
        )

    write_config()
    state = _run(trainer, fit_job.config, device)
    if template is not None and added is not None and not state.stopped_by_user:
        from labeltune.core import add_classes

        with contextlib.suppress(StoppedError):  # Stop meanwhile: no shift; the post-fit step stops too
            shift = add_classes.choose_new_class_shift(template, inputs, added[0], fit_job.config, local_stop)
            add_classes.shift_new_classes(inputs.trainable, added[0], shift, state.best_val_logits)
    result = _write_out(fit_job, trainer, state, (model, model_config), inputs, device, write_config)
    y_val = data.labels[data.is_val]
    if added is not None:
        from labeltune.core import add_classes

        trainable = inputs.trainable
        result = add_classes.record(result, config, added[0], added[1], trainable, inputs.x_val, y_val, shift)
    if distilled is not None:
        from labeltune.core.distill import record_distillation

        result = record_distillation(result, distilled, y_val, device)
    return result


def _old_classes_before(config: TrainConfig, model: Any, inputs: FitInputs) -> tuple[int, float | None]:
    """RUN's class count and its model's accuracy on the old classes' validation items (``--init``)."""
    from labeltune.core.add_classes import head_accuracy, read_run_config

    n_old = len(read_run_config(Path(str(config.init)))["model"]["classes"])
    y_val = inputs.data.labels[inputs.data.is_val]
    return n_old, head_accuracy(inputs.trainable, inputs.x_val, y_val, range(n_old), n_old)


def _build_model(job: FitJob) -> tuple[Any, ModelConfig, str]:
    """The classifier (normalize, trunk, top, head) with the resolved weights, its config and weights id."""
    import torch

    from labeltune.core.weights import resolve_weights

    config = job.config
    if config.init:  # adding classes: RUN's model, its head extended (core/add_classes.py)
        from labeltune.core.add_classes import build_from_run

        return build_from_run(Path(config.init), job.data.classes)
    from labeltune.core import lazy_backbone

    lazy = lazy_backbone.build_lazy(job)  # a cached re-run builds no backbone (docs/adr/0059)
    if lazy is not None:
        return lazy
    # Reading the weights may draw random numbers (checking a file's keys builds the architecture once per
    # process): the head's initial weights come from the seed alone, as a lazy build's (docs/adr/0059).
    with torch.random.fork_rng(devices=[]):
        state, weights_id = resolve_weights(
            config.backbone, config.weights, config.seed, job.progress, job.stop_event
        )
    if config.freeze_batchnorm is None:  # recorded resolved in config.json
        config.freeze_batchnorm = config.strategy == "full" and not weights_id.startswith("random")
    model_config = ModelConfig.for_backbone(config.backbone, job.data.classes, config.input_size)
    model_config.head_hidden = config.head_hidden
    model: Any = build_classifier(model_config, state)
    if state is None:
        # From random weights, BatchNorm statistics must follow the weights quickly; MobileNetV3's
        # momentum of 0.01 leaves them far behind on a small data set (validation at chance level).
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.momentum is not None:
                module.momentum = max(module.momentum, 0.1)
    else:
        lazy_backbone.remember(job, model, model_config, weights_id)
    return model, model_config, weights_id


def _write_out(
    job: FitJob,
    trainer: Trainer,
    state: TrainerState,
    built: tuple[Any, ModelConfig],
    inputs: FitInputs,
    device: torch.device,
    write_config: Callable[[], None],
) -> RunResult:
    """Validation metrics, the post-fit reliability (not for a stopped run), the model and metrics.json.

    ``write_config`` rewrites ``config.json`` with the fitted temperature.
    """
    import torch

    model, model_config = built
    config, data, progress = job.config, inputs.data, job.progress
    stopped = state.stopped_by_user
    y_val = torch.from_numpy(data.labels[data.is_val])
    if len(y_val) and state.best_val_logits is not None:  # the best epoch's, no second pass
        logits, targets = state.best_val_logits, y_val
        metrics = classification_metrics(targets.numpy(), logits.argmax(1).numpy(), data.classes)
    elif len(y_val) and not stopped:
        assert trainer.val_batches is not None
        logits, targets = predict_batches(inputs.trainable, trainer.val_batches)
        metrics = classification_metrics(targets.numpy(), logits.argmax(1).numpy(), data.classes)
    else:
        logits, targets = torch.zeros((0, len(data.classes))), torch.zeros((0,), dtype=torch.long)
        metrics = {
            "note": "stopped before the first epoch ended: no validation results yet"
            if stopped
            else "no validation set (val fraction 0)"
        }
    if len(targets):  # the items behind the confusion matrix, for its drill-down (docs/adr/0030)
        val_paths = [path for path, val in zip(data.paths, data.is_val, strict=True) if val]
        write_val_predictions(
            job.run_dir, val_paths, targets.numpy(), logits.detach().cpu().numpy(), data.classes
        )

    # Post-fit: calibrated confidence and the unfamiliar-input score (docs/adr/0012). A stopped run skips
    # it (Stop must answer at once); continuing the run to its end fits them (docs/adr/0015).
    if not stopped:
        progress(Progress("reliability", 0, 1, "calibrating confidence"))
        try:
            metrics.update(
                fit_reliability(
                    job.run_dir,
                    model,
                    model_config,
                    config,
                    inputs,
                    (logits, targets),
                    device,
                    job.stop_event,
                )
            )
        except StoppedError:
            stopped = True
            model_config.temperature = 1.0
        progress(Progress("reliability", 1, 1, "calibrating confidence"))
    if stopped:
        metrics["unfamiliar"] = {"note": "not available: the run was stopped; continue it to fit the check"}
    progress(Progress("save", 0, 1, "saving the model"))
    save_model(job.run_dir, model.cpu(), model_config)
    write_config()
    result = _run_result(job, state, inputs, metrics, stopped)
    summary = result.to_json()
    write_text_atomic(job.run_dir / METRICS_FILE, json.dumps({**metrics, "summary": summary}, indent=2))
    progress(Progress("save", 1, 1, "saving the model"))
    return result
