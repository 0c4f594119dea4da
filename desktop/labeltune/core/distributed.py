"""Training under PyTorch's own launcher: ``torchrun --nproc-per-node N -m labeltune train ...``.

When ``torchrun`` starts the command (``WORLD_SIZE`` > 1), :func:`run_in_group` joins the process group
(NCCL on CUDA GPUs, gloo on CPUs), runs the same trainer in every process and tears the group down so that
the processes end cleanly. The trainer itself stays one loop (docs/adr/0022); this module gives it:

- :func:`prepare_trainer`: the model wrapped in ``DistributedDataParallel`` for the training passes (the
  trainer keeps the plain model for validation, checkpoints and the best weights), the epoch's training
  sums added up over the ranks, and :class:`AgreedBatches`, where the ranks agree on Stop before each step;
- sharding: each optimiser step's global batch is split over the ranks (``TensorBatches(shard=...)``),
  the validation items too, and :func:`gather_validation` puts the validation outputs back together on
  every rank, so that every rank computes the same metrics, best epoch and early stop;
- :func:`local_main_first`: the feature cache is filled once per machine (its local rank 0), the other
  ranks read it;
- :func:`is_main`: only rank 0 writes the run folder, checkpoints, progress and JSON.

Stop: torchrun passes SIGINT/SIGTERM on to every rank; each sets its own event, and the ranks agree on it
before each step (an all-reduce of one number), so they leave the same step together and rank 0 writes
the checkpoint. See docs/adr/0051-distributed-training-under-torchrun.md.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from labeltune.core.errors import LabelTuneError
from labeltune.core.progress import StoppedError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from labeltune.core.train_step import BatchSource, Validation
    from labeltune.core.trainer import Trainer

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """The place of this process among the ranks of one torchrun job."""

    rank: int
    size: int
    local_rank: int
    local_size: int
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes the run folder and prints."""
        return self.rank == 0

    def collective_device(self) -> torch.device:
        """Where small tensors for collectives live: the rank's GPU under NCCL, else the CPU."""
        import torch

        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


_world: World | None = None


def launched(environ: Mapping[str, str] | None = None) -> bool:
    """Whether torchrun (or srun with its variables) started this process as one of several ranks."""
    env = os.environ if environ is None else environ
    try:
        return int(env.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def world() -> World | None:
    """The :class:`World` of this process while in a group of several ranks; None otherwise."""
    return _world


def is_main() -> bool:
    """True outside a torchrun job, and on its rank 0."""
    return _world is None or _world.is_main


def rank_threads(local_size: int, cpus: int | None = None) -> int:
    """Intra-op threads per rank on a CPU: the cores shared out (``set_num_threads`` is per process)."""
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, local_size))


def join(device: str = "auto", threads: int | None = None) -> World:
    """Join the process group torchrun described in the environment; NCCL on CUDA GPUs, else gloo."""
    import torch
    import torch.distributed as dist

    global _world
    env = os.environ
    local_rank = int(env.get("LOCAL_RANK", "0"))
    local_size = int(env.get("LOCAL_WORLD_SIZE", env.get("WORLD_SIZE", "1")))
    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local_rank)
    elif not threads:
        torch.set_num_threads(rank_threads(local_size))
    dist.init_process_group(backend=backend)
    _world = World(dist.get_rank(), dist.get_world_size(), local_rank, local_size, backend)
    log.info("rank %d of %d (%s)", _world.rank, _world.size, backend)
    return _world


def leave(code: int) -> NoReturn:
    """End this rank cleanly: wait for the others, drop the group, flush, and exit without teardown.

    Without it about one run in three died after its work with "terminate called without an active
    exception" (gloo's threads met the interpreter's shutdown); ``os._exit`` skips that shutdown.
    """
    import torch.distributed as dist

    global _world
    try:
        if dist.is_initialized():
            dist.barrier()
            gc.collect()  # the DistributedDataParallel wrapper and its reducer go before the group
            dist.destroy_process_group()
    finally:
        _world = None
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_in_group(work: Callable[[], int], device: str = "auto", threads: int | None = None) -> int:
    """Run ``work`` (a CLI command) as one rank of the torchrun job; exit the process with its status.

    An error is raised on as in a single process (the CLI prints its one line); torchrun then ends the
    other ranks.
    """
    join(device, threads)
    try:
        code = work()
    except BaseException:
        _abandon()
        raise
    leave(code)


def _abandon() -> None:
    """After an error: leave the group without waiting for ranks that may be in another collective."""
    import torch.distributed as dist

    global _world
    _world = None
    try:
        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # the error being raised is the one to report
        log.debug("could not destroy the process group", exc_info=True)


