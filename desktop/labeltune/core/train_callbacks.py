"""The trainer's callbacks shared by both domains: progress, ``history.csv``, resume checkpoints.

The GUI bridge (epoch records and the start of training as Qt signals) is
``labeltune.workers.training.SignalCallback``; it uses the same hooks.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from labeltune.core.atomic import write_atomic, write_text_atomic
from labeltune.core.batch_plan import DeviceLostError
from labeltune.core.progress import Progress, ProgressCallback, no_progress
from labeltune.core.train_step import EpochRecord
from labeltune.core.trainer import Callback, Trainer

HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "checkpoint.pt"

log = logging.getLogger(__name__)


def write_history(run_dir: Path, history: Sequence[EpochRecord]) -> None:
    """Write ``history.csv`` (one row per epoch); the one writer of that file, for both domains.

    Whole or not at all (core/atomic.py): a full disk keeps the previous epochs' file, not half of it.
    """
    names = list(EpochRecord.__dataclass_fields__)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    for record in history:
        writer.writerow([getattr(record, n) for n in names])
    write_text_atomic(Path(run_dir) / HISTORY_FILE, text.getvalue())


class ProgressBar(Callback):
    """Reports each step as a :class:`Progress` (what the GUI's and the CLI's progress bars read).

    ``per_epoch=False`` (images): one bar over the whole run, stage ``"train"``, the message
    ``"epoch 3/10 loss 0.123"``. ``per_epoch=True`` (XRD): one bar per epoch, stage ``"Epoch 3/30"`` (or
    ``"<prefix>, epoch 3/30"``), the message the epoch's mean loss so far (none with ``show_loss=False``).
    """

    def __init__(
        self,
        progress: ProgressCallback,
        epochs: int,
        *,
        per_epoch: bool = False,
        prefix: str = "",
        show_loss: bool = True,
    ) -> None:
        self.progress, self.epochs = progress, epochs
        self.per_epoch, self.prefix, self.show_loss = per_epoch, prefix, show_loss
        #: The last out-of-memory notice, kept on every later message (the user reads it there).
        self.note = ""
        self._batch = (0, 1)

    def on_batch_end(self, trainer: Trainer, batch: int, batches: int, loss: float) -> None:
        """Report the step."""
        self._batch = (batch, batches)
        epoch = trainer.state.epoch + 1
        if not self.per_epoch:
            done = trainer.state.epoch * batches + batch
            message = self._noted(f"epoch {epoch}/{self.epochs} loss {loss:.3f}")
            self.progress(Progress("train", done, self.epochs * batches, message))
            return
        message = f"loss {trainer.running_loss:.4f}" if self.show_loss else ""
        self.progress(Progress(self._stage(trainer), batch, batches, self._noted(message)))

    def on_batch_plan_change(self, trainer: Trainer, plan: object, message: str) -> None:
        """Say at once that the step continues in smaller micro-batches (out of memory)."""
        self.note = message
        batch, batches = self._batch
        if not self.per_epoch:
            done = trainer.state.epoch * batches + batch
            epoch = f"epoch {trainer.state.epoch + 1}/{self.epochs}"
            self.progress(Progress("train", done, self.epochs * batches, self._noted(epoch)))
        else:
            self.progress(Progress(self._stage(trainer), batch, batches, message))

    def _stage(self, trainer: Trainer) -> str:
        of = f"{trainer.state.epoch + 1}/{self.epochs}"
        return f"{self.prefix}, epoch {of}" if self.prefix else f"Epoch {of}"

    def _noted(self, message: str) -> str:
        if not self.note:
            return message
        return f"{message} · {self.note}" if message else self.note


class History(Callback):
    """Writes ``history.csv`` after every epoch, and once more when the fit ends (or fails)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        """Rewrite the file with the new epoch."""
        write_history(self.run_dir, trainer.state.history)

    def on_fit_end(self, trainer: Trainer) -> None:
        """A run stopped before its first epoch still has the file (the header)."""
        write_history(self.run_dir, trainer.state.history)

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        """Keep the epochs that finished (if the disk lets us: the error being raised is the one to tell)."""
        try:
            write_history(self.run_dir, trainer.state.history)
        except OSError:
            log.exception("cannot write %s after the error; the previous one is kept", HISTORY_FILE)


def checkpoint_interval() -> float:
    """Seconds between resume checkpoints: 30, or ``LABELTUNE_CHECKPOINT_SECONDS`` (0: every epoch).

    The variable is for scripts on machines that get killed (preemptible cloud GPUs) and for the tests
    that kill a run; docs/adr/0041.
    """
    try:
        return max(0.0, float(os.environ.get("LABELTUNE_CHECKPOINT_SECONDS", "30")))
    except ValueError:
        return 30.0


class Checkpoints(Callback):
    """Writes the resume checkpoint (``checkpoint.pt``) at most every ``interval`` seconds.

    A checkpoint of a fully fine-tuned DenseNet is ~200 MB: writing it after every short GPU epoch would
    cost more than the epoch. The last epoch (and a Stop, early stop or error) always writes one.
    """

    def __init__(
        self, run_dir: Path, interval: float | None = None, progress: ProgressCallback = no_progress
    ) -> None:
        self.run_dir = Path(run_dir)
        self.interval = checkpoint_interval() if interval is None else interval
        self.progress = progress
        self._last = time.monotonic()
        self._saved_epoch = -1

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        """Save when the interval has passed, and after the last planned epoch."""
        if time.monotonic() - self._last >= self.interval or record.epoch >= trainer.epochs:
            self._save(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        """Save the final state (stopped or done)."""
        self._save(trainer)

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        """Save what finished before the error (not from a GPU that stopped answering: the last one stays)."""
        if trainer.state.epoch > 0 and not isinstance(error, DeviceLostError):
            try:
                self._save(trainer)
            except Exception:  # the error being raised is the one to report; the previous file is whole
                log.exception("cannot save a checkpoint after the error; the previous one is kept")

    def _save(self, trainer: Trainer) -> None:
        import torch

        if trainer.state.epoch == self._saved_epoch:
            return
        self.progress(Progress("save", 0, 1, "saving the model"))
        state = trainer.checkpoint()
        write_atomic(self.run_dir / CHECKPOINT_FILE, lambda tmp: torch.save(state, tmp))
        self._saved_epoch = trainer.state.epoch
        self._last = time.monotonic()


class EachEpoch(Callback):
    """Calls ``function(record)`` after every epoch (the CLI's one line per epoch)."""

    def __init__(self, function: Callable[[EpochRecord], None]) -> None:
        self.function = function

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        """Pass the record on."""
        self.function(record)
