"""The image side of the trainer: in-memory tensor batches, cross-entropy, classification metrics.

:class:`ClassificationTask` is what images plug into :class:`~labeltune.core.trainer.Trainer` (its
default when given a loss function); :func:`class_weights` makes the cross-entropy class-balanced.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from labeltune.core.metrics import classification_metrics
from labeltune.core.progress import check_stop
from labeltune.core.train_step import StepOutput, TrainingTask, Validation, stop_hooks

if TYPE_CHECKING:
    import torch
    from torch import nn


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
        #: ``(rank, ranks)``: this process takes every ranks-th item of each batch, from its rank
        #: (core/distributed.py); a last batch with fewer items than ranks is left out.
        self.shard = (0, 1)

    def __len__(self) -> int:
        n = len(self.y)
        full, rest = divmod(n, self.batch_size)
        return full if self.drop_last else full + (rest >= self.shard[1])

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
            index = order[b * self.batch_size : (b + 1) * self.batch_size][self.shard[0] :: self.shard[1]]
            xb, yb = self.x[index], self.y[index]
            if pin:
                xb, yb = xb.pin_memory(), yb.pin_memory()
            xb = xb.to(self.device, non_blocking=True)
            yb = yb.to(self.device, non_blocking=True)
            if self.transform is not None:
                xb = self.transform(xb, self.shuffle)
            yield xb, yb


class ClassificationTask(TrainingTask):
    """Images: ``loss_fn`` (cross-entropy, class-weighted) on ``(x, y)`` batches; metrics on ``val``.

    The best epoch has the highest validation balanced accuracy, ties broken by the lower validation loss
    (training accuracy and loss without a validation set).
    """

    def __init__(
        self,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        val: TensorBatches | None,
        num_classes: int,
        amp: bool = False,
        chunk: int = 0,
    ) -> None:
        self.loss_fn, self.val, self.num_classes = loss_fn, val, num_classes
        self.amp, self.chunk = amp, chunk
        #: Puts the ranks' validation outputs back together (core/distributed.py; None: one process).
        self.gather: Callable[..., list[torch.Tensor]] | None = None

    def size(self, batch: Any) -> int:
        """Images in the batch."""
        return len(batch[1])

    def split(self, batch: Any, size: int) -> Iterator[Any]:
        """``(x, y)`` slices of ``size`` images."""
        x, y = batch
        for first in range(0, len(y), size):
            yield x[first : first + size], y[first : first + size]

    def loss(self, model: nn.Module, batch: Any) -> StepOutput:
        """Cross-entropy of the logits; correct = arg-max hits."""
        x, y = batch
        logits = model(x)
        loss = self.loss_fn(logits, y)
        return StepOutput(loss, int((logits.detach().argmax(1) == y).sum()), len(y))

    def validate(self, model: nn.Module, stop_event: threading.Event) -> Validation:
        """Loss and metrics on the validation batches (NaN when there is no validation set)."""
        if self.val is None or len(self.val) == 0:
            return Validation.none()
        logits, y = predict_batches(model, self.val, self.amp, stop_event, chunk=self.chunk)
        if self.gather is not None:
            logits, y = self.gather(logits, y)
        import torch

        loss = float(torch.nn.functional.cross_entropy(logits, y))
        classes = [str(i) for i in range(self.num_classes)]
        m = classification_metrics(y.numpy(), logits.argmax(1).numpy(), classes)
        return Validation(loss, m["accuracy"], m["balanced_accuracy"], m["macro_f1"], outputs=logits)


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
    from labeltune.core.device import mixed_precision

    device_type = batches.device.type
    dtype = mixed_precision(device_type, amp)
    try:
        with (
            stop_hooks(model, stop_event),
            torch.inference_mode(),
            torch.autocast(device_type, dtype or torch.float32, enabled=dtype is not None),
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


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights ``n / (k * count_c)`` (1 for absent classes), for a class-balanced loss."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.ones(num_classes)
    present = counts > 0
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights
