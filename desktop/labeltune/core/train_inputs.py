"""The second step of an image fit: the trainer's inputs for the chosen strategy.

*features* and *partial* train on outputs of the frozen network, read from (or written to) the feature
cache: pooled features, or the trunk's output; *full* trains the whole network on decoded images. Either
way :func:`prepare_inputs` returns :class:`FitInputs`: the tensors, the trainable part and its parameter
groups, and the transform that turns a stored batch into the network's input.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labeltune.core.datasets import Dataset
from labeltune.core.features import (
    FeatureCache,
    FeatureKey,
    calibrate_batchnorm,
    default_cache_root,
    extract_features,
)
from labeltune.core.lazy_backbone import is_unbuilt, lazy_module
from labeltune.core.model import ModelConfig
from labeltune.core.probes import probed_frozen
from labeltune.core.progress import ProgressCallback, no_progress
from labeltune.core.train_config import TrainConfig
from labeltune.core.train_data import PreparedData, drop_failed
from labeltune.core.trainer import Callback

if TYPE_CHECKING:
    import torch
    from torch import nn

#: Feature-cache stage of the probe statistics (core/probes.py): the frozen trunk's, shared by strategies.
PROBE_STAGE = "probes"


@dataclass
class FitJob:
    """What one fit is asked to do: a new run, or a stopped one continued from ``checkpoint``."""

    run_dir: Path
    config: TrainConfig
    data: PreparedData
    checkpoint: dict[str, Any] | None = None
    progress: ProgressCallback = no_progress
    stop_event: threading.Event = field(default_factory=threading.Event)
    callbacks: Sequence[Callback] = ()
    cache_root: Path | None = None
    start: float = field(default_factory=time.perf_counter)
    source: Dataset | None = None  # the scanned data of a new run (None when resuming)


@dataclass
class FitInputs:
    """A strategy's tensors for the trainer and for the post-fit step."""

    data: PreparedData  # without the files that could not be read
    weights_id: str  # random weights: with the BatchNorm calibration's images in it
    trainable: nn.Module
    params: list[dict[str, Any]]  # the optimiser's parameter groups
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    x_all: torch.Tensor  # every item (first view), for the unfamiliar-input score
    probes_all: np.ndarray | None  # cached probe statistics (None for *full*: computed after the fit)
    transform: Callable[[torch.Tensor, bool], torch.Tensor]
    seconds_features: float = 0.0


def prepare_inputs(
    job: FitJob, model: Any, model_config: ModelConfig, weights_id: str, device: torch.device
) -> FitInputs:
    """The inputs of ``job``'s strategy for ``model`` (a Classifier: normalize, trunk, top, head)."""
    if job.config.strategy in ("features", "partial"):
        return _cached_inputs(job, model, model_config, weights_id, device)
    return _image_inputs(job, model, model_config, weights_id, device)


