"""Telling 'this input is unlike the training data': densities of a run's representations, a threshold.

A model is right on only about 1 in 5 field photos when it was trained on lab photos, and it cannot tell by
itself. After training, this module fits, on the training items, one Gaussian density per *representation*
the domain supplies (images: the pooled features the head reads, plus channel statistics of an early and a
middle layer — :mod:`labeltune.core.probes`) and scores new inputs by how far they lie from it:

* Each density is probabilistic PCA (Tipping & Bishop 1999): the leading ``k`` principal directions of the
  (within-class) covariance with their variances, and one isotropic variance for the rest, so it is
  well-defined with fewer items than dimensions and small to store (means, ``k`` directions, ``k + 1``
  variances). The distance is the Mahalanobis distance under that covariance, to the nearest class mean
  where the representation is class-conditional (Lee et al. 2018).
* Every distance is divided by its own in-distribution 95th percentile, measured *cross-fitted* (each fold
  of the training items scored by a density fitted on the other folds, whole groups per fold), so the parts
  are comparable; the combined score is the largest of them.
* The threshold is the ``1 - false_alarm`` quantile (conformal rank) of the combined score over those
  cross-fitted training scores and the validation items, and ``ood_score`` is divided by it: **an input is
  unfamiliar when its ``ood_score`` exceeds 1**, which happens to about ``false_alarm`` (5 %) of inputs
  like the training data.

Domain-neutral: it sees named arrays, not images; the XRD side can hand it its own representations.
Measured choices and alternatives (cosine k-nearest-neighbour distance, shrunk full covariance, logits
only) are in docs/adr/0012-calibration-and-unfamiliar-inputs.md. NumPy only, except :func:`torch_scorer`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn

FILE = "familiarity.safetensors"
FORMAT = "labeltune-familiarity-1"
#: Default share of in-distribution inputs flagged as unfamiliar.
FALSE_ALARM = 0.05
MAX_COMPONENTS = 64
CV_FOLDS = 5
#: Fewer training items than this: no cross-fitting (in-sample reference scores, flagged in the report).
MIN_CROSS_FIT = 20


@dataclass
class GaussianDensity:
    """A probabilistic-PCA Gaussian over one representation (with class means, or one mean)."""

    means: np.ndarray  # (M, D)
    components: np.ndarray  # (k, D), orthonormal rows
    variances: np.ndarray  # (k,)
    noise: float  # variance of every other direction
    normalize: bool = False  # L2-normalise inputs first (pooled features: direction matters, not norm)
    scale: float = 1.0  # in-distribution 95th percentile of the distance

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        labels: np.ndarray | None = None,
        normalize: bool = False,
        max_components: int = MAX_COMPONENTS,
    ) -> GaussianDensity:
        """Fit on ``x`` (N, D); with ``labels``, class means and the pooled within-class covariance."""
        x = _prepare(np.asarray(x, dtype=np.float64), normalize)
        n, dim = x.shape
        if labels is None:
            means = x.mean(0, keepdims=True)
            residual = x - means
        else:
            labels = np.asarray(labels)
            classes = np.unique(labels)
            means = np.stack([x[labels == c].mean(0) for c in classes])
            index = np.searchsorted(classes, labels)
            residual = x - means[index]
        eigen, vt = _principal_directions(residual, max_components)
        k = int(max(1, min(max_components, n // 4, dim - 1, len(eigen) - 1)))
        trace = float((residual**2).sum()) / max(n, 1)  # the sum of all the eigenvalues
        rest = max(trace - float(eigen[:k].sum()), 0.0) / max(dim - k, 1)
        total = trace / dim
        noise = float(max(rest, 1e-6 * total, 1e-12))
        variances = np.maximum(eigen[:k], noise)
        return cls(
            means.astype(np.float32),
            vt[:k].astype(np.float32),
            variances.astype(np.float32),
            noise,
            normalize,
        )

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to the nearest mean, ``(N,)`` (not divided by ``scale``)."""
        x = _prepare(np.asarray(x, dtype=np.float64), self.normalize)
        means = self.means.astype(np.float64)
        comps = self.components.astype(np.float64)
        variances = self.variances.astype(np.float64)
        out = np.empty(len(x))
        step = max(1, 2**22 // max(1, len(means) * x.shape[1]))  # bounded memory for (n, means, dim)
        for start in range(0, len(x), step):
            z = x[start : start + step, None, :] - means[None, :, :]
            proj = z @ comps.T
            inside = (proj**2 / variances).sum(2)
            outside = np.maximum((z**2).sum(2) - (proj**2).sum(2), 0.0) / self.noise
            out[start : start + step] = (inside + outside).min(1)
        return out


def _principal_directions(residual: np.ndarray, max_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of ``residual``'s covariance (descending, ``min(N, D)`` of them), its leading directions.

    What ``np.linalg.svd(residual)`` gives as ``singular**2 / N`` and ``vt``, from the eigenvectors of the
    smaller of the Gram matrix (N, N) and the scatter matrix (D, D): 4x faster single-threaded for 320 x
    1280 pooled features, and 5-20x when OpenBLAS's threads compete with a busy machine (the SVD took
    most of a cached re-run's time, docs/adr/0059). Only the first ``max_components + 1`` directions are
    returned; the signs may differ from the SVD's, which no distance sees.
    """
    n, dim = residual.shape
    keep = min(max_components + 1, n, dim)
    if n <= dim:
        values, vectors = np.linalg.eigh(residual @ residual.T)
        order = np.argsort(values)[::-1]
        values = np.maximum(values[order], 0.0)
        top = vectors[:, order[:keep]]
        rows = top.T @ residual  # (keep, D): singular value times the right singular vector
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        vt = rows / np.maximum(norms, 1e-300)
    else:
        values, vectors = np.linalg.eigh(residual.T @ residual)
        order = np.argsort(values)[::-1]
        values = np.maximum(values[order], 0.0)
        vt = vectors[:, order[:keep]].T
    return values / max(n, 1), vt


def _prepare(x: np.ndarray, normalize: bool) -> np.ndarray:
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


@dataclass
class Familiarity:
    """Densities per representation and the threshold of the combined score; see the module docstring."""

    densities: dict[str, GaussianDensity]
    threshold: float
    false_alarm: float = FALSE_ALARM
    report: dict[str, Any] = field(default_factory=dict)

    def part_scores(self, representations: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each representation's distance over its in-distribution 95th percentile (1 = unusual)."""
        return {
            name: density.distance(representations[name]) / density.scale
            for name, density in self.densities.items()
        }

    def score(self, representations: Mapping[str, np.ndarray]) -> np.ndarray:
        """``ood_score`` per item: above 1 means unfamiliar."""
        parts = self.part_scores(representations)
        return np.asarray(np.max(np.stack(list(parts.values())), 0) / self.threshold)

    # -- files ----------------------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write ``familiarity.safetensors`` (arrays + JSON metadata) into ``folder``; return its path."""
        from safetensors.numpy import save_file

        from labeltune.core.atomic import write_atomic

        tensors: dict[str, np.ndarray] = {}
        parts = {}
        for name, d in self.densities.items():
            tensors[f"{name}.means"] = np.ascontiguousarray(d.means, dtype=np.float32)
            tensors[f"{name}.components"] = np.ascontiguousarray(d.components, dtype=np.float32)
            tensors[f"{name}.variances"] = np.ascontiguousarray(d.variances, dtype=np.float32)
            parts[name] = {"noise": d.noise, "normalize": d.normalize, "scale": d.scale}
        meta = {
            "format": FORMAT,
            "threshold": self.threshold,
            "false_alarm": self.false_alarm,
            "parts": parts,
            "report": self.report,
        }
        path = Path(folder) / FILE
        metadata = {"familiarity": json.dumps(meta)}
        write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
        return path

    @classmethod
    def load(cls, folder: Path) -> Familiarity | None:
        """Read ``familiarity.safetensors`` from ``folder``; ``None`` if the run has none (older runs)."""
        from safetensors import safe_open
        from safetensors.numpy import load_file

        path = Path(folder) / FILE
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="numpy") as handle:
                meta = json.loads((handle.metadata() or {})["familiarity"])
            tensors = load_file(str(path))
        except Exception as exc:  # not safetensors (a pickle planted there is never unpickled), damaged
            from labeltune.core.errors import UnusableInputError, describe_weights_error

            raise UnusableInputError(f"{path}: {describe_weights_error(exc, str(path))}") from None
        densities = {
            name: GaussianDensity(
                tensors[f"{name}.means"],
                tensors[f"{name}.components"],
                tensors[f"{name}.variances"],
                float(info["noise"]),
                bool(info["normalize"]),
                float(info["scale"]),
            )
            for name, info in meta["parts"].items()
        }
        return cls(
            densities, float(meta["threshold"]), float(meta["false_alarm"]), dict(meta.get("report", {}))
        )


def fit_familiarity(
    train: Mapping[str, np.ndarray],
    labels: np.ndarray,
    groups: Sequence[str | None] | None = None,
    val: Mapping[str, np.ndarray] | None = None,
    class_conditional: Sequence[str] = ("content",),
    normalized: Sequence[str] = ("content",),
    false_alarm: float = FALSE_ALARM,
    seed: int = 0,
) -> Familiarity:
    """Fit the densities on the training items and calibrate the threshold (see the module docstring).

    ``train`` and ``val`` map representation names to ``(N, D)`` arrays of the training and validation
    items; ``labels`` are the training items' classes (for the class-conditional representations) and
    ``groups`` their groups (``None``: each item its own), which cross-fitting keeps in one fold.
    """
    from labeltune.core.blas_threads import single_threaded_blas

    with single_threaded_blas():  # small matrices: OpenBLAS's threads only wait for each other
        return _fit_familiarity(train, labels, groups, val, class_conditional, normalized, false_alarm, seed)


def _fit_familiarity(
    train: Mapping[str, np.ndarray],
    labels: np.ndarray,
    groups: Sequence[str | None] | None,
    val: Mapping[str, np.ndarray] | None,
    class_conditional: Sequence[str],
    normalized: Sequence[str],
    false_alarm: float,
    seed: int,
) -> Familiarity:
    labels = np.asarray(labels)
    n = len(labels)
    if n < 2:
        raise ValueError("the unfamiliar-input score needs at least 2 training items")
    folds = _folds(n, groups, seed)
    densities: dict[str, GaussianDensity] = {}
    reference: dict[str, np.ndarray] = {}
    for name, x in train.items():
        x = np.asarray(x)
        cond = labels if name in class_conditional else None
        norm = name in normalized
        crossed = np.zeros(n)
        if folds is None:
            crossed = GaussianDensity.fit(x, cond, norm).distance(x)
        else:
            for fold in range(CV_FOLDS):
                held = folds == fold
                fitted = GaussianDensity.fit(x[~held], None if cond is None else cond[~held], norm)
                crossed[held] = fitted.distance(x[held])
        density = GaussianDensity.fit(x, cond, norm)
        density.scale = float(max(np.quantile(crossed, 0.95), 1e-12))
        densities[name] = density
        reference[name] = crossed / density.scale
    combined = np.max(np.stack(list(reference.values())), 0)
    val_combined = np.zeros(0)
    if val is not None and len(next(iter(val.values()), [])):
        val_parts = [
            densities[name].distance(np.asarray(val[name])) / densities[name].scale for name in densities
        ]
        val_combined = np.max(np.stack(val_parts), 0)
    pooled = np.concatenate([combined, val_combined])
    # Conformal rank: the ceil((n + 1)(1 - a))-th smallest keeps the false-alarm rate at or below a.
    rank = min(math.ceil((len(pooled) + 1) * (1.0 - false_alarm)), len(pooled))
    threshold = float(max(np.sort(pooled)[rank - 1], 1e-12))
    report = {
        "method": "probabilistic-PCA Mahalanobis distance per representation, largest ratio to its "
        "95th percentile; threshold at the conformal (1 - false alarm) quantile",
        "representations": {name: int(np.asarray(x).shape[1]) for name, x in train.items()},
        "false_alarm_target": false_alarm,
        "reference_items": len(pooled),
        "cross_fitted": folds is not None,
        "train_unfamiliar_rate": round(float(np.mean(combined > threshold)), 4),
        "val_items": len(val_combined),
        "val_unfamiliar_rate": round(float(np.mean(val_combined > threshold)), 4)
        if len(val_combined)
        else None,
    }
    return Familiarity(densities, threshold, false_alarm, report)


def _folds(n: int, groups: Sequence[str | None] | None, seed: int) -> np.ndarray | None:
    if n < MIN_CROSS_FIT:
        return None
    rng = np.random.default_rng(seed)
    keys = [f"\x00{i}" if groups is None or groups[i] is None else str(groups[i]) for i in range(n)]
    unique = sorted(set(keys))
    if len(unique) < CV_FOLDS:
        return None
    order = rng.permutation(len(unique))
    fold_of = {unique[j]: rank % CV_FOLDS for rank, j in enumerate(order)}
    return np.asarray([fold_of[k] for k in keys])


def torch_scorer(familiarity: Familiarity, names: Sequence[str]) -> nn.Module:
    """A module computing ``ood_score`` from the representations in ``names`` order (for exports)."""
    import torch
    from torch import nn

    class PartDistance(nn.Module):
        def __init__(self, d: GaussianDensity) -> None:
            super().__init__()
            self.register_buffer("means", torch.from_numpy(np.asarray(d.means, np.float32)))
            self.register_buffer("components", torch.from_numpy(np.asarray(d.components, np.float32)))
            self.register_buffer("variances", torch.from_numpy(np.asarray(d.variances, np.float32)))
            self.noise, self.normalize, self.scale = float(d.noise), bool(d.normalize), float(d.scale)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.nan_to_num(x.float(), nan=0.0, posinf=0.0, neginf=0.0)
            if self.normalize:
                x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
            means: torch.Tensor = self.means  # type: ignore[assignment]
            comps: torch.Tensor = self.components  # type: ignore[assignment]
            variances: torch.Tensor = self.variances  # type: ignore[assignment]
            z = x.unsqueeze(1) - means.unsqueeze(0)
            proj = z @ comps.T
            inside = (proj * proj / variances).sum(2)
            outside = ((z * z).sum(2) - (proj * proj).sum(2)).clamp_min(0.0) / self.noise
            return (inside + outside).min(1).values / self.scale

    class Scorer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.parts = nn.ModuleList(PartDistance(familiarity.densities[n]) for n in names)
            self.threshold = float(familiarity.threshold)

        def forward(self, *representations: torch.Tensor) -> torch.Tensor:
            scores = [part(x) for part, x in zip(self.parts, representations, strict=True)]
            return torch.stack(scores, 1).max(1).values / self.threshold

    return Scorer()
