"""The app's multi-GPU run: the CLI's ``train`` under ``torchrun``, in a child process the app watches.

:func:`torchrun_command` builds the command: from a Python install ``python -m torch.distributed.run ...
-m labeltune train ...``; from the installed (PyInstaller) app, which has no Python to run ``-m``, the
bundle's own executable twice: ``labeltune torchrun ... --no-python labeltune train ...`` (the frozen entry
runs ``torch.distributed.run`` in-process for its ``torchrun`` argument; installer/entry.py). With
``LABELTUNE_PROGRESS=json`` rank 0 writes its progress as lines ``@labeltune {json}`` on stderr
(:class:`ProgressLines`); :func:`read_line` turns them back into events, and :func:`load_run_result` the
finished run folder into the :class:`RunResult` an in-process run returns. See
docs/adr/0051-distributed-training-under-torchrun.md.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TextIO

from labeltune.core.datasets import SkippedFile
from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress
from labeltune.core.run_files import METRICS_FILE, RunResult
from labeltune.core.train_callbacks import HISTORY_FILE
from labeltune.core.train_config import TrainConfig
from labeltune.core.train_step import EpochRecord
from labeltune.core.trainer import Callback, Trainer

#: Set to ``json`` in the child's environment: rank 0 reports progress as :data:`PREFIX` lines on stderr.
PROGRESS_ENV = "LABELTUNE_PROGRESS"
PREFIX = "@labeltune "


def is_frozen() -> bool:
    """Whether this is the installed (PyInstaller) app, which has no Python interpreter to run ``-m``."""
    return bool(getattr(sys, "frozen", False))


def torchrun_command(
    data: Path | None,
    run_dir: Path,
    config: TrainConfig | None,
    gpus: int,
    *,
    frozen: bool | None = None,
    executable: str | None = None,
) -> list[str]:
    """The command that trains ``config`` on ``data`` into ``run_dir`` on ``gpus`` GPUs of this machine.

    ``config`` None continues the stopped run in ``run_dir`` (``train --resume``).
    """
    frozen = is_frozen() if frozen is None else frozen
    executable = executable or sys.executable
    launcher = ["--standalone", "--nproc-per-node", str(gpus)]  # one machine, a free port
    train = (
        ["train", "--resume", str(run_dir)]
        if config is None
        else ["train", str(data), *config_arguments(config)]
    )
    if config is not None:
        train += ["--out", str(run_dir)]
    train.append("--json")
    if frozen:
        return [executable, "torchrun", *launcher, "--no-python", executable, *train]
    return [executable, "-m", "torch.distributed.run", *launcher, "-m", "labeltune", *train]


#: TrainConfig fields the ``train`` command has no option for: a run that changes them cannot be launched.
_NO_OPTION = ("backbone_lr_factor", "freeze_batchnorm", "weight_decay", "class_balanced")


def config_arguments(config: TrainConfig) -> list[str]:
    """``config`` as ``labeltune train`` options (the fields at their defaults are left out)."""
    default = TrainConfig()
    for name in _NO_OPTION:
        if getattr(config, name) != getattr(default, name):
            raise UnusableInputError(f"a multi-GPU run cannot set {name.replace('_', ' ')}; train on one GPU")
    args = ["--backbone", config.backbone, "--strategy", config.strategy, "--weights", config.weights]
    args += ["--batch-size", str(config.batch_size), "--seed", str(config.seed), "--device", config.device]
    args += ["--patience", str(config.patience)]
    if config.epochs:
        args += ["--epochs", str(config.epochs)]
    if config.lr is not None:
        args += ["--lr", repr(config.lr)]
    if config.folds:  # a fold is the validation set
        args += ["--folds", str(config.folds), "--fold", str(config.fold + 1)]
    else:
        args += ["--val-fraction", str(config.val_fraction)]
    if config.group_by is not None:
        args += ["--group-by", config.group_by]
    if config.input_size is not None:
        args += ["--input-size", str(config.input_size)]
    if config.head_hidden:
        args += ["--head-hidden", str(config.head_hidden)]
    if not config.augment:
        args.append("--no-augment")
    if config.cached_views:
        args += ["--cached-views", str(config.cached_views)]
    if config.threads:
        args += ["--threads", str(config.threads)]
    return args


class ProgressLines(Callback):
    """Rank 0's progress for the app: each :class:`Progress` and trainer event as one ``@labeltune`` line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def _write(self, kind: str, value: Any) -> None:
        stream = self.stream or sys.stderr
        stream.write(PREFIX + json.dumps({kind: value}) + "\n")
        stream.flush()

    def __call__(self, progress: Progress) -> None:
        """The progress callback: one line."""
        self._write("progress", asdict(progress))

    def on_fit_start(self, trainer: Trainer) -> None:
        """The plan, and a resumed run's earlier epochs."""
        self._write("started", {"epochs": trainer.epochs, "batches": len(trainer.train_batches)})
        for record in trainer.state.history:
            self._write("epoch", record.to_json())

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        """The epoch's record."""
        self._write("epoch", record.to_json())

    def on_batch_plan_change(self, trainer: Trainer, plan: object, message: str) -> None:
        """Out of memory: smaller micro-batches follow."""
        self._write("notice", message)


def read_line(line: str) -> tuple[str, Any] | None:
    """``("progress", Progress)``, ``("started", {...})``, ``("epoch", EpochRecord)`` or ``("notice", str)``.

    None for any other line (torchrun's own, a warning).
    """
    if not line.startswith(PREFIX):
        return None
    try:
        ((kind, value),) = json.loads(line[len(PREFIX) :]).items()
        if kind == "progress":
            return kind, Progress(**value)
        if kind == "epoch":
            return kind, EpochRecord(**value)
        if kind in ("started", "notice"):
            return kind, value
    except (ValueError, TypeError, AttributeError):
        return None
    return None


def load_run_result(run_dir: Path) -> RunResult:
    """The :class:`RunResult` of the run in ``run_dir`` (from its ``metrics.json`` and ``history.csv``)."""
    run_dir = Path(run_dir)
    stored = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    summary = stored.pop("summary")
    names = {f.name for f in fields(EpochRecord)}
    history = []
    if (run_dir / HISTORY_FILE).is_file():
        with (run_dir / HISTORY_FILE).open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                values = {k: float(v) for k, v in row.items() if k in names}
                for whole in ("epoch", "batch_size", "micro_batch"):
                    values[whole] = int(values.get(whole, 0))
                history.append(EpochRecord(**values))  # type: ignore[arg-type]
    return RunResult(
        run_dir=run_dir,
        backbone=summary["backbone"],
        strategy=summary["strategy"],
        classes=list(summary["classes"]),
        train_size=int(summary["train_size"]),
        val_size=int(summary["val_size"]),
        metrics=stored,
        best_epoch=int(summary["best_epoch"]),
        epochs_run=int(summary["epochs_run"]),
        seconds_total=float(summary["seconds_total"]),
        seconds_features=float(summary["seconds_features"]),
        skipped=[SkippedFile(**s) for s in summary.get("skipped") or []],
        stopped=bool(summary["stopped"]),
        stopped_early=bool(summary.get("stopped_early")),
        weights_id=str(summary.get("weights_id") or ""),
        history=history,
        grouping=summary.get("grouping"),
        epochs_planned=int(summary.get("epochs_planned") or 0),
    )
