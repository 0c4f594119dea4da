"""Export a finished run's model to ONNX or TorchScript, check it, and write a model card beside it.

The exported model takes ``image``, float32 RGB in ``[0, 1]`` with shape ``(N, 3, S, S)`` (any ``N``),
normalises inside (see :mod:`labeltune.core.model`), and returns, in this order:

* ``logits`` over the run's classes in the order of ``config.classes``;
* ``probabilities``: the *calibrated* confidence, ``softmax(logits / T)`` with the run's fitted temperature
  (core/calibration.py), the same numbers ``labeltune predict`` reports;
* ``ood_score`` (runs that have one): how unlike the training images the input is; above 1 it is
  *unfamiliar* (core/familiarity.py). The densities and the threshold are constants inside the model.

Both formats have these outputs: ONNX (opset 18, one self-contained ``.onnx`` file, dynamic batch axis,
made by the ``torch.export``-based exporter, which needs *onnxscript*, with the legacy TorchScript-based
exporter as a fallback) as named outputs, TorchScript (``torch.jit.trace``, saved with ``torch.jit.save``;
``torch.jit`` is deprecated in recent PyTorch, its warnings are silenced here) as a tuple.

Both files embed a small JSON description (classes, input size, preprocessing, mean/std, outputs,
temperature): in ONNX as the ``labeltune`` metadata property, in TorchScript as the extra file
``labeltune.json``.

After writing, the file is loaded back with its own runtime (onnxruntime, ``torch.jit.load``) and run on a
fixed random batch; if its logits differ from PyTorch's by more than ``RTOL * max(1, max |logit|)`` (or its
other outputs by more than what that explains) the file is deleted and :class:`LabelTuneError` is raised.
The model card is ``<out>.card.json`` (machine readable) and ``<out>.card.md`` (for people); it carries the
temperature and the unfamiliar-score statistics.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune import __version__
from labeltune.core.errors import LabelTuneError, UnusableInputError, describe_weights_error
from labeltune.core.hashing import file_sha256
from labeltune.core.model import CONFIG_FILE, MODEL_FILE, ModelConfig, load_model
from labeltune.core.progress import Progress, ProgressCallback
from labeltune.core.run_schema import check_run_schema

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

logger = logging.getLogger(__name__)

#: Export formats and the file suffix each gets when ``out`` has none.
FORMATS: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt"}
#: ONNX operator set written (the torch.export-based exporter's native opset; onnxruntime >= 1.14 runs it).
ONNX_OPSET = 18
ONNX_INPUT = "image"
ONNX_OUTPUTS = ("logits", "probabilities")
OOD_OUTPUT = "ood_score"
#: Relative tolerance of the exported ``ood_score`` (float32 Mahalanobis distances through another runtime).
OOD_RTOL = 1e-2
#: Verification tolerance: max |logit difference| <= RTOL * max(1, max |logit|). PyTorch's own float32
#: error on deep nets reaches ~1e-4 of the logit scale (measured 6e-5 against float64 on inception_v3),
#: and onnxruntime differs by as much; genuine export bugs (wrong layer, normalisation, channel order)
#: give differences of the order of the logits themselves.
RTOL = 1e-3
#: Rounding slack on the ONNX ``probabilities`` beyond what the logit difference explains.
PROB_ATOL = 1e-5
#: Batch sizes checked after export; the export itself traces batch size 2, so both test the batch axis.
VERIFY_BATCHES = (3, 1)
VERIFY_SEED = 0
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.csv"
CARD_VERSION = 1
_STEPS = 4

#: What each preprocessing id means, for people reading the card.
PREPROCESSING_DESCRIPTIONS: dict[str, str] = {
    "rgb-exif-white-squash-bilinear-v1": (
        "Decode the image and rotate it upright according to its EXIF orientation; composite any alpha "
        "channel on white; convert to 8-bit RGB; resize (squash, the aspect ratio is not kept, no crop) "
        "to {size}x{size} pixels with bilinear interpolation; scale to float32 in [0, 1] (divide by 255); "
        "arrange as NCHW."
    ),
}


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and how closely the export matches PyTorch."""

    path: Path
    card_path: Path
    format: str
    max_abs_diff: float
    markdown_path: Path | None = None
    tolerance: float = 0.0
    exporter: str = ""
    sha256: str = ""


def _report(progress: ProgressCallback | None, done: int, message: str) -> None:
    logger.info("export: %s", message)
    if progress is not None:
        progress(Progress("export", done, _STEPS, message))


def _normalise_format(fmt: str) -> str:
    name = str(fmt).strip().lower()
    if name not in FORMATS:
        raise UnusableInputError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return name


def _resolve_out(out: Path, run_dir: Path, fmt: str) -> Path:
    out = Path(out)
    if out.is_dir():
        out = out / f"{run_dir.resolve().name or 'model'}{FORMATS[fmt]}"
    elif not out.suffix:
        out = out.with_name(out.name + FORMATS[fmt])
    return out


def _card_paths(out: Path) -> tuple[Path, Path]:
    return out.with_name(out.name + ".card.json"), out.with_name(out.name + ".card.md")


def _read_run_config(run_dir: Path) -> dict[str, Any]:
    config_path = run_dir / CONFIG_FILE
    if not run_dir.is_dir() or not config_path.is_file() or not (run_dir / MODEL_FILE).is_file():
        raise UnusableInputError(f"{run_dir} is not a finished run (no {CONFIG_FILE} / {MODEL_FILE})")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnusableInputError(f"cannot read {config_path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise UnusableInputError(f"{config_path} has no 'model' section; is {run_dir} a LabelTune run?")
    check_run_schema(run_dir, data)
    return data


def _load(run_dir: Path) -> tuple[nn.Module, ModelConfig]:
    from safetensors import SafetensorError

    try:
        return load_model(run_dir, device="cpu")
    except LabelTuneError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, OSError, SafetensorError) as exc:
        # A damaged or foreign config.json / model.safetensors (bad header, wrong shapes, missing keys).
        reason = describe_weights_error(exc, str(run_dir))
        raise UnusableInputError(f"cannot rebuild the model of {run_dir}: {reason}") from None


def _load_familiarity(run_dir: Path) -> Any:
    from labeltune.core.familiarity import Familiarity

    try:
        return Familiarity.load(run_dir)
    except Exception as exc:  # a damaged file: export without the score rather than not at all
        logger.warning("ignoring the unreadable unfamiliar-input statistics of %s: %s", run_dir, exc)
        return None


def _embedded_metadata(config: ModelConfig, fmt: str, outputs: list[str] | None = None) -> dict[str, Any]:
    """Return the small description stored inside the exported file itself."""
    return {
        "labeltune_version": __version__,
        "format": fmt,
        "backbone": config.backbone,
        "classes": list(config.classes),
        "input": {
            "name": ONNX_INPUT if fmt == "onnx" else "x",
            "shape": ["N", 3, config.input_size, config.input_size],
            "layout": "NCHW",
            "channel_order": "RGB",
            "value_range": [0.0, 1.0],
            "dtype": "float32",
        },
        "preprocessing": config.preprocessing,
        "normalization_inside_model": True,
        "mean": list(config.mean),
        "std": list(config.std),
        "outputs": outputs or list(ONNX_OUTPUTS),
        "temperature": config.temperature,
        "unfamiliar_when_ood_score_above": 1.0 if outputs and OOD_OUTPUT in outputs else None,
    }


@contextlib.contextmanager
def _quiet_torch_deprecations() -> Iterator[None]:
    """Silence PyTorch's deprecation notices for torch.jit and the legacy ONNX exporter (still working)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*deprecated")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch(\.|$)")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*legacy TorchScript-based")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", category=_tracer_warning())
        yield


def _tracer_warning() -> type[Warning]:
    try:
        from torch.jit import TracerWarning
    except ImportError:  # pragma: no cover - depends on the PyTorch build
        return Warning
    return TracerWarning


def _example_batch(config: ModelConfig, batch: int, seed: int) -> torch.Tensor:
    import torch

    generator = torch.Generator().manual_seed(seed)
    size = config.input_size
    return torch.rand(batch, 3, size, size, generator=generator, dtype=torch.float32)


def _deployable(model: nn.Module, config: ModelConfig, familiarity: Any) -> nn.Module:
    """Wrap ``model``: ``(logits, calibrated probabilities[, ood_score])``; ``.output_names`` says which."""
    import torch
    from torch import nn

    from labeltune.core.familiarity import torch_scorer
    from labeltune.core.probes import CONTENT, PROBE_NAMES, probed_classifier

    temperature = float(config.temperature)

    class Calibrated(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner
            self.output_names = list(ONNX_OUTPUTS)

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.inner(image)
            return logits, torch.softmax(logits / temperature, dim=1)

    class CalibratedWithScore(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.probed = probed_classifier(inner, config.backbone)
            self.scorer = torch_scorer(familiarity, [CONTENT, *PROBE_NAMES])
            self.early = int(familiarity.densities[PROBE_NAMES[0]].means.shape[1])
            self.output_names = [*ONNX_OUTPUTS, OOD_OUTPUT]

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            logits, pooled, stats = self.probed(image)
            score = self.scorer(pooled, stats[:, : self.early], stats[:, self.early :])
            return logits, torch.softmax(logits / temperature, dim=1), score

    wrapped = Calibrated(model) if familiarity is None else CalibratedWithScore(model)
    return wrapped.eval()


def _output_names(module: nn.Module) -> list[str]:
    return list(getattr(module, "output_names", ONNX_OUTPUTS))


def _check_onnx_dependencies() -> None:
    missing = []
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise LabelTuneError(
            f"ONNX export needs {' and '.join(missing)}; install them with: pip install 'labeltune[export]'"
        )


def _export_onnx_dynamo(model: nn.Module, example: torch.Tensor, path: Path, metadata: str) -> None:
    """Export with the torch.export-based exporter (needs onnxscript) into one self-contained file."""
    import torch

    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        input_names=[ONNX_INPUT],
        output_names=_output_names(model),
        opset_version=ONNX_OPSET,
        dynamic_shapes=({0: batch},),
        optimize=True,
        verbose=False,
    )
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise RuntimeError("torch.onnx.export returned no program")
    program.model.metadata_props["labeltune"] = metadata
    program.save(path, external_data=False)


def _export_onnx_legacy(model: nn.Module, example: torch.Tensor, path: Path, metadata: str) -> None:
    """Export with the legacy TorchScript-based exporter (deprecated, used only as a fallback)."""
    import onnx
    import torch

    with _quiet_torch_deprecations():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=[ONNX_INPUT],
            output_names=_output_names(model),
            opset_version=ONNX_OPSET,
            dynamic_axes={name: {0: "batch"} for name in (ONNX_INPUT, *_output_names(model))},
        )
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "labeltune", metadata
    onnx.save(proto, str(path))


def _write_onnx(model: nn.Module, config: ModelConfig, path: Path) -> str:
    """Write the ONNX file to ``path``; return which exporter made it."""
    import torch

    wrapped = model
    example = _example_batch(config, 2, VERIFY_SEED + 1)
    metadata = json.dumps(_embedded_metadata(config, "onnx", _output_names(model)))
    try:
        with torch.no_grad():
            _export_onnx_dynamo(wrapped, example, path, metadata)
        return f"torch.onnx.export(dynamo=True), torch {torch.__version__}"
    except Exception as exc:
        logger.warning("torch.export-based ONNX exporter failed (%s); trying the legacy exporter", exc)
        path.unlink(missing_ok=True)
        first_error = exc
    try:
        with torch.no_grad():
            _export_onnx_legacy(wrapped, example, path, metadata)
    except Exception as exc:
        raise LabelTuneError(
            f"ONNX export of {config.backbone} failed: torch.export-based exporter: {first_error}; "
            f"legacy exporter: {exc}"
        ) from exc
    return f"torch.onnx.export(dynamo=False) (legacy fallback), torch {torch.__version__}"


def _write_torchscript(model: nn.Module, config: ModelConfig, path: Path) -> str:
    """Trace ``model`` and save it with ``torch.jit.save``; return how it was made."""
    import torch

    example = _example_batch(config, 2, VERIFY_SEED + 1)
    extra = {"labeltune.json": json.dumps(_embedded_metadata(config, "torchscript", _output_names(model)))}
    with _quiet_torch_deprecations(), torch.no_grad():
        traced = torch.jit.trace(model, (example,), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files=extra)
    return f"torch.jit.trace, torch {torch.__version__}"


def _runner(fmt: str, path: Path) -> Callable[[torch.Tensor], list[np.ndarray]]:
    """Return ``run(batch) -> list of numpy outputs`` for the file at ``path`` in its own runtime."""
    import torch

    if fmt == "onnx":
        import onnxruntime as ort

        # Loaded from bytes, so no runtime keeps the file open (Windows could not rename or delete it).
        session = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])

        def run_onnx(batch: torch.Tensor) -> list[np.ndarray]:
            return list(session.run(None, {ONNX_INPUT: batch.numpy()}))

        return run_onnx

    with _quiet_torch_deprecations():
        loaded = torch.jit.load(io.BytesIO(path.read_bytes()), map_location="cpu")
    loaded.eval()

    def run_script(batch: torch.Tensor) -> list[np.ndarray]:
        with torch.no_grad():
            out = loaded(batch)
        return [t.numpy() for t in out] if isinstance(out, (tuple, list)) else [out.numpy()]

    return run_script


def _verify(model: nn.Module, config: ModelConfig, fmt: str, path: Path) -> tuple[float, float]:
    """Compare the exported file with ``model``; return ``(max |logit diff|, tolerance)`` or raise."""
    try:
        run = _runner(fmt, path)
    except Exception as exc:
        raise LabelTuneError(f"the exported {fmt} file cannot be loaded back: {exc}") from exc
    return _compare(model, config, fmt, run)


def _compare(
    model: nn.Module, config: ModelConfig, fmt: str, run: Callable[[torch.Tensor], list[np.ndarray]]
) -> tuple[float, float]:
    import numpy as np
    import torch

    names = _output_names(model)
    worst, worst_prob, worst_ood, scale = 0.0, 0.0, 0.0, 1.0
    for index, batch_size in enumerate(VERIFY_BATCHES):
        batch = _example_batch(config, batch_size, VERIFY_SEED + 10 * index)
        with torch.no_grad():
            references = [t.numpy() for t in model(batch)]
        reference = references[0]
        if not np.all(np.isfinite(reference)):
            raise LabelTuneError("the run's model gives non-finite logits on random images; not exporting it")
        try:
            outputs = run(batch)
        except Exception as exc:
            raise LabelTuneError(f"the exported {fmt} file fails on a batch of {batch_size}: {exc}") from exc
        if len(outputs) != len(names):
            raise LabelTuneError(f"the exported {fmt} model gives {len(outputs)} outputs, expected {names}")
        logits = np.asarray(outputs[0])
        if logits.shape != reference.shape:
            raise LabelTuneError(
                f"the exported {fmt} model gives shape {logits.shape} for a batch of {batch_size}, "
                f"expected {reference.shape}"
            )
        worst = max(worst, float(np.max(np.abs(logits - reference))))  # NaN stays NaN (max(0, nan))
        if not np.all(np.isfinite(logits)):
            worst = math.inf
        scale = max(scale, float(np.max(np.abs(reference))))
        expected = torch.softmax(torch.from_numpy(reference) / config.temperature, dim=1).numpy()
        diff = np.abs(np.asarray(outputs[1]) - expected)
        worst_prob = max(worst_prob, float(np.max(diff)) if np.all(np.isfinite(diff)) else math.inf)
        if OOD_OUTPUT in names:
            ood, ref_ood = np.asarray(outputs[2]), references[2]
            rel = np.abs(ood - ref_ood) / np.maximum(1.0, np.abs(ref_ood))
            worst_ood = max(worst_ood, float(np.max(rel)) if np.all(np.isfinite(rel)) else math.inf)
    tolerance = RTOL * scale
    if not worst <= tolerance:  # also catches NaN
        raise LabelTuneError(
            f"the exported {fmt} model's logits differ from PyTorch's by {worst:.3g} "
            f"(tolerance {tolerance:.3g}); the file was deleted"
        )
    # softmax is 1/2-Lipschitz in the max norm: logits off by d give probabilities off by at most d / 2
    # (d / 2T after the temperature).
    prob_tolerance = 0.5 * worst / min(config.temperature, 1.0) + PROB_ATOL
    if not worst_prob <= prob_tolerance:
        raise LabelTuneError(
            f"the exported {fmt} model's probabilities differ from PyTorch's by {worst_prob:.3g} "
            f"(tolerance {prob_tolerance:.3g}); the file was deleted"
        )
    if not worst_ood <= OOD_RTOL:
        raise LabelTuneError(
            f"the exported {fmt} model's ood_score differs from PyTorch's by {worst_ood:.3g} (relative; "
            f"tolerance {OOD_RTOL:g}); the file was deleted"
        )
    return worst, tolerance


# ---------------------------------------------------------------------------------------------- card


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


def _md(text: Any) -> str:
    """Escape ``text`` for a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _fmt_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return "`" + json.dumps(value) + "`"
    return str(value)


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(_fmt_value(c)) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _md_metrics(metrics: Any) -> list[str]:
    if metrics is None:
        return ["No metrics.json in the run.", ""]
    if not isinstance(metrics, dict):
        return ["```json", json.dumps(metrics, indent=2), "```", ""]
    lines: list[str] = []
    scalars = [[k, v] for k, v in metrics.items() if not isinstance(v, (dict, list))]
    if scalars:
        lines += _md_table(["metric", "value"], scalars)
    for key, value in metrics.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            columns: list[str] = []
            for entry in value.values():
                columns += [c for c in entry if c not in columns]
            lines += [f"**{_md(key)}**", ""]
            lines += _md_table(
                ["", *columns], [[name, *(v.get(c, "") for c in columns)] for name, v in value.items()]
            )
        elif isinstance(value, (dict, list)):
            lines += [f"**{_md(key)}**", "", "```json", json.dumps(value, indent=2), "```", ""]
    return lines


#: What each representation of the unfamiliar check looks at, for people reading the card.
REPRESENTATION_WORDS = {
    "content": "what the network sees in the image (the pooled features its last layer reads)",
    "early": "colour, brightness and sharpness (channel statistics of an early layer)",
    "mid": "textures and backgrounds (channel statistics of a middle layer)",
}


def _md_reliability(card: dict[str, Any]) -> list[str]:
    """The card's sections on calibrated confidence and unfamiliar inputs, in plain words."""
    calibration = card.get("calibration") or {}
    report = calibration.get("report") or {}
    temperature = float(calibration.get("temperature", 1.0))
    lines = ["## Confidence", ""]
    if report.get("n"):
        direction = (
            "was under-confident, so its scores are sharpened"
            if temperature < 1
            else "was over-confident, so its scores are softened"
        )
        lines.append(
            "`probabilities` are calibrated on the run's validation images: an answer given with 80 % "
            "confidence is right about 80 times in 100 on images like them. The raw network "
            f"{direction} (probabilities = softmax(logits / T), T = {temperature:.4g})."
        )
        lines.append(
            "The expected calibration error — the average gap between the confidence and how often the "
            f"answer is right — fell from {100 * report['ece_before']:.1f} % "
            f"to {100 * report['ece_after']:.1f} % "
            + (
                "(measured cross-fitted: each part of the validation images scored with a temperature "
                "fitted on the others)."
                if report.get("cross_fitted")
                else "(measured on the same few images the temperature was fitted on: optimistic)."
            )
        )
    else:
        lines.append(
            f"`probabilities` = softmax(logits / {temperature:.4g}); the run had no validation images to "
            "calibrate them on."
        )
    lines += ["", "## Unfamiliar inputs", ""]
    unfamiliar = card.get("unfamiliar")
    if not unfamiliar:
        lines += ["This run has no unfamiliar-input score (made before LabelTune had one).", ""]
        return lines
    info = unfamiliar.get("report") or {}
    lines.append(
        f"`{unfamiliar['output']}` measures how unlike the training images an input is; above "
        f"{unfamiliar['unfamiliar_when_above']:g} the input is **unfamiliar** and the model's answer "
        "deserves little trust, whatever its confidence. The threshold is set so that about "
        f"{unfamiliar['false_alarm_target']:.0%} of images like the training ones are flagged"
        + (
            f" (on the validation images: {info['val_unfamiliar_rate']:.1%})."
            if info.get("val_unfamiliar_rate") is not None
            else "."
        )
        + " It compares each input with the training images in three ways and flags it when any of them "
        "is far off:"
    )
    lines.append("")
    lines += [
        f"- {REPRESENTATION_WORDS.get(name, name)}: {v['dims']} numbers, described by their "
        f"{v['components']} main directions of variation"
        for name, v in unfamiliar["representations"].items()
    ]
    lines.append("")
    return lines


def render_card_markdown(card: dict[str, Any]) -> str:
    """Return the human-readable model card (Markdown) for a card from :func:`build_card`."""
    file, inp, norm, verify = card["file"], card["input"], card["normalization"], card["verification"]
    size = inp["size"]
    fmt_title = "ONNX" if file["format"] == "onnx" else "TorchScript"
    if "opset" in file:
        fmt_title += f" opset {file['opset']}"
    lines = [
        f"# Model card: {file['name']}",
        "",
        f"Exported by LabelTune {card['labeltune_version']} on {card['created']} from run `{card['run']}`.",
        "",
        *_md_table(
            ["", ""],
            [
                ["File", f"{file['name']} ({fmt_title}, {file['size_bytes']} bytes)"],
                ["SHA-256", file["sha256"]],
                ["Backbone", f"{card['backbone']['title']} ({card['backbone']['name']})"],
                ["Classes", card["num_classes"]],
                ["Exporter", file["exporter"]],
                [
                    "Verified",
                    f"max |logit difference| vs PyTorch = {verify['max_abs_diff_logits']:.3g} "
                    f"(tolerance {verify['tolerance']:.3g}, {verify['runtime']})",
                ],
            ],
        ),
        "## Classes (output order)",
        "",
        *_md_table(["index", "class"], [[i, name] for i, name in enumerate(card["classes"])]),
        "## Input",
        "",
        f"- Tensor `{inp['name']}`: {inp['dtype']}, shape N x 3 x {size} x {size} ({inp['layout']}), "
        f"channels {inp['channel_order']}, values in [0, 1]; any batch size N.",
        f"- Preprocessing `{inp['preprocessing']}`: {inp['resize']}",
        f"- Normalisation is **inside the model** (mean {norm['mean']}, std {norm['std']}, for "
        "information only): do not normalise the input again.",
        "",
        "## Outputs",
        "",
        *[
            f"- `{o['name']}`: {o['dtype']}, shape {' x '.join(str(d) for d in o['shape'])}; "
            f"{o['description']}."
            for o in card["outputs"]
        ],
        "",
        *_md_reliability(card),
        "## Metrics",
        "",
        *_md_metrics(card.get("metrics")),
        "## Training settings",
        "",
    ]
    train = card.get("training")
    if train:
        lines += _md_table(["setting", "value"], [[k, v] for k, v in train.items()])
    else:
        lines += ["No training settings recorded in config.json.", ""]
    lines += ["## Data", ""]
    data = card.get("data")
    if data:
        lines += [f"- `{data['manifest_file']}` SHA-256: `{data['manifest_sha256']}`"]
        if "images" in data:
            lines += [f"- Images: {data['images']}", ""]
            per_label = data.get("counts_per_split_and_label", {})
            labels = [name for name in card["classes"] if any(name in c for c in per_label.values())]
            for counts in per_label.values():
                labels += [name for name in counts if name not in labels]
            rows = [
                [split, total, *(per_label.get(split, {}).get(name, 0) for name in labels)]
                for split, total in data["counts_per_split"].items()
            ]
            lines += _md_table(["split", "images", *labels], rows)
        else:
            lines += [""]
    else:
        lines += ["No manifest.csv in the run.", ""]
    return "\n".join(lines).rstrip() + "\n"


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- API


def export_model(
    run_dir: Path | str, out: Path | str, fmt: str, progress: ProgressCallback | None = None
) -> ExportResult:
    """Export the model of ``run_dir`` to ``out`` as ``fmt`` ("onnx" or "torchscript"), check it, add a card.

    ``out`` is the file to write; a directory gets ``<run name>.onnx`` / ``.pt`` inside it and a path
    without a suffix gets the format's suffix. An existing file is replaced only once the new one has
    passed verification. The cards are written to ``<out>.card.json`` and ``<out>.card.md``.

    Raises :class:`UnusableInputError` for an unknown format or a directory that is not a finished run,
    and :class:`LabelTuneError` when the export fails or its outputs differ from PyTorch's (no file is
    left behind then).
    """
    fmt = _normalise_format(fmt)
    run_dir = Path(run_dir)
    run_config = _read_run_config(run_dir)
    if fmt == "onnx":
        _check_onnx_dependencies()
    out = _resolve_out(Path(out), run_dir, fmt)
    if out.resolve().parent == run_dir.resolve() and out.name in (
        CONFIG_FILE,
        MODEL_FILE,
        METRICS_FILE,
        MANIFEST_FILE,
    ):
        raise UnusableInputError(f"refusing to overwrite the run's own {out.name} with the export")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")

    _report(progress, 0, f"loading the model of {run_dir.name}")
    model, config = _load(run_dir)
    familiarity = _load_familiarity(run_dir)
    deployable = _deployable(model, config, familiarity)
    _report(progress, 1, f"exporting {config.backbone} to {fmt}")
    try:
        writer = _write_onnx if fmt == "onnx" else _write_torchscript
        try:
            exporter = writer(deployable, config, partial)
        except LabelTuneError:
            raise
        except Exception as exc:
            raise LabelTuneError(f"{fmt} export of {config.backbone} failed: {exc}") from exc
        _report(progress, 2, "checking the exported model against PyTorch")
        max_abs_diff, tolerance = _verify(deployable, config, fmt, partial)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    logger.info("exported %s to %s (max |logit diff| %.3g)", run_dir, out, max_abs_diff)

    _report(progress, 3, "writing the model card")
    digest = file_sha256(out)
    card = build_card(
        run_dir=run_dir,
        run_config=run_config,
        config=config,
        fmt=fmt,
        path=out,
        sha256=digest,
        exporter=exporter,
        max_abs_diff=max_abs_diff,
        tolerance=tolerance,
        familiarity=familiarity,
    )
    card_path, md_path = _card_paths(out)
    _write_text_atomic(card_path, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    _write_text_atomic(md_path, render_card_markdown(card))
    _report(progress, 4, f"exported to {out}")
    return ExportResult(
        path=out,
        card_path=card_path,
        format=fmt,
        max_abs_diff=max_abs_diff,
        markdown_path=md_path,
        tolerance=tolerance,
        exporter=exporter,
        sha256=digest,
    )
