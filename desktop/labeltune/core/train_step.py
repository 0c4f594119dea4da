"""What one training step is made of, for every domain: the seam between the trainer and a domain.

A domain gives the trainer a :class:`BatchSource` (``len()`` batches per epoch, ``batches(epoch)``) and a
:class:`TrainingTask` (the loss of a batch, the validation after an epoch, the best-epoch rule); the trainer
writes one :class:`EpochRecord` per epoch. :func:`stop_hooks` makes Stop answer inside a forward or
backward pass (docs/adr/0015). See docs/adr/0022-one-trainer.md.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from labeltune.core.progress import check_stop

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
    #: Items per optimiser step as asked (the effective batch), and per forward pass: smaller after the
    #: device ran out of memory (gradient accumulation keeps the step the same; docs/adr/0041). 0: not known.
    batch_size: int = 0
    micro_batch: int = 0

    def to_json(self) -> dict[str, float]:
        """Return the record as a dict of builtins."""
        return asdict(self)


class BatchSource(Protocol):
    """Where a domain's training batches come from: ``len()`` batches per epoch, on ``device``."""

    device: torch.device

    def __len__(self) -> int:
        """Batches per epoch."""
        ...

    def batches(self, epoch: int) -> Iterable[Any]:
        """The batches of ``epoch`` (1-based); may raise :class:`StoppedError` between them."""
        ...


@dataclass
class StepOutput:
    """What a task computes for one (micro-)batch: the loss to minimise and the training accuracy's counts."""

    loss: torch.Tensor
    correct: float  # items the model got right
    scored: int  # items the accuracy counts


@dataclass
class Validation:
    """One epoch's validation; ``outputs`` is kept with the best epoch (images: the validation logits)."""

    loss: float
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    outputs: Any = None

    @classmethod
    def none(cls) -> Validation:
        """No validation set: every number is NaN (the best epoch is then chosen on training numbers)."""
        nan = float("nan")
        return cls(nan, nan, nan, nan)


class TrainingTask:
    """What a domain plugs into the :class:`Trainer`: its batches' loss, its validation, its best-epoch rule.

    ``batch`` is whatever the domain's :class:`BatchSource` yields; the trainer only passes it back here.
    """

    def size(self, batch: Any) -> int:
        """Items in ``batch`` (the training loss is averaged over them)."""
        raise NotImplementedError

    def split(self, batch: Any, size: int) -> Iterator[Any]:
        """``batch`` in micro-batches of at most ``size`` items (by default: whole, no micro-batching)."""
        yield batch

    def loss(self, model: nn.Module, batch: Any) -> StepOutput:
        """The forward pass and the loss of ``batch`` (inside the trainer's autocast and Stop hooks)."""
        raise NotImplementedError

    def validate(self, model: nn.Module, stop_event: threading.Event) -> Validation:
        """Validate ``model``; raise :class:`StoppedError` when Stop is pressed meanwhile."""
        return Validation.none()

    def score(self, record: EpochRecord) -> tuple[float, float]:
        """Larger is better: the epoch whose score first exceeds all earlier ones is the best one."""
        if math.isnan(record.val_loss):
            return (record.train_accuracy, -record.train_loss)
        return (record.val_balanced_accuracy, -record.val_loss)


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
