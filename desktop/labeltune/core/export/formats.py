"""The exported files themselves: ONNX and TorchScript written, loaded back in their own runtime, checked.

The tolerances of the check and the names of the inputs and outputs are here too; the model card
(:mod:`labeltune.core.export.card`) quotes them.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune import __version__
from labeltune.core.errors import LabelTuneError
from labeltune.core.model import ModelConfig

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


def _output_names(module: nn.Module) -> list[str]:
    return list(getattr(module, "output_names", ONNX_OUTPUTS))


def check_onnx_dependencies() -> None:
    """Raise :class:`LabelTuneError` naming what to install when onnx or onnxruntime is missing."""
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


def write_onnx(model: nn.Module, config: ModelConfig, path: Path) -> str:
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


def write_torchscript(model: nn.Module, config: ModelConfig, path: Path) -> str:
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


def verify(model: nn.Module, config: ModelConfig, fmt: str, path: Path) -> tuple[float, float]:
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
