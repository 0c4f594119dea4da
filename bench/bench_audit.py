"""Audit benchmark: out-of-fold head and near-duplicate search on 20 000 items (issue 12).

Run: ``.venv/bin/python bench/bench_audit.py [--n 20000] [--dims 1280]``. Not a test: prints figures only.

Synthetic pooled features (``--dims``, EfficientNet-Lite0's width by default) of 10 classes with 5 % of the
labels flipped and 50 planted noisy copies: the seconds of ``out_of_fold_probs`` (5 folds) and of
``near_duplicates``, and how many planted errors and copies come out at the top.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from labeltune.core.audit import label_issues, near_duplicates
from labeltune.core.oof import out_of_fold_probs


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--dims", type=int, default=1280)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    k = 10
    truth = rng.integers(0, k, args.n)
    centers = rng.normal(0, 1, (k, args.dims)) * 0.15
    features = (centers[truth] + rng.normal(0, 1, (args.n, args.dims))).astype(np.float32)
    copies = rng.choice(args.n - 50, 50, replace=False)
    features[args.n - 50 :] = features[copies] + rng.normal(0, 0.05, (50, args.dims)).astype(np.float32)
    truth[args.n - 50 :] = truth[copies]
    labels = truth.copy()
    planted = rng.choice(args.n - 50, args.n // 20, replace=False)
    labels[planted] = (truth[planted] + rng.integers(1, k, len(planted))) % k
    start = time.perf_counter()
    probs = out_of_fold_probs(features, labels, k)
    oof_s = time.perf_counter() - start
    issues = label_issues(probs, labels)
    top = {issue.index for issue in issues[: 2 * len(planted)]}
    print(
        f"out-of-fold head, {args.n} x {args.dims}, 5 folds: {oof_s:.1f} s; planted label errors in the top "
        f"2x: {len(top & set(planted.tolist()))} of {len(planted)}"
    )
    start = time.perf_counter()
    groups = near_duplicates(features, labels.tolist())
    dup_s = time.perf_counter() - start
    found = {tuple(g.members) for g in groups}
    hits = sum((int(c), args.n - 50 + i) in found for i, c in enumerate(copies))
    print(f"near-duplicates, {args.n} x {args.dims}: {dup_s:.1f} s; planted copies found: {hits} of 50")


if __name__ == "__main__":
    main()
