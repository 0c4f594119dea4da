"""Distil several trained runs (teachers) into one student run (``labeltune distill``).

The student is an ordinary image run (any backbone and strategy) whose loss adds, to the labels'
cross-entropy, the Kullback-Leibler divergence to the teachers' averaged soft targets at a temperature
(Hinton et al. 2015), weighted ``1 - distill_alpha``. The project's unlabeled items join the training side
with the soft targets alone. Teachers may differ in backbone and input size: each reads the images at its
own size, and its logits are cached like features (keyed by its model file's hash). The report sets the
student's accuracy, size and speed beside each teacher's and the ensemble's.
See docs/adr/0054-distill-teachers-soft-targets.md.

With ``distill_feature_weight`` > 0 the teachers' pooled features are targets too (Landro et al. 2021): a
linear projection of the student's pooled features is fitted to the teachers' concatenated (standardised)
pooled features by mean squared error; the projection is discarded after training. It can only shape the
student's features where they train (*partial*, *full*). See docs/adr/0062-lite-teachers-feature-targets.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labeltune.core.image_task import ClassificationTask, TensorBatches
from labeltune.core.model import MODEL_FILE, ModelConfig, load_model
from labeltune.core.run_files import METRICS_FILE, RunResult
from labeltune.core.train_config import TrainConfig
from labeltune.core.train_step import StepOutput

if TYPE_CHECKING:
    import torch
    from torch import nn

    from labeltune.core.train_inputs import FitInputs, FitJob


@dataclass
class Teacher:
    """One teacher's outputs on the student's validation items and what it costs."""

    run_dir: str
    backbone: str
    input_size: int
    val_logits: np.ndarray  # (n_val, classes), in the student's class order
    features: np.ndarray | None = None  # pooled features of every input (feature term only)


@dataclass
class Distilled:
    """What the student's report needs of its teachers."""

    teachers: list[Teacher]
    unlabeled_used: int
    temperature: float
    alpha: float
    feature_weight: float = 0.0
    feature_dim: int = 0  # width of the teachers' concatenated pooled features (0: no feature term)


