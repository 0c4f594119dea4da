"""A batch that fits: one probe step measures the memory a training step takes, before the first epoch.

When the user gave no batch size, :class:`MemoryAwareBatch` (a trainer callback) runs one forward and
backward pass on a few items of the first batch, measures how much memory it took (CUDA: the allocator's
peak; CPU: the growth of the process's peak resident memory), and sets the trainer's micro-batch to the
largest that fits the device's free memory with a margin. The optimiser step keeps the requested batch:
the micro-batches' gradients add up, the mechanism of the out-of-memory retry (``core/batch_plan.py``,
docs/adr/0041). Nothing of the probe is kept: gradients, BatchNorm statistics and the random state are
restored, so a run whose whole batch fits trains exactly as one with an explicit batch size.
See docs/adr/0050.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune.core.batch_plan import BatchPlan, is_out_of_memory
from labeltune.core.trainer import Callback, Trainer

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Items in the probe step (fewer when the batch is smaller).
PROBE_ITEMS = 4
#: Share of the free memory a training step may plan to use (the rest: fragmentation, the OS, other apps).
MEMORY_SHARE = 0.6


@dataclass(frozen=True)
class ProbeResult:
    """What the probe measured and the plan it chose."""

    plan: BatchPlan
    free_bytes: int
    fixed_bytes: int  # gradients and optimiser state of the trainable parameters
    item_bytes: int  # activations per item, measured


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device``: CUDA's free memory; the host's available RAM (cgroup limit too)."""
    import torch

    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return _host_available()


