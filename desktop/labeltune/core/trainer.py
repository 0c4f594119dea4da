"""A small training loop in the torchvision-reference style, with Lightning-named callback hooks.

The loop knows nothing about images, caches or Qt: it trains ``model`` on batches from a
:class:`TensorBatches` source, evaluates after each epoch, keeps the best weights (highest validation
balanced accuracy, ties broken by lower validation loss), stops early, and checks a ``threading.Event``
so a Stop button (or Ctrl+C in the CLI) ends it cleanly with the best model so far.

Stop is checked inside each step, not only between steps: before every layer's forward pass and as each
parameter's gradient arrives in the backward pass (hooks, :func:`stop_hooks`), so a step of full
fine-tuning on a CPU that takes 15 s is left within about one layer's time; the step is then not applied
(docs/adr/0015). Validation checks the same way.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labeltune.core.metrics import classification_metrics
from labeltune.core.progress import StoppedError, check_stop

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class EpochRecord:
    """Metrics of one epoch (one row of ``history.csv``)."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_balanced_accuracy: float
    val_macro_f1: float
    lr: float
    seconds: float

    def to_json(self) -> dict[str, float]:
        """Return the record as a dict of builtins."""
        return asdict(self)


class Callback:
    """Base class: override the hooks you need (all are no-ops)."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once before the first epoch."""

    def on_batch_end(self, trainer: Trainer, batch: int, batches: int, loss: float) -> None:
        """Called after each optimisation step."""

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        """Called after each epoch's validation."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once after training ends normally or by Stop / early stopping."""

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        """Called when training fails; the exception is re-raised afterwards."""


