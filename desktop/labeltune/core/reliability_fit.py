"""After an image fit: calibrated confidence and unfamiliar-input densities (docs/adr/0012).

:func:`fit_reliability` fits both from the best epoch's validation logits and the representations of (a
sample of) the training and validation items; a stopped run skips it (docs/adr/0015).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labeltune.core.calibration import calibrate as calibrate_confidence
from labeltune.core.familiarity import fit_familiarity
from labeltune.core.model import ModelConfig
from labeltune.core.probes import CONTENT, PROBE_NAMES, probe_dims, probed_classifier, split_probes
from labeltune.core.progress import check_stop
from labeltune.core.train_config import TrainConfig
from labeltune.core.train_inputs import FitInputs

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: At most this many training (and validation) items fit the unfamiliar-input densities: a random
#: subset describes the distribution as well, and bounds the time and memory on 100 000-image projects.
RELIABILITY_MAX_TRAIN = 20_000
RELIABILITY_MAX_VAL = 5_000


def fit_reliability(
    run_dir: Path,
    model: Any,
    model_config: ModelConfig,
    config: TrainConfig,
    inputs: FitInputs,
    validation: tuple[torch.Tensor, torch.Tensor],
    device: torch.device,
    stop_event: threading.Event | None = None,
) -> dict[str, Any]:
    """Fit the temperature (into ``model_config``) and the unfamiliar-input densities (into ``run_dir``).

    ``validation`` is the best epoch's validation ``(logits, targets)``. Returns the ``calibration`` and
    ``unfamiliar`` entries of ``metrics.json``; raises :class:`StoppedError` when Stop is pressed meanwhile
    (before anything is written).
    """
    data = inputs.data
    logits, targets = validation
    groups = np.asarray(data.groups, dtype=object) if data.groups is not None else None
    report = calibrate_confidence(
        logits.numpy(),
        targets.numpy(),
        groups=groups[data.is_val] if groups is not None else None,
        seed=config.seed,
    )
    model_config.temperature = report.temperature
    out: dict[str, Any] = {"calibration": report.to_json()}
    rng = np.random.default_rng(config.seed)
    train_idx = np.flatnonzero(~data.is_val)
    val_idx = np.flatnonzero(data.is_val)
    if len(train_idx) > RELIABILITY_MAX_TRAIN:
        train_idx = np.sort(rng.choice(train_idx, RELIABILITY_MAX_TRAIN, replace=False))
    if len(val_idx) > RELIABILITY_MAX_VAL:
        val_idx = np.sort(rng.choice(val_idx, RELIABILITY_MAX_VAL, replace=False))
    chosen = np.concatenate([train_idx, val_idx])
    reps = _representations(model, config, inputs, device, model_config.input_size, chosen, stop_event)
    check_stop(stop_event)
    n_train = len(train_idx)
    try:
        familiarity = fit_familiarity(
            {name: rep[:n_train] for name, rep in reps.items()},
            data.labels[train_idx],
            [groups[i] for i in train_idx] if groups is not None else None,
            {name: rep[n_train:] for name, rep in reps.items()},
            seed=config.seed,
        )
    except ValueError as error:  # e.g. a single training image: nothing to describe
        log.warning("no unfamiliar-input score for %s: %s", run_dir, error)
        out["unfamiliar"] = {"note": f"not available: {error}"}
        return out
    check_stop(stop_event)
    familiarity.save(run_dir)
    out["unfamiliar"] = familiarity.report
    return out


def _representations(
    model: Any,
    config: TrainConfig,
    inputs: FitInputs,
    device: torch.device,
    input_size: int,
    indices: np.ndarray,
    stop_event: threading.Event | None = None,
) -> dict[str, np.ndarray]:
    """Representations of the items at ``indices`` for the unfamiliar-input score (core/probes.py).

    *features*: the cached pooled features and probe statistics; *partial*: the trained top on the cached
    trunk output, and the cached probes; *full*: one pass of the final model over the decoded images.
    """
    import torch

    from labeltune.core.device import inference_precision

    model.eval()
    # Full fine-tuning passes images through the whole network: batches of the training size, so that
    # Stop (checked between them) answers about as fast as during training.
    batch = config.batch_size if config.strategy == "full" else max(config.batch_size, 64)
    chosen = torch.from_numpy(np.asarray(indices, dtype=np.int64))
    x_all = inputs.x_all[chosen]
    probes_all = inputs.probes_all
    if probes_all is not None:
        probes_all = np.asarray(probes_all)[indices]
    if config.strategy == "features":
        content = x_all.float().numpy()
    elif config.strategy == "partial":
        outs = []
        with torch.inference_mode(), inference_precision(device):
            for start in range(0, len(x_all), batch):
                check_stop(stop_event)
                outs.append(model.top(x_all[start : start + batch].to(device).float()).float().cpu())
        content = torch.cat(outs).numpy() if outs else np.zeros((0, 1), np.float32)
    else:
        probed = probed_classifier(model, config.backbone)
        pooled, stats = [], []
        with torch.inference_mode(), inference_precision(device):
            for start in range(0, len(x_all), batch):
                check_stop(stop_event)
                _, p, st = probed(inputs.transform(x_all[start : start + batch].to(device), False))
                pooled.append(p.float().cpu())
                stats.append(st.float().cpu())
        content = torch.cat(pooled).numpy()
        probes_all = torch.cat(stats).numpy()
    assert probes_all is not None
    dims = probe_dims(model, config.backbone, input_size)
    parts = split_probes(np.asarray(probes_all, dtype=np.float32), dims)
    return {CONTENT: np.asarray(content, np.float32), **{n: np.asarray(parts[n]) for n in PROBE_NAMES}}