class DistillationTask(ClassificationTask):
    """``alpha`` × cross-entropy on the labels + ``(1 - alpha)`` T² × KL to the teachers' soft targets.

    A training batch's ``y`` is ``(N, classes + D + 1)``: the averaged soft targets, the teachers' D
    standardised pooled features (D = 0 without the feature term), then the label (-1 for an unlabeled
    item, which only the teachers teach). With ``feature_dims`` (student's, teachers') and ``head`` (the
    module whose input is the student's pooled vector), ``distill_feature_weight`` × MSE(projection(student
    features), teachers' features) is added; the projection's parameters are :meth:`extra_params`.
    Validation is the usual one, on labels.
    """

    def __init__(
        self,
        loss_fn: Any,
        val: TensorBatches | None,
        num_classes: int,
        config: TrainConfig,
        head: nn.Module | None = None,
        feature_dims: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(loss_fn, val, num_classes)
        self.temperature, self.alpha = config.distill_temperature, config.distill_alpha
        self.feature_weight = config.distill_feature_weight if feature_dims and head is not None else 0.0
        self.projection: nn.Module | None = None
        self._pooled: list[torch.Tensor] = []
        if self.feature_weight > 0 and feature_dims is not None and head is not None:
            from torch import nn

            self.projection = nn.Linear(*feature_dims)
            device = next(head.parameters()).device
            self.projection.to(device)
            head.register_forward_pre_hook(self._keep_pooled)

    def _keep_pooled(self, _module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        """Remember the head's input: the student's pooled features of this batch."""
        self._pooled = [args[0]]

    def extra_params(self) -> list[dict[str, Any]]:
        """The projection's parameters, for the optimiser (none without the feature term)."""
        return [{"params": list(self.projection.parameters())}] if self.projection is not None else []

    def loss(self, model: nn.Module, batch: Any) -> StepOutput:
        """The blended loss; correct = arg-max hits on the labeled items."""
        import torch.nn.functional as F

        x, y = batch
        logits = model(x)
        c = logits.shape[1]
        soft, hard = y[:, :c].float(), y[:, -1].long()
        t = self.temperature
        kd = F.kl_div(F.log_softmax(logits.float() / t, 1), soft, reduction="batchmean") * t * t
        labeled = hard >= 0
        loss = (1 - self.alpha) * kd
        if self.projection is not None and self._pooled and y.shape[1] > c + 1:
            predicted = self.projection(self._pooled[0].float().flatten(1))
            loss = loss + self.feature_weight * F.mse_loss(predicted, y[:, c:-1].float())
        self._pooled = []
        correct = 0
        if bool(labeled.any()):
            loss = loss + self.alpha * self.loss_fn(logits[labeled], hard[labeled])
            correct = int((logits.detach()[labeled].argmax(1) == hard[labeled]).sum())
        return StepOutput(loss, correct, int(labeled.sum()))


def teacher_logits(
    run_dir: Path,
    classes: list[str],
    paths: list[Path],
    hashes: list[str],
    device: torch.device,
    job: FitJob,
    features: bool = False,
) -> tuple[np.ndarray, Teacher]:
    """The teacher's logits for ``paths`` in the student's class order (cached; failed files: zeros).

    With ``features``, :attr:`Teacher.features` gets its pooled features of ``paths`` too (same pass, cached).
    """
    from contextlib import ExitStack

    from labeltune.core.features import FeatureCache, FeatureKey, default_cache_root, extract_features

    model, config = load_model(run_dir, device)
    order = [config.classes.index(c) for c in classes]
    digest = hashlib.sha256((Path(run_dir) / MODEL_FILE).read_bytes()).hexdigest()
    key = FeatureKey(config.backbone, f"run-{digest[:16]}", config.preprocessing, config.input_size, "logits")
    root = Path(job.cache_root) if job.cache_root is not None else default_cache_root()
    with ExitStack() as stack:
        cache = stack.enter_context(FeatureCache(root, key))
        extra = stack.enter_context(FeatureCache(root, replace(key, stage="pooled"))) if features else None
        module = _logits_and_pooled(model) if features else model
        out = extract_features(
            module,
            paths,
            hashes,
            cache,
            config.input_size,
            device,
            32,
            job.progress,
            job.stop_event,
            extra_cache=extra,
        )
    logits = np.zeros((len(paths), len(classes)), np.float32)
    teacher = Teacher(str(run_dir), config.backbone, config.input_size, np.zeros((0, len(classes))))
    if out.ok:
        logits[np.asarray(out.ok)] = out.features.astype(np.float32)[:, order]
    if out.extra is not None:
        teacher.features = np.zeros((len(paths), out.extra.shape[1] if out.ok else 0), np.float32)
        if out.ok:
            teacher.features[np.asarray(out.ok)] = out.extra.astype(np.float32)
    return logits, teacher


def _logits_and_pooled(model: nn.Module) -> nn.Module:
    """A module returning ``(logits, pooled features)`` of a run's Classifier (one pass for both)."""
    from torch import nn

    class LogitsAndPooled(nn.Module):
        def __init__(self, classifier: nn.Module) -> None:
            super().__init__()
            self.classifier = classifier

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            m: Any = self.classifier
            pooled = m.top(m.trunk(m.normalize(x)))
            return m.head(pooled), pooled

    return LogitsAndPooled(model)


def _unlabeled_inputs(
    job: FitJob, model: Any, model_config: ModelConfig, inputs: FitInputs, device: torch.device
) -> tuple[list[Path], list[str], Any]:
    """The project's unlabeled items as the student's inputs (features from the cache, or images)."""
    from labeltune.core.features import default_cache_root
    from labeltune.core.hashing import HashCache
    from labeltune.core.train_data import PreparedData
    from labeltune.core.train_inputs import prepare_inputs

    samples = job.source.unlabeled if job.source is not None else []
    paths, hashes = [], []
    root = Path(job.cache_root) if job.cache_root is not None else default_cache_root()
    with HashCache(root / "hashes.sqlite") as hash_cache:
        for sample in samples:
            try:
                hashes.append(hash_cache.sha256(sample.path))
                paths.append(sample.path)
            except OSError:
                continue
    if not paths:
        return [], [], None
    data = PreparedData(
        paths, hashes, np.zeros(len(paths), np.int64), np.zeros(len(paths), bool), job.data.classes, []
    )
    extra = prepare_inputs(replace(job, data=data), model, model_config, inputs.weights_id, device)
    return list(extra.data.paths), list(extra.data.hashes), extra.x_all


def soft_target_inputs(
    job: FitJob, model: Any, model_config: ModelConfig, inputs: FitInputs, device: torch.device
) -> tuple[FitInputs, Distilled]:
    """``inputs`` with the teachers' soft targets as ``y_train`` and the unlabeled items added."""
    import torch

    config, data = job.config, inputs.data
    classes = data.classes
    u_paths, u_hashes, x_unlabeled = _unlabeled_inputs(job, model, model_config, inputs, device)
    train = np.flatnonzero(~data.is_val)
    val = np.flatnonzero(data.is_val)
    order = list(train) + list(val)
    paths = [data.paths[i] for i in order] + u_paths
    hashes = [data.hashes[i] for i in order] + u_hashes
    t = config.distill_temperature
    soft = np.zeros((len(paths), len(classes)), np.float64)
    teachers = []
    with_features = config.distill_feature_weight > 0
    for run in config.teachers or []:
        logits, teacher = teacher_logits(Path(run), classes, paths, hashes, device, job, with_features)
        scaled = torch.from_numpy(logits) / t
        soft += torch.softmax(scaled, 1).double().numpy()
        teacher.val_logits = logits[len(train) : len(train) + len(val)]
        teachers.append(teacher)
    soft /= max(len(teachers), 1)
    n_train = len(train)
    targets_all = soft.astype(np.float32)
    if with_features:
        targets_all = np.concatenate([targets_all, teacher_feature_targets(teachers, n_train, len(paths))], 1)
    views = len(inputs.y_train) // max(n_train, 1)
    labels = torch.from_numpy(data.labels[train]).float().unsqueeze(1)
    targets = torch.from_numpy(targets_all[:n_train])
    y_labeled = torch.cat([targets, labels], 1).repeat(views, 1)
    x_train, y_train = inputs.x_train, y_labeled
    if u_paths:
        y_unlabeled = torch.cat(
            [torch.from_numpy(targets_all[n_train + len(val) :]), torch.full((len(u_paths), 1), -1.0)], 1
        )
        x_train = torch.cat([x_train, x_unlabeled.to(x_train.dtype)])
        y_train = torch.cat([y_train, y_unlabeled])
    feature_dim = targets_all.shape[1] - len(classes)
    weight = config.distill_feature_weight
    distilled = Distilled(teachers, len(u_paths), t, config.distill_alpha, weight, feature_dim)
    return replace(inputs, x_train=x_train, y_train=y_train), distilled


def teacher_feature_targets(teachers: list[Teacher], n_train: int, n_rows: int) -> np.ndarray:
    """The teachers' pooled features side by side, each column standardised on the training items.

    Standardising puts every teacher (and every channel) on the same scale, so the mean squared error
    weighs them alike whatever their activations' range.
    """
    blocks = [t.features for t in teachers if t.features is not None and t.features.size]
    if not blocks:
        return np.zeros((n_rows, 0), np.float32)
    joined = np.concatenate(blocks, 1).astype(np.float32)
    mean = joined[:n_train].mean(0) if n_train else joined.mean(0)
    std = joined[:n_train].std(0) if n_train else joined.std(0)
    return ((joined - mean) / np.maximum(std, 1e-3)).astype(np.float32)


def images_per_second(model: nn.Module, input_size: int, device: torch.device, batch: int = 16) -> float:
    """Images per second of ``model`` on ``device`` (one warm-up batch, then the best of three)."""
    import torch

    model.eval().to(device)
    x = torch.rand((batch, 3, input_size, input_size), device=device)
    best = float("inf")
    with torch.inference_mode():
        model(x)
        for _ in range(3):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return batch / best


def model_card(run_dir: Path, device: torch.device) -> dict[str, Any]:
    """Parameters, file size (MB) and speed (images/s) of a run's model."""
    model, config = load_model(run_dir, device)
    return {
        "params": int(sum(p.numel() for p in model.parameters())),
        "size_mb": round((Path(run_dir) / MODEL_FILE).stat().st_size / 1e6, 2),
        "images_per_second": round(images_per_second(model, config.input_size, device), 1),
    }


def _accuracy(logits: np.ndarray, y: np.ndarray) -> float | None:
    return float((logits.argmax(1) == y).mean()) if len(y) else None


def record_distillation(
    result: RunResult, distilled: Distilled, y_val: np.ndarray, device: torch.device
) -> RunResult:
    """Put the student beside each teacher and the ensemble in ``result`` and its ``metrics.json``."""
    import torch

    from labeltune.core.atomic import write_text_atomic

    rows = []
    probabilities = []
    for teacher in distilled.teachers:
        card = model_card(Path(teacher.run_dir), device)
        rows.append(
            {
                "run_dir": teacher.run_dir,
                "backbone": teacher.backbone,
                "input_size": teacher.input_size,
                "val_accuracy": _accuracy(teacher.val_logits, y_val),
                **card,
            }
        )
        probabilities.append(torch.softmax(torch.from_numpy(teacher.val_logits), 1).numpy())
    ensemble = {
        "val_accuracy": _accuracy(np.mean(probabilities, 0), y_val) if probabilities else None,
        "params": sum(r["params"] for r in rows),
        "size_mb": round(sum(r["size_mb"] for r in rows), 2),
        "images_per_second": round(1.0 / sum(1.0 / r["images_per_second"] for r in rows), 1),
    }
    student = {"val_accuracy": result.metrics.get("accuracy"), **model_card(result.run_dir, device)}
    result.metrics["distill"] = {
        "student": {"backbone": result.backbone, **student},
        "teachers": rows,
        "ensemble": ensemble,
        "unlabeled_used": distilled.unlabeled_used,
        "temperature": distilled.temperature,
        "label_weight": distilled.alpha,
        "feature_weight": distilled.feature_weight,
    }
    metrics = {**result.metrics, "summary": result.to_json()}
    write_text_atomic(Path(result.run_dir) / METRICS_FILE, json.dumps(metrics, indent=2))
    return result


def distill_config(teachers: list[str], student: str, **settings: Any) -> TrainConfig:
    """The student's settings: ``student`` backbone, the teachers listed (resolved paths)."""
    return TrainConfig(backbone=student, teachers=[str(Path(t).resolve()) for t in teachers], **settings)
