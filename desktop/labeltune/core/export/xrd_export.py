"""Export an XRD run's 1-D CNN to ONNX or TorchScript, checked on simulated patterns, library beside it.

The exported model takes ``pattern``: float32 ``(N, points)``, the measured intensities linearly
interpolated onto the run's 2θ grid (``two_theta_min`` .. ``two_theta_max``, ``points`` points, at the
library's wavelength; zero outside the measured range). It scales each row to a maximum of 1 inside, as
LabelTune does, and returns, in this order:

* ``presence_logits`` (N, phases): one logit per library phase, in the library's order;
* ``probabilities`` (N, phases): ``sigmoid(presence_logits)``; a phase is called at ``threshold`` (0.5);
* ``fractions`` (N, phases): the network's weight fractions, a softmax of its fraction head over the
  called phases only (zeros where none is called). ``labeltune predict`` reports the least-squares fit's
  fractions instead (ADR 9); the network's are its ``fraction_network``.

Beside ``<out>`` come the model card (``<out>.card.json`` and ``.card.md``: phases, formulas, grid,
wavelength, threshold, metrics, the check against PyTorch) and ``<out>.library/``, a copy of the run's
peak library, which is what the fit needs to decide and quantify (docs/adr/0049).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune import __version__
from labeltune.core.errors import LabelTuneError, UnusableInputError
from labeltune.core.file_problems import storage_error
from labeltune.core.hashing import file_sha256
from labeltune.core.progress import Progress, ProgressCallback

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from labeltune.core.export.exporter import ExportResult
    from labeltune.core.xrd.library import Library

__all__ = ["XRD_INPUT", "XRD_OUTPUTS", "export_xrd_model", "is_xrd_run_config"]

logger = logging.getLogger(__name__)

XRD_INPUT = "pattern"
XRD_OUTPUTS = ("presence_logits", "probabilities", "fractions")
XRD_RTOL = 1e-3
"""Largest logit difference allowed, relative to max(1, max |logit|) (as for image exports)."""
FRACTION_ATOL = 1e-3
"""Largest difference allowed in the network fractions where both runtimes call the same phases."""
VERIFY_PATTERNS = (4, 1)
"""Simulated patterns per check batch (the export traced 2: both check the batch axis)."""
_STEPS = 4


def is_xrd_run_config(run_dir: Path) -> bool:
    """Whether ``run_dir/config.json`` says ``"domain": "xrd"`` (False when unreadable)."""
    try:
        data = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("domain") == "xrd"


def _deployable(net: nn.Module, threshold: float) -> nn.Module:
    """``pattern -> (presence_logits, probabilities, fractions)`` around the run's network."""
    import torch
    from torch import nn

    class Deployable(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, pattern: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            presence, fraction = self.inner(pattern)
            probabilities = torch.sigmoid(presence)
            called = probabilities >= threshold
            # -1e9, not -inf: a row with nothing called gives a finite uniform softmax, zeroed below
            masked = fraction.masked_fill(~called, -1e9)
            anything = called.any(dim=1, keepdim=True).to(fraction.dtype)
            return presence, probabilities, torch.softmax(masked, dim=1) * anything

    return Deployable(net).eval()


def _patterns(library: Library, grid: np.ndarray, n: int, seed: int) -> torch.Tensor:
    """``n`` simulated patterns of the run's library on its grid (realistic inputs for the check)."""
    import torch

    from labeltune.core.xrd.simulate import SimulationConfig, simulate

    config = SimulationConfig(
        two_theta_min=float(grid[0]),
        two_theta_max=float(grid[-1]),
        points=len(grid),
        max_phases=min(3, len(library.phases)),
    )
    batch = simulate(library, n, config, seed=seed)
    return torch.from_numpy(batch.x.astype("float32") * 1000.0)  # counts-like: the model rescales


def _metadata(run_config: dict[str, Any], fmt: str) -> dict[str, Any]:
    grid = run_config["grid"]
    return {
        "labeltune_version": __version__,
        "format": fmt,
        "domain": "xrd",
        "phases": list(run_config["phases"]),
        "formulas": list(run_config.get("formulas", [])),
        "wavelength": float(run_config["wavelength"]),
        "grid": {k: grid[k] for k in ("two_theta_min", "two_theta_max", "points")},
        "threshold": float(run_config.get("threshold", 0.5)),
        "input": {"name": XRD_INPUT if fmt == "onnx" else "x", "shape": ["N", int(grid["points"])]},
        "outputs": list(XRD_OUTPUTS),
    }


def _write(model: nn.Module, example: torch.Tensor, fmt: str, path: Path, metadata: str) -> str:
    import torch

    from labeltune.core.export.formats import _quiet_torch_deprecations

    if fmt == "torchscript":
        with _quiet_torch_deprecations(), torch.no_grad():
            traced = torch.jit.trace(model, (example,), check_trace=False)
            torch.jit.save(traced, str(path), _extra_files={"labeltune.json": metadata})
        return f"torch.jit.trace, torch {torch.__version__}"
    import onnx

    from labeltune.core.export.formats import ONNX_OPSET

    # The legacy exporter: this small network has no op it lacks, and it is several times faster here.
    with _quiet_torch_deprecations(), torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=[XRD_INPUT],
            output_names=list(XRD_OUTPUTS),
            opset_version=ONNX_OPSET,
            dynamic_axes={name: {0: "batch"} for name in (XRD_INPUT, *XRD_OUTPUTS)},
        )
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "labeltune", metadata
    onnx.save(proto, str(path))
    return f"torch.onnx.export(dynamo=False), torch {torch.__version__}"


