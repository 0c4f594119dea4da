"""One training loop for both domains, in the torchvision-reference style, with Lightning-named callbacks.

The loop knows nothing about images, diffraction patterns, caches or Qt: it trains ``model`` on the
batches of a ``BatchSource`` (an object with ``len()`` and ``batches(epoch)``), asks a ``TrainingTask``
(``core/train_step.py``) for each batch's loss, validates after each epoch through the same task, keeps
the best weights by the task's ``score``, stops early, and checks a ``threading.Event`` so a Stop button
(or Ctrl+C in the CLI) ends it cleanly with the best model so far. Images plug in ``ClassificationTask``
(``core/image_task.py``: cross-entropy, image metrics; the default when given a loss function); XRD
plugs in its presence + fraction loss and held-out evaluation (``core/xrd/train_task.py``). See
docs/adr/0022-one-trainer.md.

A step that runs out of device memory is computed again in micro-batches of half the size, their
gradients accumulated, so the optimiser step stays the one asked for (``core/batch_plan.py``,
docs/adr/0041); callbacks hear of it through ``on_batch_plan_change``.

Stop is checked inside each step, not only between steps: before every layer's forward pass and as each
parameter's gradient arrives in the backward pass (hooks, ``stop_hooks``), so a step of full fine-tuning
on a CPU that takes 15 s is left within about one layer's time; the step is then not applied
(docs/adr/0015). Validation checks the same way.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from labeltune.core.batch_plan import (
    BatchPlan,
    DeviceLostError,
    OutOfMemoryAtFloorError,
    is_device_lost,
    is_out_of_memory,
)
from labeltune.core.image_task import ClassificationTask, TensorBatches
from labeltune.core.progress import StoppedError, check_stop
from labeltune.core.train_step import (
    BatchSource,
    EpochRecord,
    TrainingTask,
    Validation,
    stop_hooks,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)


class Callback:
    """Base class: override the hooks you need (all are no-ops)."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once before the first epoch."""

    def on_batch_end(self, trainer: Trainer, batch: int, batches: int, loss: float) -> None:
        """Called after each optimisation step."""

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        """Called after each epoch's validation."""

    def on_batch_plan_change(self, trainer: Trainer, plan: BatchPlan, message: str) -> None:
        """Called when a step ran out of memory and goes on in smaller micro-batches (``message``)."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once after training ends normally or by Stop / early stopping."""

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        """Called when training fails; the exception is re-raised afterwards."""


#: An epoch is better only by more than this fraction of the best score so far (per element, in order):
#: float noise — another thread count, a vanishing learning rate — is not progress for early stopping.
MIN_IMPROVEMENT = 1e-4


def improves(score: tuple[float, float], best: tuple[float, float]) -> bool:
    """Whether ``score`` beats ``best`` (compared element by element, larger is better, ties go on)."""
    for new, old in zip(score, best, strict=True):
        if not math.isfinite(old):
            if new != old:
                return new > old
            continue
        margin = MIN_IMPROVEMENT * max(abs(old), 1e-12)
        if new > old + margin:
            return True
        if new < old - margin:
            return False
    return False


@dataclass
class TrainerState:
    """Everything that a resumed run needs besides model/optimizer/scheduler."""

    epoch: int = 0  # epochs completed
    best_epoch: int = 0
    best_score: tuple[float, float] = (-math.inf, -math.inf)
    best_state: dict[str, Any] = field(default_factory=dict)
    bad_epochs: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    stopped_by_user: bool = False
    stopped_early: bool = False
    #: Validation outputs of the best epoch (images: logits on the CPU): a stopped run's metrics need no
    #: further pass.
    best_val_logits: Any = None


