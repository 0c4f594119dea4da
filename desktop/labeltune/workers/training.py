"""Training in a worker thread: epoch records and batch progress become signals (both domains)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeltune.core.train_config import TrainConfig
from labeltune.core.trainer import Callback, EpochRecord, Trainer
from labeltune.workers.tasks import Worker


@dataclass(frozen=True)
class TrainingStarted:
    """Sent once training proper starts (after features are cached)."""

    epochs: int
    batches_per_epoch: int


@dataclass(frozen=True)
class TrainingNotice:
    """Something the user should know mid-run: the device ran out of memory, smaller micro-batches follow."""

    message: str


class SignalCallback(Callback):
    """The GUI bridge: :class:`TrainingStarted` when the fit starts, then each :class:`EpochRecord`.

    Used by the image and the XRD training workers alike; the signals cross to the GUI thread queued.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def on_fit_start(self, trainer: Trainer) -> None:
        """Report the plan, and replay a resumed run's earlier epochs."""
        self.worker.reported.emit(TrainingStarted(trainer.epochs, len(trainer.train_batches)))
        for record in trainer.state.history:  # a resumed run shows its earlier epochs
            self.worker.reported.emit(record)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        """Report the epoch."""
        self.worker.reported.emit(record)

    def on_batch_plan_change(self, trainer: Trainer, plan: object, message: str) -> None:
        """Report that training goes on in smaller micro-batches (out of memory)."""
        self.worker.reported.emit(TrainingNotice(message))


class TrainWorker(Worker):
    """Runs :func:`labeltune.core.training.train` (or ``resume``) on a data source."""

    def __init__(
        self, data_source: Path, config: TrainConfig | None, run_dir: Path, resume: bool = False
    ) -> None:
        super().__init__()
        self.data_source = Path(data_source)
        self.config = config
        self.run_dir = Path(run_dir)
        self.resume = resume

    def work(self) -> Any:
        """Scan the data and train; returns the :class:`~labeltune.core.training.RunResult`."""
        from labeltune.core import training
        from labeltune.core.datasets import scan

        callbacks = [SignalCallback(self)]
        if self.resume:
            return training.resume(self.run_dir, self.report, self.stop_event, callbacks)
        assert self.config is not None, "a new run needs its TrainConfig"
        data = scan(self.data_source, progress=self.report)
        return training.train(data, self.config, self.run_dir, self.report, self.stop_event, callbacks)
