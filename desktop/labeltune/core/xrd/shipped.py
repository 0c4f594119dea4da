"""Where the app's own pretrained XRD model lives (``models/`` beside the package, or a bundle's copy)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SHIPPED_MODEL = "xrd-li-mn-ti-o-f"
"""The model pretrained by the project on the Li-Mn-Ti-O-F demo library (56 CIFs)."""


def models_dirs() -> list[Path]:
    """Folders searched for shipped models, first match wins."""
    dirs: list[Path] = []
    env = os.environ.get("LABELTUNE_MODELS_DIR")
    if env:
        dirs.append(Path(env))
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        dirs.append(Path(bundle) / "models")
    dirs.append(Path(__file__).resolve().parents[4] / "models")  # a source checkout: <repo>/models
    return dirs


def shipped_model_dir(name: str = SHIPPED_MODEL) -> Path | None:
    """The shipped XRD run folder ``name``, or None when this installation does not have it."""
    for base in models_dirs():
        candidate = base / name
        if (candidate / "config.json").is_file() and (candidate / "model.safetensors").is_file():
            return candidate
    return None