class TensorBatches:
    """Mini-batches of in-memory tensors; shuffled per epoch from ``seed + epoch`` (so resume is exact)."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        device: torch.device,
        shuffle: bool = False,
        seed: int = 0,
        transform: Callable[[torch.Tensor, bool], torch.Tensor] | None = None,
        drop_last: bool = False,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.device = device
        self.shuffle, self.seed = shuffle, seed
        self.transform = transform
        self.drop_last = drop_last and len(y) > batch_size

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` on the device for ``epoch``."""
        import torch

        n = len(self.y)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        pin = self.device.type == "cuda"
        for b in range(len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            xb, yb = self.x[index], self.y[index]
            if pin:
                xb, yb = xb.pin_memory(), yb.pin_memory()
            xb = xb.to(self.device, non_blocking=True)
            yb = yb.to(self.device, non_blocking=True)
            if self.transform is not None:
                xb = self.transform(xb, self.shuffle)
            yield xb, yb


@dataclass
class TrainerState:
    """Everything that a resumed run needs besides model/optimizer/scheduler."""

    epoch: int = 0  # epochs completed
    best_epoch: int = 0
    best_score: tuple[float, float] = (-1.0, -math.inf)
    best_state: dict[str, Any] = field(default_factory=dict)
    bad_epochs: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    stopped_by_user: bool = False
    stopped_early: bool = False
    #: Validation logits (CPU) of the best epoch: a stopped run's metrics need no further pass.
    best_val_logits: Any = None


class Trainer:
    """Train ``model`` for up to ``epochs`` epochs; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        train: TensorBatches,
        val: TensorBatches | None,
        epochs: int,
        num_classes: int,
        scheduler: Any = None,
        callbacks: Sequence[Callback] = (),
        stop_event: threading.Event | None = None,
        patience: int = 0,
        amp: bool = False,
        micro_batch: int = 0,
        frozen_batchnorm: bool = False,
    ) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.train_batches, self.val_batches = train, val
        self.epochs = epochs
        self.num_classes = num_classes
        self.scheduler = scheduler
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
        self._last_val_logits: Any = None

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
            for callback in self.callbacks:
                callback.on_exception(self, error)
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
        total_loss, correct, seen = 0.0, 0, 0
        batches = len(self.train_batches)
        for b, (x, y) in enumerate(self.train_batches.batches(epoch)):
            step = self._train_step(x, y, scaler, device_type)
            if step is None:  # stopped mid-epoch: the partial epoch does not count
                self.state.stopped_by_user = True
                return None
            value, n_correct = step
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"training diverged (loss {value}) in epoch {epoch}; try a lower learning rate"
                )
            total_loss += value * len(y)
            correct += n_correct
            seen += len(y)
            for callback in self.callbacks:
                callback.on_batch_end(self, b + 1, batches, value)
        if self.stop_event.is_set():
            self.state.stopped_by_user = True
            return None
        lr = float(self.optimizer.param_groups[-1]["lr"])
        try:
            val = self.evaluate()
        except StoppedError:
            self.state.stopped_by_user = True
            return None
        if self.scheduler is not None:  # after validation, so that a stopped epoch leaves it untouched
            self.scheduler.step()
        return EpochRecord(
            epoch=epoch,
            train_loss=total_loss / max(seen, 1),
            train_accuracy=correct / max(seen, 1),
            val_loss=val["loss"],
            val_accuracy=val["accuracy"],
            val_balanced_accuracy=val["balanced_accuracy"],
            val_macro_f1=val["macro_f1"],
            lr=lr,
            seconds=time.perf_counter() - start,
        )

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, scaler: Any, device_type: str
    ) -> tuple[float, int] | None:
        """One optimisation step over the batch (in micro-batches); ``(mean loss, correct)``, None if stopped.

        Gradients of the micro-batches add up, each loss weighted by its share of the batch: the same step
        as the whole batch's, up to BatchNorm statistics and class weights within each micro-batch.
        """
        import torch

        n = len(y)
        size = min(self.micro_batch, n) if self.micro_batch > 0 else n
        self.optimizer.zero_grad(set_to_none=True)
        total, correct = 0.0, 0
        try:
            with stop_hooks(self.model, self.stop_event):
                for first in range(0, n, size):
                    check_stop(self.stop_event)
                    xm, ym = x[first : first + size], y[first : first + size]
                    amp = self.amp and device_type == "cuda"
                    with torch.autocast(device_type, dtype=torch.float16, enabled=amp):
                        logits = self.model(xm)
                        loss = self.loss_fn(logits, ym)
                    check_stop(self.stop_event)  # the backward pass costs about twice the forward
                    share = len(ym) / n
                    scaler.scale(loss * share if share < 1 else loss).backward()
                    total += float(loss.detach()) * share
                    correct += int((logits.detach().argmax(1) == ym).sum())
                check_stop(self.stop_event)
        except StoppedError:
            self.optimizer.zero_grad(set_to_none=True)  # the half-computed step is not applied
            return None
        scaler.step(self.optimizer)
        scaler.update()
        return total, correct

    def evaluate(self) -> dict[str, float]:
        """Loss and metrics on the validation batches (NaN when there is no validation set).

        Raises :class:`~labeltune.core.progress.StoppedError` when Stop is pressed meanwhile.
        """
        self._last_val_logits = None
        if self.val_batches is None or len(self.val_batches) == 0:
            nan = float("nan")
            return {"loss": nan, "accuracy": nan, "balanced_accuracy": nan, "macro_f1": nan}
        logits, y = predict_batches(
            self.model, self.val_batches, self.amp, self.stop_event, chunk=self.micro_batch * 2
        )
        self._last_val_logits = logits
        import torch

        loss = float(torch.nn.functional.cross_entropy(logits, y))
        classes = [str(i) for i in range(self.num_classes)]
        m = classification_metrics(y.numpy(), logits.argmax(1).numpy(), classes)
        return {
            "loss": loss,
            "accuracy": m["accuracy"],
            "balanced_accuracy": m["balanced_accuracy"],
            "macro_f1": m["macro_f1"],
        }

    def _after_epoch(self, record: EpochRecord) -> None:
        state = self.state
        state.epoch = record.epoch
        state.history.append(record)
        if math.isnan(record.val_loss):
            score = (record.train_accuracy, -record.train_loss)
        else:
            score = (record.val_balanced_accuracy, -record.val_loss)
        if score > state.best_score:
            state.best_score = score
            state.best_epoch = record.epoch
            state.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            state.best_val_logits = self._last_val_logits
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
        """A dict of tensors and builtins (loadable with ``weights_only=True``) to resume from."""
        s = self.state
        return {
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


def predict_batches(
    model: nn.Module,
    batches: TensorBatches,
    amp: bool = False,
    stop_event: threading.Event | None = None,
    chunk: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (float32, CPU) and targets (CPU) of ``model`` over ``batches`` in eval mode.

    With ``stop_event``, Stop is checked before each forward pass of at most ``chunk`` samples (0: a whole
    batch) and answered with :class:`~labeltune.core.progress.StoppedError`.
    """
    import torch

    was_training = model.training
    model.eval()
    outs, ys = [], []
    device_type = batches.device.type
    try:
        with (
            stop_hooks(model, stop_event),
            torch.inference_mode(),
            torch.autocast(device_type, torch.float16, enabled=amp and device_type == "cuda"),
        ):
            for x, y in batches.batches(0):
                size = chunk if chunk > 0 else max(len(y), 1)
                for first in range(0, len(y), size):
                    check_stop(stop_event)
                    outs.append(model(x[first : first + size]).float().cpu())
                ys.append(y.cpu())
    finally:
        model.train(was_training)
    if not outs:
        return torch.zeros((0, 0)), torch.zeros((0,), dtype=torch.long)
    return torch.cat(outs), torch.cat(ys)


#: Layers (and parameters) checked for Stop during a step, at most; evenly spread through the network.
MAX_STOP_HOOKS = 64


@contextlib.contextmanager
def stop_hooks(model: nn.Module, stop_event: threading.Event | None) -> Iterator[None]:
    """Within the block, ``model`` raises :class:`StoppedError` inside its forward and backward passes.

    A forward pre-hook on every module with parameters of its own checks ``stop_event`` before the layer
    runs; a hook on every trainable parameter checks it as the parameter's gradient arrives. Parameter
    hooks, not module backward hooks: those wrap the layer's output, which in-place ReLUs then break.
    """
    if stop_event is None:
        yield
        return

    def before_forward(_module: Any, _inputs: Any) -> None:
        check_stop(stop_event)

    def on_gradient(_grad: Any) -> None:
        check_stop(stop_event)  # returns None: the gradient is left as it is (no copy)

    handles: list[Any] = []
    try:
        layers = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
        # At most MAX_STOP_HOOKS of each kind, evenly spread: a deep network (DenseNet201: ~700 layers)
        # is still checked every few layers, and the hooks' Python cost stays small next to a GPU step.
        stride = max(1, math.ceil(len(layers) / MAX_STOP_HOOKS))
        for module in layers[::stride]:
            handles.append(module.register_forward_pre_hook(before_forward))
        trainable = [p for p in model.parameters() if p.requires_grad]
        stride = max(1, math.ceil(len(trainable) / MAX_STOP_HOOKS))
        handles += [p.register_hook(on_gradient) for p in trainable[::stride]]
        yield
    finally:
        for handle in handles:
            handle.remove()


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights ``n / (k * count_c)`` (1 for absent classes), for a class-balanced loss."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.ones(num_classes)
    present = counts > 0
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights
