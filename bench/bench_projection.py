"""Data map and label-next benchmark: seconds for 10 000 x 1280 features and for real cached features.

Run: ``.venv/bin/python bench/bench_projection.py [--n 10000] [--dim 1280] [--cache DIR]``. Not a test:
prints a table (the one in docs/adr/0027-label-next-and-data-map.md).

* synthetic: ``n`` x ``dim`` "random-ish" features shaped like pooled CNN features: 10 Gaussian clusters,
  passed through ReLU (all non-negative, most of the spread shared), stored as float16 like the cache;
* real: every pooled-feature file in the feature cache (``$LABELTUNE_CACHE_DIR``, or ``--cache``), e.g.
  after ``labeltune train`` on the corn or fish demo.

Rows: our map (PCA by randomized SVD, core/projection.py), the exact PCA (numpy's full SVD) for
comparison, one n x n distance pass (what every iteration of an exact t-SNE needs at least; t-SNE runs
~1000 of them, so it is a lower bound for 1/1000 of the work), and the label-next queue (core/suggest.py).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from labeltune.core.features import default_cache_root
from labeltune.core.projection import knn_accuracy, project
from labeltune.core.suggest import rank_unlabeled


def synthetic(n: int, dim: int, clusters: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` x ``dim`` float16 ReLU features in ``clusters`` Gaussian groups, and each row's group."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    x = centres[labels] + rng.normal(0.0, 1.5, (n, dim)).astype(np.float32)
    return np.maximum(x, 0.0).astype(np.float16), labels


def cached_sets(root: Path) -> list[tuple[str, np.ndarray]]:
    """(file name, features) of every pooled-feature cache file under ``root``."""
    found = []
    for path in sorted((root / "features").glob("*-pooled-*.sqlite")):
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT shape, data FROM features WHERE view = 0").fetchall()
        if len(rows) >= 10:
            arrays = [np.frombuffer(d, dtype=np.float16).reshape(json.loads(s)) for s, d in rows]
            found.append((path.name, np.stack(arrays)))
    return found


def seconds(job: Callable[[], object], repeats: int = 3) -> float:
    """Best of ``repeats`` wall-clock seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        job()
        best = min(best, time.perf_counter() - start)
    return best


def rows_for(name: str, x: np.ndarray, labels: np.ndarray | None, full: bool) -> list[tuple[str, str, str]]:
    """Benchmark rows for one feature set."""
    n, dim = x.shape[0], int(np.prod(x.shape[1:]))
    size = f"{n} x {dim}"
    x32 = x.reshape(n, -1).astype(np.float32)
    out = [(name, size, f"map (randomized PCA): {seconds(lambda: project(x)):.3f} s")]
    if full:
        out.append(
            (
                name,
                size,
                f"exact PCA (full SVD): {seconds(lambda: np.linalg.svd(x32 - x32.mean(0), False), 1):.2f} s",
            )
        )

        def pairwise() -> None:
            sq = (x32 * x32).sum(1)
            _ = sq[:, None] + sq[None, :] - 2.0 * (x32 @ x32.T)

        out.append((name, size, f"one n x n distance pass (t-SNE needs ~1000): {seconds(pairwise, 1):.2f} s"))
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), n)
    out.append((name, size, f"label-next queue of 50: {seconds(lambda: rank_unlabeled(probs, x, 50)):.3f} s"))
    if labels is not None:
        pick = rng.choice(n, min(n, 2000), replace=False)
        acc = knn_accuracy(project(x)[pick], labels[pick], k=5)
        out.append((name, size, f"5-NN accuracy of the groups on the map (2000 points): {acc:.3f}"))
    return out


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--cache", type=Path, default=None, help="feature cache root (default: the user's)")
    args = parser.parse_args()
    x, labels = synthetic(args.n, args.dim)
    table = rows_for("synthetic", x, labels, full=True)
    for name, features in cached_sets(args.cache or default_cache_root()):
        table += rows_for(f"cached {name[:40]}", features, None, full=False)
    width = max(len(r[0]) for r in table)
    for name, size, text in table:
        print(f"{name:<{width}}  {size:>12}  {text}")


if __name__ == "__main__":
    main()