def _run_exported(fmt: str, path: Path, batch: torch.Tensor) -> list[np.ndarray]:
    import io

    import torch

    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
        return list(session.run(None, {XRD_INPUT: batch.numpy()}))
    from labeltune.core.export.formats import _quiet_torch_deprecations

    with _quiet_torch_deprecations():
        loaded = torch.jit.load(io.BytesIO(path.read_bytes()), map_location="cpu")
    with torch.no_grad():
        return [t.numpy() for t in loaded(batch)]


def _verify(
    model: nn.Module, library: Library, grid: np.ndarray, fmt: str, path: Path
) -> tuple[float, float]:
    """Max |logit difference| and its tolerance on simulated patterns; raise when the file disagrees."""
    import numpy as np
    import torch

    worst, worst_fraction, scale = 0.0, 0.0, 1.0
    for index, n in enumerate(VERIFY_PATTERNS):
        batch = _patterns(library, grid, n, seed=100 + index)
        with torch.no_grad():
            reference = [t.numpy() for t in model(batch)]
        try:
            outputs = _run_exported(fmt, path, batch)
        except Exception as exc:
            raise LabelTuneError(f"the exported {fmt} file fails on {n} patterns: {exc}") from exc
        if len(outputs) != len(XRD_OUTPUTS) or outputs[0].shape != reference[0].shape:
            raise LabelTuneError(f"the exported {fmt} model gives outputs of the wrong number or shape")
        worst = max(worst, float(np.max(np.abs(outputs[0] - reference[0]))))
        if not np.all(np.isfinite(outputs[0])):
            worst = math.inf
        scale = max(scale, float(np.max(np.abs(reference[0]))))
        same_calls = (outputs[1] >= 0.5) == (reference[1] >= 0.5)
        rows = same_calls.all(axis=1)
        if rows.any():
            worst_fraction = max(worst_fraction, float(np.max(np.abs(outputs[2][rows] - reference[2][rows]))))
    tolerance = XRD_RTOL * scale
    if not worst <= tolerance or not worst_fraction <= FRACTION_ATOL:
        raise LabelTuneError(
            f"the exported {fmt} model differs from PyTorch (logits by {worst:.3g}, tolerance "
            f"{tolerance:.3g}; fractions by {worst_fraction:.3g}); the file was deleted"
        )
    return worst, tolerance


def _card(
    run_dir: Path, run_config: dict[str, Any], library: Library, fmt: str, out: Path, facts: dict[str, Any]
) -> dict[str, Any]:
    metrics: Any = None
    with contextlib.suppress(OSError, ValueError):
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return {
        "card_version": 1,
        "domain": "xrd",
        "file": out.name,
        **facts,
        **_metadata(run_config, fmt),
        "library": {
            "folder": out.name + ".library",
            "phases": [
                {
                    "name": p.name,
                    "formula": p.formula,
                    "space_group": p.space_group,
                    "source": Path(p.source).name,
                }
                for p in library.phases
            ],
        },
        "preprocessing": (
            "Read the pattern at the library's wavelength (convert 2θ by Bragg's law otherwise); linearly "
            "interpolate its intensities onto the grid (zero outside the measured range, negatives to zero). "
            "The model scales each pattern to a maximum of 1 and reads it linearly and as a square root."
        ),
        "decision": (
            "A phase is present when its probability >= threshold. LabelTune then fits the calculated "
            "patterns of the proposed phases (the library beside this file) by least squares, drops, swaps "
            "or adds phases by that fit and reports the fit's weight fractions (ADR 9)."
        ),
        "run": {"folder": str(run_dir), "train": run_config.get("train"), "source": run_config.get("source")},
        "metrics": metrics,
    }