def _cached_inputs(
    job: FitJob, model: Any, model_config: ModelConfig, weights_id: str, device: torch.device
) -> FitInputs:
    """*features* / *partial*: outputs of the frozen part, from the cache where possible."""
    import torch

    config, data, progress, stop_event = job.config, job.data, job.progress, job.stop_event
    seconds_features = 0.0
    cache_root = Path(job.cache_root) if job.cache_root is not None else default_cache_root()
    stage = "pooled" if config.strategy == "features" else "trunk"

    def frozen_part() -> nn.Module:
        part = torch.nn.Sequential(model.normalize, model.trunk)
        return part.append(model.top) if stage == "pooled" else part

    # A lazy backbone (core/lazy_backbone.py) is built only if an image's features are not cached.
    frozen = lazy_module(frozen_part) if is_unbuilt(model) else frozen_part()
    calibrate: list[Path] = []
    if weights_id.startswith("random") and not config.init and "-bn" not in weights_id:
        # Random weights: BatchNorm statistics are estimated on (up to 64) training images first; the
        # images used are part of the cache key, since the features depend on them.
        candidates = np.flatnonzero(~data.is_val)
        train_idx = np.unique(candidates[np.linspace(0, len(candidates) - 1, 64).astype(int)])
        calibrate = [data.paths[i] for i in train_idx]
        calibration = hashlib.sha256("".join(data.hashes[i] for i in train_idx).encode()).hexdigest()
        weights_id = f"{weights_id}-bn{calibration[:10]}"
    key = FeatureKey(config.backbone, weights_id, model_config.preprocessing, model_config.input_size, stage)
    probe_key = FeatureKey(
        config.backbone, weights_id, model_config.preprocessing, model_config.input_size, PROBE_STAGE
    )
    with FeatureCache(cache_root, key) as cache, FeatureCache(cache_root, probe_key) as probe_cache:
        if calibrate:
            seconds_features += calibrated_batchnorm(
                frozen, cache, calibrate, model_config.input_size, device, stop_event
            )
        probed = lambda: probed_frozen(model, config.backbone, with_top=stage == "pooled")  # noqa: E731
        extracted = extract_features(
            lazy_module(probed) if is_unbuilt(model) else probed(),
            data.paths,
            data.hashes,
            cache,
            model_config.input_size,
            device,
            batch_size=max(config.batch_size, 32),
            progress=progress,
            stop_event=stop_event,
            extra_cache=probe_cache,
        )
        probes_all = extracted.extra
        seconds_features += extracted.seconds_backbone
        x_all = torch.from_numpy(extracted.features)
        views = [x_all]
        if config.cached_views:
            from labeltune.core.augment import augment_batch

            for v in range(1, config.cached_views + 1):
                extra = extract_features(
                    frozen,
                    data.paths,
                    [f"{h}:aug{v}:seed{config.seed}" for h in data.hashes],
                    cache,
                    model_config.input_size,
                    device,
                    max(config.batch_size, 32),
                    progress,
                    stop_event,
                    transform=augment_batch,
                )
                seconds_features += extra.seconds_backbone
                views.append(torch.from_numpy(extra.features))
    data = drop_failed(data, extracted.ok, extracted.failed)
    trainable: nn.Module = model.head if stage == "pooled" else torch.nn.Sequential(model.top, model.head)
    params: list[dict[str, Any]] = [{"params": list(trainable.parameters())}]
    n_views = len(views)
    train_mask = ~data.is_val
    x_train = torch.cat([v[torch.from_numpy(train_mask)] for v in views])
    y_train = torch.from_numpy(np.tile(data.labels[train_mask], n_views))
    x_val = x_all[torch.from_numpy(data.is_val)]

    from labeltune.core.device import memory_format

    fmt = memory_format(device) if stage == "trunk" else torch.contiguous_format
    trainable.to(memory_format=fmt)  # partial: the top's convolutions in channels_last, as full's

    def to_float(x: torch.Tensor, _train: bool) -> torch.Tensor:
        return x.float().contiguous(memory_format=fmt) if x.dim() == 4 else x.float()

    return FitInputs(
        data, weights_id, trainable, params, x_train, y_train, x_val, x_all, probes_all, to_float,
        seconds_features,
    )  # fmt: skip


def _image_inputs(
    job: FitJob, model: Any, model_config: ModelConfig, weights_id: str, device: torch.device
) -> FitInputs:
    """*full*: the decoded images (unreadable ones left out); the whole network trains."""
    import torch

    from labeltune.core.augment import augment_batch
    from labeltune.core.device import memory_format
    from labeltune.core.features import decode_all

    config, data, progress, stop_event = job.config, job.data, job.progress, job.stop_event
    arrays, errors = decode_all(data.paths, model_config.input_size, progress, stop_event)
    failed = {i: e for i, e in enumerate(errors) if e is not None}
    ok = [i for i in range(len(arrays)) if i not in failed]
    data = drop_failed(data, ok, failed)
    good: list[np.ndarray] = [a for a in arrays if a is not None]
    images = torch.from_numpy(np.stack(good)) if good else torch.zeros((0,))
    base_lr = config.resolved_lr()
    backbone_params = [p for m in (model.trunk, model.top) for p in m.parameters()]
    params = [
        {"params": backbone_params, "lr": base_lr * config.backbone_lr_factor},
        {"params": list(model.head.parameters()), "lr": base_lr},
    ]
    fmt = memory_format(device)
    model.to(memory_format=fmt)
    augment = config.augment

    def to_image(x: torch.Tensor, train_mode: bool) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        if train_mode and augment:
            x = augment_batch(x)
        return x.contiguous(memory_format=fmt)

    train_mask = ~data.is_val
    x_train = images[torch.from_numpy(train_mask)]
    y_train = torch.from_numpy(data.labels[train_mask])
    x_val = images[torch.from_numpy(data.is_val)]
    return FitInputs(data, weights_id, model, params, x_train, y_train, x_val, images, None, to_image)


def calibrated_batchnorm(
    frozen: nn.Module,
    cache: FeatureCache,
    paths: list[Path],
    input_size: int,
    device: torch.device,
    stop_event: threading.Event | None = None,
) -> float:
    """Calibrate BatchNorm statistics once per cache (later runs load them); return the seconds spent."""
    from safetensors.torch import load as load_tensors
    from safetensors.torch import save as save_tensors

    stored = cache.get_blob("batchnorm")
    if stored is not None:
        frozen.load_state_dict(load_tensors(stored), strict=False)
        return 0.0
    start = time.perf_counter()
    calibrate_batchnorm(frozen, paths, input_size, device, stop_event=stop_event)
    buffers = {k: v.detach().cpu().contiguous() for k, v in frozen.named_buffers()}
    cache.put_blob("batchnorm", save_tensors(buffers))
    return time.perf_counter() - start
