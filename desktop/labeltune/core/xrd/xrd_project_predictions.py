"""An XRD project's saved identifications: the current model's latest predictions, in ``predictions.json``.

A mixin of :class:`~labeltune.core.xrd.xrd_project.XrdProject`, which gives it the folder, the model and
the path keys. The file is keyed by pattern and tagged with the model, so reopening the project shows the
identifications again, and a change of model hides the other model's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune.core.atomic import write_text_atomic

__all__ = ["PREDICTIONS_FILE", "XrdPredictionsMixin"]

PREDICTIONS_FILE = "predictions.json"


class XrdPredictionsMixin:
    """Saving and loading the model's latest identifications."""

    folder: Path

    if TYPE_CHECKING:  # XrdProject's

        def key(self, path: str | os.PathLike[str]) -> str:
            """The project-relative POSIX path used in ``labels.csv`` for a pattern file."""

        @property
        def model_dir(self) -> Path | None:
            """The XRD model run folder used to identify phases, or ``None``."""

    def save_predictions(self, predictions: Iterable[Any]) -> None:
        """Keep the model's latest identifications (``XrdPrediction``s) in ``predictions.json``.

        Keyed by pattern and tagged with the model, so reopening the project shows them again.
        """
        path = self.folder / PREDICTIONS_FILE
        model = self.model_dir
        stored: dict[str, Any] = {"model": None if model is None else str(model), "patterns": {}}
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(old, dict) and old.get("model") == stored["model"]:
                stored["patterns"] = dict(old.get("patterns") or {})
        except (OSError, ValueError):
            pass
        for prediction in predictions:
            data = prediction.to_json()
            data["path"] = self.key(prediction.path)
            stored["patterns"][data["path"]] = data
        write_text_atomic(path, json.dumps(stored, indent=1))

    def load_predictions(self) -> dict[str, Any]:
        """The saved identifications of the current model: pattern key -> ``XrdPrediction``.

        Empty when there are none, they belong to another model, or the file is damaged.
        """
        from labeltune.core.xrd.results import XrdPrediction

        try:
            stored = json.loads((self.folder / PREDICTIONS_FILE).read_text(encoding="utf-8"))
            model = self.model_dir
            if not isinstance(stored, dict) or stored.get("model") != (None if model is None else str(model)):
                return {}
            out = {}
            for key, data in (stored.get("patterns") or {}).items():
                prediction = XrdPrediction.from_json({**data, "path": str(self.folder / key)})
                out[str(key)] = prediction
            return out
        except (OSError, ValueError, KeyError, TypeError):
            return {}
