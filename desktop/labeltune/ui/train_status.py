"""Readable status of a training run: stage names, time left (ETA), epoch and summary lines.

Plain functions and one small class, no widgets: the Train panel shows what these return.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QProgressBar

from labeltune.core.datasets import SkippedFile
from labeltune.core.progress import Progress
from labeltune.core.trainer import EpochRecord
from labeltune.core.training import RunResult
from labeltune.ui.metrics_table import percent

STAGE_TEXT = {
    "scan": "Checking the images",
    "hash": "Reading the files",
    "decode": "Reading the images",
    "features": "Running the network over the images (kept for later runs)",
    "train": "Training",
    "reliability": "Calibrating the confidence and the unfamiliar-image check",
    "save": "Saving the model",
}

#: What a stopping run still waits for, by the stage it reported last (Stop is checked between steps).
STOPPING_TEXT = {
    "train": "finishing the current batch…",
    "features": "finishing the current batch of images…",
    "decode": "finishing the current batch of images…",
    "reliability": "leaving the calibration…",
    "save": "saving the model…",
}


def stopping_text(stage: str) -> str:
    """``Stopping — saving the model…``: what the user waits for after pressing Stop."""
    if stage.startswith("download"):
        return "Stopping — ending the download…"
    return f"Stopping — {STOPPING_TEXT.get(stage, 'finishing the current step…')}"


def show_progress(bar: QProgressBar, progress: Progress) -> None:
    """A determinate bar when the total is known, a busy one otherwise."""
    if progress.total > 0:
        bar.setRange(0, progress.total)
        bar.setValue(min(progress.done, progress.total))
    else:
        bar.setRange(0, 0)


def stage_text(progress: Progress) -> str:
    """A readable name for a progress stage."""
    if progress.stage.startswith("download"):
        return "Downloading the pretrained weights"
    return STAGE_TEXT.get(progress.stage, progress.stage.capitalize())


def duration_text(seconds: float) -> str:
    """``about 45 s`` / ``about 3 min 20 s`` / ``about 1 h 5 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"about {seconds} s"
    if seconds < 3600:
        return f"about {seconds // 60} min {seconds % 60:02d} s"
    return f"about {seconds // 3600} h {seconds % 3600 // 60:02d} min"


class EtaClock:
    """Estimates the time left in a stage from its rate since the stage's first report."""

    min_elapsed = 1.0

    def __init__(self) -> None:
        self.stage = ""
        self._start = 0.0
        self._done = 0

    def update(self, progress: Progress, now: float | None = None) -> float | None:
        """Seconds left in ``progress.stage``, or None while there is too little to go on."""
        now = time.monotonic() if now is None else now
        if progress.stage != self.stage or progress.done < self._done:
            self.stage, self._start, self._done = progress.stage, now, progress.done
            return None
        elapsed, advanced = now - self._start, progress.done - self._done
        if progress.total <= 0 or advanced <= 0 or elapsed < self.min_elapsed:
            return None
        return (progress.total - progress.done) * elapsed / advanced


def epoch_text(record: EpochRecord, epochs: int) -> str:
    """The metrics of one epoch, in one line."""
    of = f"/{epochs}" if epochs else ""
    seconds = f"{record.seconds:.1f} s" if record.seconds >= 0.05 else "< 0.1 s"
    return (
        f"Epoch {record.epoch}{of}: training loss {record.train_loss:.3f}, accuracy "
        f"{percent(record.train_accuracy)} · validation loss {record.val_loss:.3f}, accuracy "
        f"{percent(record.val_accuracy)}, macro-F1 {record.val_macro_f1:.3f} · {seconds}"
    )


def summary_text(result: RunResult) -> str:
    """What a finished run achieved, in a few lines of rich text."""
    summary = result.to_json()
    lines = []
    if result.stopped:
        lines.append(f"<b>Stopped</b> after epoch {result.epochs_run}; the best model so far is saved.")
    elif result.stopped_early:
        lines.append(f"<b>Stopped early</b> after epoch {result.epochs_run}: validation stopped improving.")
    else:
        lines.append(f"<b>Finished</b> {result.epochs_run} epochs.")
    accuracy = summary.get("val_accuracy")
    if isinstance(accuracy, float):
        from labeltune.core.metrics import headline_warnings

        n = result.val_size
        low, high = result.metrics["accuracy_interval"]  # a run of this version has it
        lines.append(
            f"Validation accuracy <b>{percent(accuracy)}</b> "
            f"(95 % interval {100 * low:.0f}–{100 * high:.0f} %), "
            f"balanced accuracy {percent(summary['val_balanced_accuracy'])}, macro-F1 "
            f"{summary['val_macro_f1']:.3f} (best epoch {result.best_epoch}) on {n} images; "
            f"{result.train_size} for training."
        )
        lines += [f"⚠ {w}" for w in headline_warnings(n, result.weights_id, (low, high))]
    else:
        lines.append(str(result.metrics.get("note", "No validation images, so no accuracy to report.")))
    lines.append(f"{result.seconds_total:.0f} s in total. The Results tab has the details.")
    if result.skipped:
        lines.append(skipped_text(result.skipped))
    return "<br>".join(lines)


def skipped_text(skipped: Sequence[SkippedFile], limit: int = 5) -> str:
    """The files a run left out, each named with its reason (rich text; the rest are in config.json)."""
    count = len(skipped)
    items = "".join(
        f"<li>{html.escape(Path(s.path).name)}: {html.escape(s.reason)}</li>" for s in skipped[:limit]
    )
    more = f" ({count - limit} more are listed in the run's config.json)" if count > limit else ""
    return f"⚠ {count} file{'s' if count != 1 else ''} left out{more}:<ul>{items}</ul>"