class Trainer:
    """Train ``model`` for up to ``epochs`` epochs; see the module docstring.

    ``step`` is the domain's :class:`TrainingTask`, or (images) a loss function, which becomes a
    :class:`ClassificationTask` validating on ``val`` over ``num_classes`` classes. ``scheduler_interval``
    is when the scheduler steps: after each epoch's validation (``"epoch"``) or after each optimisation
    step (``"step"``, never past the last one, as a one-cycle schedule needs). ``amp`` is mixed precision:
    float16 with a gradient scaler on CUDA, bfloat16 on a CPU that runs it natively, else off
    (``core/device.py`` ``mixed_precision``; docs/adr/0050).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        step: TrainingTask | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        train: BatchSource,
        val: TensorBatches | None,
        epochs: int,
        num_classes: int = 0,
        scheduler: Any = None,
        callbacks: Sequence[Callback] = (),
        stop_event: threading.Event | None = None,
        patience: int = 0,
        amp: bool = False,
        micro_batch: int = 0,
        frozen_batchnorm: bool = False,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        self.model, self.optimizer = model, optimizer
        #: What the training passes run (under torchrun: ``model`` wrapped in DistributedDataParallel;
        #: validation, checkpoints and the best weights use the plain ``model``; core/distributed.py).
        self.train_model: nn.Module = model
        #: Adds the epoch's training sums (loss, correct, seen, scored) over the ranks (None: one process).
        self.reduce_sums: Callable[[list[float]], list[float]] | None = None
        if isinstance(step, TrainingTask):
            self.task = step
        else:
            self.task = ClassificationTask(step, val, num_classes, amp, chunk=micro_batch * 2)
        self.train_batches, self.val_batches = train, val
        self.epochs = epochs
        self.scheduler = scheduler
        self._steps_scheduler = scheduler is not None and scheduler_interval == "step"
        self.callbacks = list(callbacks)
        self.stop_event = stop_event or threading.Event()
        self.patience = patience
        self.amp = amp
        #: Samples per forward/backward pass (0: the whole batch); gradients of the passes add up.
        self.micro_batch = micro_batch
        #: BatchNorm layers stay in eval mode while training (their statistics as pretrained; their scale
        #: and shift still learn): small fine-tuning batches would otherwise pull the statistics away.
        self.frozen_batchnorm = frozen_batchnorm
        self.state = TrainerState()
        self.should_stop = False
        #: Mean training loss of the current epoch so far (what a progress bar shows).
        self.running_loss = math.nan
        self._last_validation: Validation | None = None

    # -- the loop -------------------------------------------------------------------------------------
    def fit(self) -> TrainerState:
        """Run the remaining epochs; return the final state (best weights are loaded into the model)."""
        try:
            for callback in self.callbacks:
                callback.on_fit_start(self)
            while self.state.epoch < self.epochs and not self.should_stop:
                record = self._run_epoch(self.state.epoch + 1)
                if record is None:  # stopped mid-epoch: the partial epoch does not count
                    break
                self._after_epoch(record)
            for callback in self.callbacks:  # before the best weights replace the last ones (checkpoints)
                callback.on_fit_end(self)
            if self.state.best_state:
                self.model.load_state_dict(self.state.best_state)
        except BaseException as error:
            for callback in self.callbacks:  # each one, even if another fails: the first error is the news
                try:
                    callback.on_exception(self, error)
                except Exception:
                    log.warning("%s could not finish after %r", type(callback).__name__, error, exc_info=True)
            raise
        return self.state

    def _run_epoch(self, epoch: int) -> EpochRecord | None:
        import torch

        start = time.perf_counter()
        self.model.train()
        if self.frozen_batchnorm:
            for module in self.model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        device_type = self.train_batches.device.type
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp and device_type == "cuda")
        total_loss, correct, seen, scored = 0.0, 0.0, 0, 0
        batches = len(self.train_batches)
        self.running_loss = math.nan
        try:
            for b, batch in enumerate(self.train_batches.batches(epoch)):
                step = self._train_step(batch, scaler, device_type)
                if step is None:  # stopped mid-epoch: the partial epoch does not count
                    self.state.stopped_by_user = True
                    return None
                value, n_correct, n_scored = step
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"training diverged (loss {value}) in epoch {epoch}; try a lower learning rate"
                    )
                if self._steps_scheduler and (epoch - 1) * batches + b < self.epochs * batches - 1:
                    self.scheduler.step()
                n = self.task.size(batch)
                total_loss += value * n
                correct += n_correct
                seen += n
                scored += n_scored
                self.running_loss = total_loss / max(seen, 1)
                for callback in self.callbacks:
                    callback.on_batch_end(self, b + 1, batches, value)
        except StoppedError:  # a batch source that checks Stop between batches
            self.state.stopped_by_user = True
            return None
        if self.stop_event.is_set():
            self.state.stopped_by_user = True
            return None
        if self.reduce_sums is not None:  # every rank records (and decides on) the same numbers
            total_loss, correct, seen_sum, scored_sum = self.reduce_sums([total_loss, correct, seen, scored])
            seen, scored = int(seen_sum), int(scored_sum)
        lr = float(self.optimizer.param_groups[-1]["lr"])
        try:
            val = self.validate()
        except StoppedError:
            self.state.stopped_by_user = True
            return None
        if self.scheduler is not None and not self._steps_scheduler:
            self.scheduler.step()  # after validation, so that a stopped epoch leaves it untouched
        return EpochRecord(
            epoch=epoch,
            train_loss=total_loss / max(seen, 1),
            train_accuracy=correct / max(scored, 1),
            val_loss=val.loss,
            val_accuracy=val.accuracy,
            val_balanced_accuracy=val.balanced_accuracy,
            val_macro_f1=val.macro_f1,
            lr=lr,
            seconds=time.perf_counter() - start,
            batch_size=getattr(self.train_batches, "batch_size", 0),
            micro_batch=self.micro_batch or getattr(self.train_batches, "batch_size", 0),
        )

    def _train_step(self, batch: Any, scaler: Any, device_type: str) -> tuple[float, float, int] | None:
        """One optimisation step over the batch (in micro-batches); ``(mean loss, correct, scored)``.

        None when stopped. Gradients of the micro-batches add up, each loss weighted by its share of the
        batch: the same step as the whole batch's, up to BatchNorm statistics and class weights within
        each micro-batch. Out of memory: the batch is computed again in smaller micro-batches.
        """
        while True:
            try:
                return self._accumulate(batch, scaler, device_type)
            except Exception as error:  # out of memory: the same batch again, in smaller micro-batches
                if not is_out_of_memory(error):
                    if is_device_lost(error):
                        raise DeviceLostError(self._device_lost_message(error)) from error
                    raise
            # outside the except block: the error's traceback, which holds the step's tensors, is gone
            self._shrink_after_out_of_memory(batch, device_type)

    def _shrink_after_out_of_memory(self, batch: Any, device_type: str) -> None:
        """Free the failed step's memory and halve the micro-batch; at the floor, give up clearly."""
        import gc

        import torch

        self.optimizer.zero_grad(set_to_none=True)  # nothing of the failed step is applied
        gc.collect()
        if device_type == "cuda":
            torch.cuda.empty_cache()
        elif device_type == "mps" and hasattr(torch, "mps"):
            torch.mps.empty_cache()
        plan = BatchPlan.of(self.task.size(batch), self.micro_batch)
        if not plan.can_halve():
            raise OutOfMemoryAtFloorError(plan.floor_message()) from None
        smaller = plan.halved()
        message = plan.out_of_memory_message(smaller)
        log.info("%s", message)  # the user hears it from the callbacks (CLI: stderr; GUI: the stage line)
        self.micro_batch = smaller.micro
        for callback in self.callbacks:
            callback.on_batch_plan_change(self, smaller, message)

    def _device_lost_message(self, error: BaseException) -> str:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        kept = f"the checkpoint of epoch {self.state.epoch} is kept" if self.state.epoch else "no epoch ended"
        return f"the GPU stopped answering in epoch {self.state.epoch + 1} ({first}); {kept}"

    def _accumulate(self, batch: Any, scaler: Any, device_type: str) -> tuple[float, float, int] | None:
        """:meth:`_train_step` in micro-batches of :attr:`micro_batch` (may raise out of memory)."""
        import torch

        from labeltune.core.device import mixed_precision

        dtype = mixed_precision(device_type, self.amp)  # fp16 on CUDA, bf16 on a CPU that has it
        n = self.task.size(batch)
        size = min(self.micro_batch, n) if self.micro_batch > 0 else n
        self.optimizer.zero_grad(set_to_none=True)
        total, correct, scored = 0.0, 0.0, 0
        try:
            with stop_hooks(self.model, self.stop_event):
                for part in self.task.split(batch, max(size, 1)):
                    check_stop(self.stop_event)
                    with torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None):
                        out = self.task.loss(self.train_model, part)
                    check_stop(self.stop_event)  # the backward pass costs about twice the forward
                    share = self.task.size(part) / n
                    scaler.scale(out.loss * share if share < 1 else out.loss).backward()
                    total += float(out.loss.detach()) * share
                    correct += out.correct
                    scored += out.scored
                check_stop(self.stop_event)
        except StoppedError:
            self.optimizer.zero_grad(set_to_none=True)  # the half-computed step is not applied
            return None
        scaler.step(self.optimizer)
        scaler.update()
        return total, correct, scored

    def validate(self) -> Validation:
        """The task's validation of the current model (NaN numbers when there is no validation set).

        Raises :class:`~labeltune.core.progress.StoppedError` when Stop is pressed meanwhile.
        """
        self._last_validation = None
        validation = self.task.validate(self.model, self.stop_event)
        self._last_validation = validation
        return validation

    def _after_epoch(self, record: EpochRecord) -> None:
        state = self.state
        state.epoch = record.epoch
        state.history.append(record)
        score = self.task.score(record)
        if improves(score, state.best_score):
            state.best_score = score
            state.best_epoch = record.epoch
            state.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            state.best_val_logits = self._last_validation.outputs if self._last_validation else None
            state.bad_epochs = 0
        else:
            state.bad_epochs += 1
            if self.patience and state.bad_epochs >= self.patience:
                state.stopped_early = True
                self.should_stop = True
        for callback in self.callbacks:
            callback.on_epoch_end(self, record)

    # -- resume ---------------------------------------------------------------------------------------
    def checkpoint(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """A dict of tensors and builtins (loadable with ``weights_only=True``) to resume from.

        With the random number generators' states: a resumed run draws the same dropout masks (and
        augmentations) as one never interrupted, so it ends the same (docs/adr/0041).
        """
        import torch

        s = self.state
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        return {
            "rng_state": torch.get_rng_state(),
            "cuda_rng_state": torch.cuda.get_rng_state_all() if cuda else None,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": s.epoch,
            "best_epoch": s.best_epoch,
            "best_score": list(s.best_score),
            "best_state": s.best_state,
            "bad_epochs": s.bad_epochs,
            "history": [r.to_json() for r in s.history],
            "best_val_logits": s.best_val_logits,
            "extra": extra or {},
        }

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Continue from :meth:`checkpoint`'s output."""
        import torch

        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and checkpoint.get("scheduler") is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        s = self.state
        s.epoch = int(checkpoint["epoch"])
        s.best_epoch = int(checkpoint["best_epoch"])
        s.best_score = (float(checkpoint["best_score"][0]), float(checkpoint["best_score"][1]))
        s.best_state = dict(checkpoint["best_state"])
        s.bad_epochs = int(checkpoint["bad_epochs"])
        s.history = [EpochRecord(**r) for r in checkpoint["history"]]
        s.best_val_logits = checkpoint.get("best_val_logits")
        if isinstance(checkpoint.get("rng_state"), torch.Tensor):
            torch.set_rng_state(checkpoint["rng_state"])
        if checkpoint.get("cuda_rng_state") and torch.cuda.is_available():
            try:
                torch.cuda.set_rng_state_all(checkpoint["cuda_rng_state"])
            except (RuntimeError, IndexError):  # another GPU count: the run continues, not bit for bit
                log.info("the checkpoint's CUDA random state does not fit this machine's GPUs")
