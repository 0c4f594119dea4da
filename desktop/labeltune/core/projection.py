"""A map of the data: features of N items → (N, 2) coordinates. Arrays in, no domain.

PCA, computed by a randomized SVD (Halko, Martinsson & Tropp 2011: a Gaussian sketch of the centred
features, a few power iterations, then the SVD of a small matrix), so 10 000 × 1280 features take well
under a second on two cores, with numpy only. Why PCA and no t-SNE or UMAP (measurements, installer
size): docs/adr/0027-label-next-and-data-map.md; ``bench/bench_projection.py`` prints the table.

The result is deterministic for a seed: the sketch is drawn from ``numpy.random.default_rng(seed)`` and
each axis's sign is fixed (its largest loading is positive), so the same features give the same map.
"""

from __future__ import annotations

import numpy as np

OVERSAMPLE = 10
POWER_ITERATIONS = 4


def pca_axes(features: np.ndarray, k: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(mean row, ``(k, D)`` principal axes) of ``features``, by randomized SVD for a seed."""
    x = _as_matrix(features)
    mean = x.mean(axis=0)
    centred = x - mean
    n, d = centred.shape
    k = max(1, min(k, n, d))
    rank = min(k + OVERSAMPLE, n, d)
    if rank >= min(n, d) or min(n, d) <= 64:  # small: the exact SVD is as quick
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:k]
    else:
        rng = np.random.default_rng(seed)
        sketch = centred @ rng.standard_normal((d, rank)).astype(centred.dtype)
        for _ in range(POWER_ITERATIONS):  # sharpen the leading directions; QR keeps it stable
            sketch, _ = np.linalg.qr(sketch)
            sketch = centred @ (centred.T @ sketch)
        basis, _ = np.linalg.qr(sketch)
        _, _, vt = np.linalg.svd(basis.T @ centred, full_matrices=False)
        axes = vt[:k]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    return mean, axes


def project(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(N, 2)`` map coordinates of ``features`` (``(N, ...)``, flattened per item): the first two PCs.

    Fewer than two items, or features with no spread, give zeros (nothing to lay out).
    """
    x = _as_matrix(features)
    out = np.zeros((len(x), 2), dtype=np.float32)
    if len(x) < 2 or x.shape[1] == 0:
        return out
    mean, axes = pca_axes(x, 2, seed)
    coords = (x - mean) @ axes.T
    out[:, : coords.shape[1]] = coords
    return out


def knn_accuracy(coords: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of ``labels`` in ``coords``: how well the map keeps groups.

    Brute force (O(N²) memory): meant for checks and benchmarks on a few thousand points.
    """
    c = np.asarray(coords, dtype=np.float64)
    y = np.asarray(labels)
    if len(c) < 2:
        return 1.0
    d = ((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    k = max(1, min(k, len(c) - 1))
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    correct = 0
    for i, row in enumerate(nearest):
        values, counts = np.unique(y[row], return_counts=True)
        correct += int(values[counts.argmax()] == y[i])
    return correct / len(c)


def _as_matrix(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features)
    x = x.reshape(len(x), -1) if x.ndim != 2 else x
    return np.asarray(x, dtype=np.float32 if x.dtype != np.float64 else np.float64)
