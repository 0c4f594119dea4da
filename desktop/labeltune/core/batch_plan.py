"""How one training batch is cut into micro-batches, and what to do when the device runs out of memory.

The batch the user asked for (``batch``) is what one optimiser step sees; it is computed in micro-batches
of ``micro`` items whose gradients add up (gradient accumulation, ``accumulation`` passes per step), so
a smaller micro-batch changes memory use, not the training. When a step runs out of memory, the trainer
frees what it can, halves the micro-batch (:meth:`BatchPlan.halved`) and computes the same batch again;
at the floor it gives up with :class:`OutOfMemoryAtFloorError`. One mechanism: a memory probe that picks
the first micro-batch (issue 15) starts from a plan of its own. See docs/adr/0041.

Errors are recognised by their type or message, without importing torch here: CUDA's, MPS's and XPU's
out-of-memory errors, and a GPU that stopped answering (:func:`is_device_lost`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from labeltune.core.errors import LabelTuneError

__all__ = [
    "BatchPlan",
    "DeviceLostError",
    "OutOfMemoryAtFloorError",
    "is_device_lost",
    "is_out_of_memory",
]

#: Substrings of out-of-memory messages: CUDA ("CUDA out of memory"), MPS ("MPS backend out of memory"),
#: XPU ("XPU out of memory"), cuBLAS/cuDNN allocations and CPU allocators ("DefaultCPUAllocator: not
#: enough memory").
OUT_OF_MEMORY_TEXT = (
    "out of memory",
    "cublas_status_alloc_failed",
    "not enough memory",
    "cudnn_status_alloc",
)

#: Substrings of errors after which the GPU's memory cannot be trusted or reached any more.
DEVICE_LOST_TEXT = (
    "cuda error: unknown error",
    "device-side assert",
    "cuda error: an illegal memory access",
    "cuda error: unspecified launch failure",
    "cuda error: device not ready",
    "cuda error: no cuda-capable device",
    "cuda error: the launch timed out",
    "cuda error: uncorrectable ecc error",
    "cuda error: misaligned address",
    "device lost",
)


class OutOfMemoryAtFloorError(LabelTuneError):
    """The device ran out of memory even with the smallest micro-batch."""


class DeviceLostError(LabelTuneError):
    """The GPU stopped answering during training (driver reset, unplugged eGPU, a failed kernel)."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the device (or the host) ran out of memory during a step."""
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(error).__mro__):
        return True
    text = str(error).lower()
    return isinstance(error, (RuntimeError, MemoryError)) and (
        isinstance(error, MemoryError) or any(t in text for t in OUT_OF_MEMORY_TEXT)
    )


def is_device_lost(error: BaseException) -> bool:
    """Whether ``error`` says the GPU is gone or its state is broken (not out of memory)."""
    if not isinstance(error, RuntimeError) or is_out_of_memory(error):
        return False
    text = str(error).lower()
    return any(t in text for t in DEVICE_LOST_TEXT)


@dataclass(frozen=True)
class BatchPlan:
    """``batch`` items per optimiser step, computed ``micro`` at a time (never fewer than ``floor``)."""

    batch: int
    micro: int
    floor: int = 1

    @classmethod
    def of(cls, batch: int, micro: int = 0, floor: int = 1) -> BatchPlan:
        """The plan for ``batch`` with micro-batches of ``micro`` (0 or more than the batch: whole)."""
        batch = max(1, int(batch))
        micro = batch if micro <= 0 else min(int(micro), batch)
        return cls(batch, micro, max(1, min(floor, micro)))

    @property
    def accumulation(self) -> int:
        """Forward/backward passes per optimiser step (gradient accumulation steps)."""
        return math.ceil(self.batch / self.micro)

    def can_halve(self) -> bool:
        """Whether a smaller micro-batch is still allowed."""
        return self.micro > self.floor

    def halved(self) -> BatchPlan:
        """Half the micro-batch (rounded up, at least the floor); the batch per step stays the same."""
        if not self.can_halve():
            raise ValueError(f"micro-batch {self.micro} is already at the floor {self.floor}")
        return BatchPlan(self.batch, max(self.floor, math.ceil(self.micro / 2)), self.floor)

    def describe(self) -> str:
        """``32 x 2 accumulated`` (or ``64`` when the batch is computed whole)."""
        if self.accumulation == 1:
            return str(self.micro)
        return f"{self.micro} x {self.accumulation} accumulated"

    def out_of_memory_message(self, smaller: BatchPlan) -> str:
        """What the user is told when a step of this plan ran out of memory and ``smaller`` takes over."""
        return f"out of memory at batch {self.micro}: continuing with {smaller.describe()}"

    def floor_message(self) -> str:
        """Why training ends when even the floor's micro-batch does not fit."""
        return (
            f"out of memory even with a batch of {self.micro} on this device: use a smaller input size, "
            "a smaller network, the 'features' strategy, or the CPU"
        )