def _host_available() -> int:
    """MemAvailable of /proc/meminfo (psutil elsewhere), capped by a cgroup v2 limit when there is one."""
    available = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if not available:
        try:
            import psutil  # type: ignore[import-untyped]

            available = int(psutil.virtual_memory().available)
        except ImportError:
            return 8 * 2**30  # nothing to measure with: assume a laptop's
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            available = min(available, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return available


def _peak_rss() -> int:
    """The process's peak resident memory in bytes (VmHWM), or 0 where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _current_rss() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak_rss() -> bool:
    """Start a new peak (``5`` to /proc/self/clear_refs, Linux 4.0+); False where that is not possible."""
    try:
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def step_memory(trainer: Trainer, part: Any) -> tuple[int, int]:
    """Bytes one forward + backward pass of ``part`` takes above what was in use before, less gradients.

    ``(activations, peak)``. CUDA: both are the allocator's peak. CPU: the bytes the forward pass saves for
    the backward pass (the activations: exact, whatever the allocator reuses), and the growth of the
    peak resident memory (noisy: the allocator may reuse memory it freed earlier, or not). Nothing of it
    is kept: the gradients are dropped and BatchNorm statistics restored.
    """
    import torch

    device = trainer.train_batches.device
    grads = sum(p.numel() * p.element_size() for p in trainer.model.parameters() if p.requires_grad)
    buffers = {k: v.detach().clone() for k, v in trainer.model.named_buffers()}
    trainer.optimizer.zero_grad(set_to_none=True)
    try:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            _probe_pass(trainer, part, device)
            torch.cuda.synchronize(device)
            peak = max(int(torch.cuda.max_memory_allocated(device) - before) - grads, 0)
            return peak, peak
        before = _current_rss()
        reset = _reset_peak_rss()
        saved = _probe_pass(trainer, part, device)
        grown = max(_peak_rss() - before - grads, 0) if reset else 0
        return saved, max(grown, saved)
    finally:
        trainer.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for name, value in trainer.model.named_buffers():
                if name in buffers:
                    value.copy_(buffers[name])


def _probe_pass(trainer: Trainer, part: Any, device: torch.device) -> int:
    """Forward and backward on ``part``; the bytes of the tensors (not weights) saved for the backward."""
    import torch

    from labeltune.core.device import mixed_precision

    storages: dict[int, int] = {}
    weights = {p.untyped_storage().data_ptr() for p in trainer.model.parameters()}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    dtype = mixed_precision(device.type, trainer.amp)
    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
        torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
    ):
        out = trainer.task.loss(trainer.model, part)
    out.loss.backward()
    return sum(storages.values())


def plan_for(batch: int, free: int, fixed: int, item: int) -> BatchPlan:
    """The micro-batch plan for ``batch`` items whose step needs ``fixed + item * n`` bytes for ``n`` items.

    The largest micro-batch that fits ``MEMORY_SHARE`` of ``free``, then evened out (a batch of 32 that
    fits 20 at a time runs as 16 x 2, not 20 + 12); at least 1, at most the batch.
    """
    budget = free * MEMORY_SHARE - fixed
    fits = batch if item <= 0 else int(budget // item)
    fits = max(1, min(batch, max(fits, 1)))
    passes = math.ceil(batch / fits)
    return BatchPlan.of(batch, math.ceil(batch / passes))


def probe(trainer: Trainer, batch: Any, free: int | None = None) -> ProbeResult:
    """Measure probe steps on the start of ``batch`` and plan its micro-batches for ``free`` bytes.

    Two probe steps, of ``PROBE_ITEMS`` and half as many items: their difference is the memory per item,
    the rest is per step (the weights' bf16 copies, workspace), added to the gradients and AdamW's state.
    On the CPU a first, unmeasured pass warms the allocator up.
    """
    n = trainer.task.size(batch)
    items = min(PROBE_ITEMS, n)
    device = trainer.train_batches.device
    free = free_memory(device) if free is None else free
    param_bytes = sum(p.numel() * p.element_size() for p in trainer.model.parameters() if p.requires_grad)
    fixed = 3 * param_bytes  # the gradients and AdamW's two moments
    sizes = sorted({max(1, items // 2), items})
    # CPU: a first pass unmeasured, so that one-time allocations (kernel caches, the autograd engine's
    # threads) are not taken for the step's own memory.
    passes = [sizes[-1], *sizes] if device.type == "cpu" else sizes
    try:
        measured = [step_memory(trainer, next(iter(trainer.task.split(batch, size)))) for size in passes]
        used, peaks = [m[0] for m in measured[-len(sizes) :]], [m[1] for m in measured[-len(sizes) :]]
    except Exception as error:  # the probe itself does not fit: start at its half, the retry goes on
        if not is_out_of_memory(error):
            raise
        return ProbeResult(BatchPlan.of(n, max(1, items // 2)), free, fixed, 0)
    if len(sizes) == 2 and used[1] > used[0]:
        item = (used[1] - used[0]) // (sizes[1] - sizes[0])
    else:
        item = used[-1] // sizes[-1]
    fixed += max(max(peaks) - item * sizes[-1], 0)  # per step: the weights' bf16 copies, workspace
    return ProbeResult(plan_for(n, free, fixed, item), free, fixed, item)


class MemoryAwareBatch(Callback):
    """Before the first epoch: the trainer's micro-batch becomes what fits (see the module docstring).

    ``free`` overrides the measured free memory (bytes, or a function returning them): for tests and for a
    user who wants to leave memory to other programs.
    """

    def __init__(self, free: int | Callable[[], int] | None = None) -> None:
        self.free = free
        self.result: ProbeResult | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        """Probe on the first batch of the next epoch and set ``trainer.micro_batch``."""
        if trainer.micro_batch or len(trainer.train_batches) == 0:
            return  # the caller chose a micro-batch
        import torch

        rng = torch.get_rng_state()  # the batch's augmentation and the probe's dropout draw nothing
        try:
            first = next(iter(trainer.train_batches.batches(trainer.state.epoch + 1)), None)
            if first is None:
                return
            free = self.free() if callable(self.free) else self.free
            self.result = probe(trainer, first, free)
        finally:
            torch.set_rng_state(rng)
        plan = self.result.plan
        log.info(
            "memory probe: %.0f MB free, %.1f MB per item, %.0f MB fixed: batch %s",
            self.result.free_bytes / 2**20, self.result.item_bytes / 2**20, self.result.fixed_bytes / 2**20,
            plan.describe(),
        )  # fmt: skip
        if plan.accumulation > 1:
            trainer.micro_batch = plan.micro
            message = (
                f"batch {plan.batch} does not fit the free memory "
                f"({self.result.free_bytes / 2**30:.1f} GB): computing it as {plan.describe()}"
            )
            for callback in trainer.callbacks:
                callback.on_batch_plan_change(trainer, plan, message)