# -- small collectives ------------------------------------------------------------------------------------
def from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank (e.g. the run folder's name, which holds the time and a random id)."""
    if _world is None:
        return value
    import torch.distributed as dist

    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[no-any-return]


def all_max(values: list[float]) -> list[float]:
    """The largest of each value over the ranks."""
    return _all_reduce(values, "max")


def all_sum(values: list[float]) -> list[float]:
    """The sum of each value over the ranks."""
    return _all_reduce(values, "sum")


def _all_reduce(values: list[float], op: str) -> list[float]:
    if _world is None:
        return list(values)
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=_world.collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return [float(v) for v in tensor.cpu()]


_STOPPED, _FAILED = 1.0, 2.0


def local_main_first(work: Callable[[bool], T]) -> T:
    """``work(True)`` on local rank 0 of each machine (filling the cache), then ``work(False)`` elsewhere.

    The others read what the first ones wrote (the feature cache). Stop (or an error) on a first rank ends
    every rank: the others raise :class:`StoppedError` (or a one-line error).
    """
    if _world is None:
        return work(True)
    first = _world.local_rank == 0
    result = _first_then(lambda: work(True), first)
    return result if first else work(False)  # type: ignore[return-value]


def main_only(work: Callable[[], None]) -> None:
    """``work()`` on rank 0 alone (making the run folder); its error or Stop ends every rank."""
    if _world is None:
        work()
        return
    _first_then(work, _world.is_main)


def _first_then(work: Callable[[], T], first: bool) -> T | None:
    """``work()`` where ``first``; then every rank learns whether it stopped or failed, and raises if so."""
    outcome: float = 0.0
    result: T | None = None
    failure: BaseException | None = None
    if first:
        try:
            result = work()
        except StoppedError as error:
            outcome, failure = _STOPPED, error
        except BaseException as error:
            outcome, failure = _FAILED, error
    (agreed,) = all_max([outcome])
    if failure is not None:
        raise failure
    if agreed == _STOPPED:
        raise StoppedError()
    if agreed == _FAILED:
        raise LabelTuneError("another process of this torchrun job failed (its message is above)")
    return result


# -- the trainer's hooks -----------------------------------------------------------------------------------
def shard() -> tuple[int, int]:
    """``(rank, ranks)``: which share of each global batch this process takes; ``(0, 1)`` alone."""
    return (0, 1) if _world is None else (_world.rank, _world.size)


def validation_share(n: int) -> Any:
    """The indices of ``n`` validation items this rank validates (every ``size``-th, from its rank)."""
    import torch

    rank, size = shard()
    return torch.arange(rank, n, size)


def gather_validation(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Each rank's :func:`validation_share` outputs put back together in the items' order, on every rank."""
    if _world is None:
        return list(tensors)
    import torch
    import torch.distributed as dist

    parts: list[Any] = [None] * _world.size
    dist.all_gather_object(parts, [t.cpu() for t in tensors])
    whole = []
    for k, first in enumerate(parts[0]):
        n = sum(len(p[k]) for p in parts)
        out = torch.empty((n, *first.shape[1:]), dtype=first.dtype)
        for r, part in enumerate(parts):
            out[r :: _world.size] = part[k]
        whole.append(out)
    return whole


class AgreedBatches:
    """A batch source whose ranks agree on Stop before each step and share rank 0's buffers after the epoch.

    ``local_stop`` is set by this rank's signal handler; ``agreed_stop`` (the trainer's) only when the
    ranks agree, at the same step on every rank, so none is left waiting in a collective for another.
    """

    def __init__(
        self,
        source: BatchSource,
        model: nn.Module,
        local_stop: threading.Event,
        agreed_stop: threading.Event,
    ) -> None:
        self.source, self.model = source, model
        self.local_stop, self.agreed_stop = local_stop, agreed_stop
        self.device = source.device

    def __len__(self) -> int:
        return len(self.source)

    @property
    def batch_size(self) -> int:
        """The source's global batch (what history.csv records)."""
        return int(getattr(self.source, "batch_size", 0))

    def agree(self) -> None:
        """Raise :class:`StoppedError` on every rank when any rank was asked to stop."""
        (stop,) = all_max([1.0 if self.local_stop.is_set() else 0.0])
        if stop:
            self.agreed_stop.set()
            raise StoppedError()

    def batches(self, epoch: int) -> Iterator[Any]:
        """The source's batches, Stop agreed before each; BatchNorm statistics shared at the end."""
        for batch in self.source.batches(epoch):
            self.agree()
            yield batch
        self.agree()
        share_buffers(self.model)


def share_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm statistics) on every rank, so that each validates the same model."""
    if _world is None:
        return
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)


def prepare_trainer(trainer: Trainer, local_stop: threading.Event) -> None:
    """Make ``trainer`` one rank of a data-parallel fit (nothing outside a torchrun job).

    ``trainer.stop_event`` must be a fresh event of its own: it is set only when the ranks agree.
    """
    if _world is None:
        return
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from labeltune.core.image_task import ClassificationTask, TensorBatches

    if _world.rank:  # augmentation and dropout draw differently on each rank (the weights are rank 0's)
        torch.manual_seed(torch.initial_seed() + _world.rank)
    model = trainer.model
    device = next(model.parameters()).device
    ids = [device.index] if device.type == "cuda" else None
    trainer.train_model = DistributedDataParallel(model, device_ids=ids)
    source = trainer.train_batches
    if hasattr(source, "shard"):  # images: TensorBatches; XRD: SimulatedBatches
        source.shard = shard()
    trainer.train_batches = AgreedBatches(source, model, local_stop, trainer.stop_event)
    trainer.reduce_sums = all_sum
    task = trainer.task
    if isinstance(task, ClassificationTask) and task.val is not None and len(task.val.y) >= _world.size:
        val = task.val
        share = validation_share(len(val.y))
        task.val = TensorBatches(
            val.x[share], val.y[share], val.batch_size, val.device, transform=val.transform
        )
        task.gather = gather_validation
    elif not isinstance(task, ClassificationTask):  # XRD: rank 0 validates; every rank takes its numbers
        validate = task.validate

        def validated_on_main(model: nn.Module, stop_event: threading.Event) -> Validation:
            numbers = from_main(validate(model, stop_event) if is_main() else None)
            assert numbers is not None
            return numbers

        task.validate = validated_on_main  # type: ignore[method-assign]


def describe(environ: Mapping[str, str] | None = None) -> str:
    """``rank 1 of 4`` from torchrun's variables ("" outside a torchrun job): for log lines and errors."""
    env = os.environ if environ is None else environ
    if not launched(env):
        return ""
    return f"rank {env.get('RANK', '?')} of {env.get('WORLD_SIZE', '?')}"