def _markdown(card: dict[str, Any]) -> str:
    grid = card["grid"]
    lines = [
        f"# {card['file']}: XRD phase identification ({len(card['phases'])} phases)",
        "",
        f"- Input `{card['input']['name']}`: float32 (N, {grid['points']}), intensities on 2θ "
        f"{grid['two_theta_min']:g}–{grid['two_theta_max']:g}° ({grid['points']} points), "
        f"wavelength {card['wavelength']:.5f} Å.",
        f"- Outputs: {', '.join(f'`{o}`' for o in card['outputs'])}; threshold {card['threshold']:g}.",
        f"- Checked against PyTorch on simulated patterns: max |logit difference| {card['max_abs_diff']:.2e} "
        f"(tolerance {card['tolerance']:.2e}); exporter {card['exporter']}.",
        f"- sha256 {card['sha256']}.",
        "",
        "## Preprocessing",
        "",
        card["preprocessing"],
        "",
        "## Decision",
        "",
        card["decision"],
        "",
        f"## Phases (library copy in `{card['library']['folder']}/`)",
        "",
        "| # | name | formula | space group | CIF |",
        "|---|---|---|---|---|",
    ]
    for i, phase in enumerate(card["library"]["phases"]):
        lines.append(
            f"| {i} | {phase['name']} | {phase['formula']} | {phase['space_group']} | {phase['source']} |"
        )
    return "\n".join(lines) + "\n"


def export_xrd_model(
    run_dir: Path | str, out: Path | str, fmt: str, progress: ProgressCallback | None = None
) -> ExportResult:
    """Export the XRD run ``run_dir`` to ``out`` ("onnx" or "torchscript"), check it, add card and library.

    Same contract as :func:`labeltune.core.export.export_model`, which calls this for XRD runs.
    """
    from labeltune.core.export.exporter import ExportResult, _normalise_format, _resolve_out, write_cards
    from labeltune.core.export.formats import check_onnx_dependencies
    from labeltune.core.xrd.run_files import load_xrd_net

    def report(done: int, message: str) -> None:
        logger.info("export: %s", message)
        if progress is not None:
            progress(Progress("export", done, _STEPS, message))

    import numpy as np

    fmt = _normalise_format(fmt)
    run_dir = Path(run_dir)
    if fmt == "onnx":
        check_onnx_dependencies()
    out = _resolve_out(Path(out), run_dir, fmt)
    if out.resolve().parent == run_dir.resolve():
        raise UnusableInputError("write the export outside the run folder (its files would be mixed)")
    report(0, f"loading the XRD model of {run_dir.name}")
    net, run_config, library = load_xrd_net(run_dir)
    grid_spec = run_config["grid"]
    grid = np.linspace(grid_spec["two_theta_min"], grid_spec["two_theta_max"], int(grid_spec["points"]))
    model = _deployable(net, float(run_config.get("threshold", 0.5)))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, out.parent, "create") from exc
    partial = out.with_name(out.name + ".partial")
    report(1, f"exporting the XRD network to {fmt}")
    try:
        try:
            exporter = _write(
                model,
                _patterns(library, grid, 2, seed=99),
                fmt,
                partial,
                json.dumps(_metadata(run_config, fmt)),
            )
        except OSError as exc:
            raise storage_error(exc, out) from exc
        except LabelTuneError:
            raise
        except Exception as exc:
            raise LabelTuneError(f"{fmt} export of the XRD network failed: {exc}") from exc
        report(2, "checking the exported model against PyTorch on simulated patterns")
        max_abs_diff, tolerance = _verify(model, library, grid, fmt, partial)
        partial.replace(out)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    report(3, "writing the model card and the library")
    library_copy = out.with_name(out.name + ".library")
    try:
        if library_copy.exists():
            shutil.rmtree(library_copy)
        shutil.copytree(run_dir / "library", library_copy)
    except OSError as exc:
        raise storage_error(exc, library_copy) from exc
    digest = file_sha256(out)
    facts = {"sha256": digest, "exporter": exporter, "max_abs_diff": max_abs_diff, "tolerance": tolerance}
    card = _card(run_dir, run_config, library, fmt, out, facts)
    card_path, md_path = write_cards(out, card, _markdown(card))
    report(4, f"exported to {out}")
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
