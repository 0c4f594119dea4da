"""``export_model``: a finished run's model loaded and wrapped, exported, checked, its cards beside it."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune.core.atomic import write_text_atomic
from labeltune.core.errors import LabelTuneError, UnusableInputError, describe_weights_error
from labeltune.core.export.card import MANIFEST_FILE, METRICS_FILE, build_card
from labeltune.core.export.card_markdown import render_card_markdown
from labeltune.core.export.formats import (
    FORMATS,
    ONNX_OUTPUTS,
    OOD_OUTPUT,
    check_onnx_dependencies,
    verify,
    write_onnx,
    write_torchscript,
)
from labeltune.core.file_problems import library_write_error, storage_error
from labeltune.core.hashing import file_sha256
from labeltune.core.model import CONFIG_FILE, MODEL_FILE, ModelConfig, load_model
from labeltune.core.progress import Progress, ProgressCallback
from labeltune.core.run_schema import check_run_schema

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

_STEPS = 4


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


def write_cards(out: Path, card: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write the model card beside ``out``: ``<out>.card.json`` and ``<out>.card.md`` (image and XRD runs)."""
    card_path, md_path = out.with_name(out.name + ".card.json"), out.with_name(out.name + ".card.md")
    write_text_atomic(card_path, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(md_path, markdown)
    return card_path, md_path


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
    from labeltune.core.export.xrd_export import export_xrd_model, is_xrd_run_config

    if is_xrd_run_config(run_dir):  # the 1-D CNN of an XRD run: its own input, outputs and card
        return export_xrd_model(run_dir, out, fmt, progress)
    run_config = _read_run_config(run_dir)
    if fmt == "onnx":
        check_onnx_dependencies()
    out = _resolve_out(Path(out), run_dir, fmt)
    if out.resolve().parent == run_dir.resolve() and out.name in (
        CONFIG_FILE,
        MODEL_FILE,
        METRICS_FILE,
        MANIFEST_FILE,
    ):
        raise UnusableInputError(f"refusing to overwrite the run's own {out.name} with the export")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # disk full, read-only, folder gone: one line naming it (ADR 0042)
        raise storage_error(exc, out.parent, "create") from exc
    partial = out.with_name(out.name + ".partial")

    _report(progress, 0, f"loading the model of {run_dir.name}")
    model, config = _load(run_dir)
    familiarity = _load_familiarity(run_dir)
    deployable = _deployable(model, config, familiarity)
    _report(progress, 1, f"exporting {config.backbone} to {fmt}")
    try:
        writer = write_onnx if fmt == "onnx" else write_torchscript
        try:
            exporter = writer(deployable, config, partial)
        except LabelTuneError:
            raise
        except OSError as exc:
            raise storage_error(exc, out) from exc
        except Exception as exc:
            disk = library_write_error(exc, out)
            if disk is not None:
                raise disk from exc
            raise LabelTuneError(f"{fmt} export of {config.backbone} failed: {exc}") from exc
        _report(progress, 2, "checking the exported model against PyTorch")
        max_abs_diff, tolerance = verify(deployable, config, fmt, partial)
        try:
            partial.replace(out)
        except OSError as exc:
            raise storage_error(exc, out) from exc
    except BaseException:
        with contextlib.suppress(OSError):  # the folder may be read-only or gone too
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
    card_path, md_path = write_cards(out, card, render_card_markdown(card))
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
