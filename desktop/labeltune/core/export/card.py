"""The model card of an export, machine readable (``<out>.card.json``): classes, preprocessing, checks, data.

What people read, ``<out>.card.md``, is rendered from it by :mod:`labeltune.core.export.card_markdown`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labeltune import __version__
from labeltune.core.export.formats import (
    ONNX_INPUT,
    ONNX_OPSET,
    OOD_OUTPUT,
    RTOL,
    VERIFY_BATCHES,
    VERIFY_SEED,
)
from labeltune.core.hashing import file_sha256
from labeltune.core.model import ModelConfig

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.csv"
CARD_VERSION = 1

#: What each preprocessing id means, for people reading the card.
PREPROCESSING_DESCRIPTIONS: dict[str, str] = {
    "rgb-exif-white-squash-bilinear-v1": (
        "Decode the image and rotate it upright according to its EXIF orientation; composite any alpha "
        "channel on white; convert to 8-bit RGB; resize (squash, the aspect ratio is not kept, no crop) "
        "to {size}x{size} pixels with bilinear interpolation; scale to float32 in [0, 1] (divide by 255); "
        "arrange as NCHW."
    ),
}


def _read_metrics(run_dir: Path) -> Any:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.warning("ignoring unreadable %s: %s", path, exc)
        return None


def _read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """Return the manifest's sha256 and image counts per split (and per label within each split)."""
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = {"manifest_file": MANIFEST_FILE, "manifest_sha256": file_sha256(path)}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        logger.warning("cannot count the rows of %s: %s", path, exc)
        return data
    splits: Counter[str] = Counter()
    per_label: dict[str, Counter[str]] = {}
    for row in rows:
        split = (row.get("split") or "").strip() or "unassigned"
        label = (row.get("label") or "").strip() or "unlabelled"
        splits[split] += 1
        per_label.setdefault(split, Counter())[label] += 1
    data["columns"] = columns
    data["images"] = len(rows)
    order = {name: i for i, name in enumerate(("train", "val", "validation", "test"))}
    split_names = sorted(splits, key=lambda name: (order.get(name, len(order)), name))
    data["counts_per_split"] = {name: splits[name] for name in split_names}
    data["counts_per_split_and_label"] = {name: dict(sorted(per_label[name].items())) for name in split_names}
    return data


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats (not valid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def build_card(
    *,
    run_dir: Path,
    run_config: dict[str, Any],
    config: ModelConfig,
    fmt: str,
    path: Path,
    sha256: str,
    exporter: str,
    max_abs_diff: float,
    tolerance: float,
    familiarity: Any = None,
) -> dict[str, Any]:
    """Return the machine-readable model card of an exported file."""
    import torch

    from labeltune.core.backbones import get_spec

    spec = get_spec(config.backbone)
    size = config.input_size
    description = PREPROCESSING_DESCRIPTIONS.get(config.preprocessing)
    resize_rule = (
        description.format(size=size)
        if description
        else f"LabelTune preprocessing {config.preprocessing!r}, resized to {size}x{size} pixels"
    )
    software: dict[str, str] = {"labeltune": __version__, "torch": torch.__version__.split("+")[0]}
    if fmt == "onnx":
        import onnxruntime

        software["onnxruntime"] = onnxruntime.__version__
    outputs: list[dict[str, Any]] = [
        {
            "name": "logits",
            "shape": ["N", len(config.classes)],
            "dtype": "float32",
            "description": "unnormalised class scores; argmax is the predicted class",
        },
    ]
    outputs.append(
        {
            "name": "probabilities",
            "shape": ["N", len(config.classes)],
            "dtype": "float32",
            "description": f"calibrated confidence: softmax(logits / {config.temperature:.4g}), the "
            "temperature fitted on the validation split",
        }
    )
    if familiarity is not None:
        outputs.append(
            {
                "name": OOD_OUTPUT,
                "shape": ["N"],
                "dtype": "float32",
                "description": "how unlike the training images the input is; above 1 it is unfamiliar "
                "and its prediction deserves less trust",
            }
        )
    train = run_config.get("train")
    card: dict[str, Any] = {
        "card_version": CARD_VERSION,
        "labeltune_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": run_dir.resolve().name,
        "file": {
            "name": path.name,
            "format": fmt,
            "sha256": sha256,
            "size_bytes": path.stat().st_size,
            "exporter": exporter,
        },
        "backbone": {"name": config.backbone, "title": spec.title},
        "classes": list(config.classes),
        "num_classes": len(config.classes),
        "input": {
            "name": ONNX_INPUT if fmt == "onnx" else "x (first positional argument)",
            "shape": ["N", 3, size, size],
            "size": size,
            "dtype": "float32",
            "layout": "NCHW",
            "channel_order": "RGB",
            "value_range": [0.0, 1.0],
            "preprocessing": config.preprocessing,
            "resize": resize_rule,
        },
        "normalization": {
            "inside_model": True,
            "mean": list(config.mean),
            "std": list(config.std),
            "note": "applied by the model itself; feed [0, 1] RGB, do not normalise again",
        },
        "outputs": outputs,
        "head": {"hidden": config.head_hidden, "dropout": config.head_dropout},
        "calibration": {
            "temperature": config.temperature,
            "applied_to": "probabilities = softmax(logits / temperature)",
            "report": (_read_metrics(run_dir) or {}).get("calibration"),
        },
        "unfamiliar": (
            {
                "output": OOD_OUTPUT,
                "unfamiliar_when_above": 1.0,
                "false_alarm_target": familiarity.false_alarm,
                "representations": {
                    name: {"dims": int(d.means.shape[1]), "components": int(d.components.shape[0])}
                    for name, d in familiarity.densities.items()
                },
                "report": familiarity.report,
            }
            if familiarity is not None
            else None
        ),
        "model_extra": config.extra,
        "verification": {
            "runtime": "onnxruntime (CPU)" if fmt == "onnx" else "torch.jit.load",
            "batch_sizes": list(VERIFY_BATCHES),
            "seed": VERIFY_SEED,
            "max_abs_diff_logits": max_abs_diff,
            "tolerance": tolerance,
            "tolerance_rule": f"{RTOL:g} * max(1, max |PyTorch logit|)",
            "passed": True,
        },
        "software": software,
        "metrics": _read_metrics(run_dir),
        "training": train if isinstance(train, dict) else None,
        "data": _read_manifest(run_dir),
    }
    if fmt == "onnx":
        card["file"]["opset"] = ONNX_OPSET
    return _json_safe(card)  # type: ignore[no-any-return]
