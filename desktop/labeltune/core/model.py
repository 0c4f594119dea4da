"""The classifier a run trains and saves: normalisation + backbone trunk + top + a new head.

The saved model takes RGB images as floats in [0, 1], shape ``(N, 3, S, S)``; normalisation is inside
it, so exported ONNX/TorchScript models cannot be fed the wrong mean and std.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune.core.backbones import build_backbone, get_spec, meta_build

if TYPE_CHECKING:
    import torch
    from torch import nn

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class ModelConfig:
    """What is needed to rebuild a run's model and feed it (stored in the run's ``config.json``)."""

    backbone: str
    classes: list[str]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    head_hidden: int = 0
    head_dropout: float = 0.2
    preprocessing: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: Confidence = softmax(logits / temperature), fitted on the validation split (core/calibration.py).
    temperature: float = 1.0

    @classmethod
    def for_backbone(cls, backbone: str, classes: list[str], input_size: int | None = None) -> ModelConfig:
        """Return the config for ``backbone`` with its normalisation and (default) input size."""
        from labeltune.core.imaging import PREPROCESSING_ID

        spec = get_spec(backbone)
        return cls(
            backbone=backbone,
            classes=list(classes),
            input_size=input_size or spec.input_size,
            mean=spec.mean,
            std=spec.std,
            preprocessing=PREPROCESSING_ID,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        """Read the ``model`` section of a run's ``config.json``."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["mean"] = tuple(values["mean"])
        values["std"] = tuple(values["std"])
        return cls(**values)


def _modules() -> tuple[type, type]:
    import torch
    from torch import nn

    class Normalize(nn.Module):
        """Scale ``[0, 1]`` RGB to the backbone's normalisation."""

        def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mean: torch.Tensor = self.mean  # type: ignore[assignment]
            std: torch.Tensor = self.std  # type: ignore[assignment]
            return (x - mean) / std

    class Classifier(nn.Module):
        """``head(top(trunk(normalize(x))))``; each part is reachable for the strategies."""

        def __init__(self, normalize: nn.Module, trunk: nn.Module, top: nn.Module, head: nn.Module) -> None:
            super().__init__()
            self.normalize = normalize
            self.trunk = trunk
            self.top = top
            self.head = head

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.top(self.trunk(self.normalize(x))))

    return Normalize, Classifier


def make_head(feature_dim: int, num_classes: int, hidden: int = 0, dropout: float = 0.2) -> nn.Module:
    """Return a linear head, or a one-hidden-layer MLP when ``hidden`` > 0."""
    from torch import nn

    if hidden > 0:
        return nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(feature_dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))


def build_classifier(config: ModelConfig, backbone_state: dict[str, Any] | None = None) -> nn.Module:
    """Build the classifier for ``config``; the backbone gets ``backbone_state`` or random weights."""
    normalize_cls, classifier_cls = _modules()
    parts = build_backbone(config.backbone, backbone_state)
    spec = get_spec(config.backbone)
    head = make_head(spec.feature_dim, len(config.classes), config.head_hidden, config.head_dropout)
    model: nn.Module = classifier_cls(normalize_cls(config.mean, config.std), parts.trunk, parts.top, head)
    return model


def save_model(run_dir: Path, model: nn.Module, config: ModelConfig) -> Path:
    """Write the model's weights (safetensors) to ``run_dir``; the config goes in ``config.json``."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    from labeltune.core.atomic import atomic_target

    path = Path(run_dir) / MODEL_FILE
    with atomic_target(path) as tmp:
        save_file(state, str(tmp), metadata={"model_config": json.dumps(asdict(config))})
    return path


def load_model(run_dir: Path | str, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelConfig]:
    """Rebuild a run's model from ``config.json`` + ``model.safetensors`` (no pickle involved)."""
    from safetensors.torch import load_file

    from labeltune.core.errors import LabelTuneError, UnusableInputError, describe_weights_error
    from labeltune.core.run_schema import check_run_schema

    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file() or not (run_dir / MODEL_FILE).is_file():
        raise UnusableInputError(f"{run_dir} is not a finished run (no {CONFIG_FILE} / {MODEL_FILE})")
    try:
        stored = json.loads(config_path.read_text(encoding="utf-8"))
        check_run_schema(run_dir, stored)
        config = ModelConfig.from_json(stored["model"])
    except LabelTuneError:
        raise
    except Exception as exc:  # damaged JSON, missing fields
        raise UnusableInputError(
            f"cannot load the model in {run_dir}: {config_path} is damaged ({exc!r})"
        ) from None
    try:
        state = load_file(str(run_dir / MODEL_FILE), device="cpu")
        with meta_build():  # no time spent initialising weights that are replaced at once
            model = build_classifier(config)
        model.load_state_dict(state, assign=True)
    except LabelTuneError:
        raise
    except Exception as exc:  # truncated safetensors, wrong shapes: a plain reason, the raw text in the log
        reason = describe_weights_error(exc, str(run_dir / MODEL_FILE))
        raise UnusableInputError(f"cannot load the model in {run_dir}: {MODEL_FILE}: {reason}") from None
    return model.to(device).eval(), config
