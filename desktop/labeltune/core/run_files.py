"""The files of an image run folder besides the model: ``config.json`` and the summary of ``metrics.json``.

(``history.csv`` and ``checkpoint.pt`` are written by the trainer's callbacks, ``core/train_callbacks.py``;
``manifest.csv`` by ``core/train_data.py``; ``model.safetensors`` by ``core/model.py``.)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labeltune import __version__
from labeltune.core.atomic import write_text_atomic
from labeltune.core.datasets import Dataset, SkippedFile
from labeltune.core.model import CONFIG_FILE, ModelConfig
from labeltune.core.run_schema import RUN_SCHEMA, RUN_SCHEMA_KEY
from labeltune.core.train_config import TrainConfig
from labeltune.core.train_step import EpochRecord

METRICS_FILE = "metrics.json"


@dataclass
class RunResult:
    """What a finished (or stopped) run reports; ``to_json`` is the CLI's ``train --json`` object."""

    run_dir: Path
    backbone: str
    strategy: str
    classes: list[str]
    train_size: int
    val_size: int
    metrics: dict[str, Any]
    best_epoch: int
    epochs_run: int
    seconds_total: float
    seconds_features: float
    skipped: list[SkippedFile]
    stopped: bool = False
    stopped_early: bool = False
    weights_id: str = ""
    history: list[EpochRecord] = field(default_factory=list)
    grouping: dict[str, Any] | None = None  # core/grouping.py: grouping_record()
    epochs_planned: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (a run that added classes or was distilled: those figures too)."""
        extra = {**(self.metrics.get("added_classes") or {})}
        if self.metrics.get("distill"):
            extra["distill"] = self.metrics["distill"]
        return {
            "run_dir": str(self.run_dir),
            "backbone": self.backbone,
            "strategy": self.strategy,
            "weights_id": self.weights_id,
            "classes": self.classes,
            "train_size": self.train_size,
            "val_size": self.val_size,
            "val_accuracy": self.metrics.get("accuracy"),
            "val_balanced_accuracy": self.metrics.get("balanced_accuracy"),
            "val_macro_f1": self.metrics.get("macro_f1"),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "epochs_planned": self.epochs_planned,
            "stopped": self.stopped,
            "stopped_early": self.stopped_early,
            "seconds_total": round(self.seconds_total, 3),
            "seconds_features": round(self.seconds_features, 3),
            "temperature": (self.metrics.get("calibration") or {}).get("temperature"),
            "ece_before": (self.metrics.get("calibration") or {}).get("ece_before"),
            "ece_after": (self.metrics.get("calibration") or {}).get("ece_after"),
            "val_unfamiliar_rate": (self.metrics.get("unfamiliar") or {}).get("val_unfamiliar_rate"),
            "skipped": [s.to_json() for s in self.skipped],
            "grouping": self.grouping,
            **extra,
        }


def write_run_config(
    run_dir: Path,
    config: TrainConfig,
    model_config: ModelConfig,
    weights_id: str,
    device: str,
    source: Dataset | None,
    skipped: Sequence[SkippedFile] = (),
    grouping: dict[str, Any] | None = None,
) -> None:
    """Write the run's ``config.json`` (the settings, the model, the data; ``created`` is kept)."""
    path = run_dir / CONFIG_FILE
    previous = json.loads(path.read_text()) if path.is_file() else {}
    content = {
        RUN_SCHEMA_KEY: RUN_SCHEMA,
        "labeltune_version": __version__,
        "created": previous.get("created", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")),
        "model": asdict(model_config),
        "train": asdict(config),
        "weights_id": weights_id,
        "device": device,
        "data": previous.get("data")
        or (
            {"source": str(source.root), "kind": source.kind, "skipped": [x.to_json() for x in skipped]}
            if source is not None
            else None
        ),
        "grouping": grouping or previous.get("grouping"),
    }
    write_text_atomic(path, json.dumps(content, indent=2))
