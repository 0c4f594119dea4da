"""``labeltune distill``: several trained runs (teachers) into one smaller student run (core/distill.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from labeltune.cli_output import UsageError, emit_json, progress_bar, stop_on_ctrl_c


def add_parser(sub: Any) -> None:
    """Register ``distill``."""
    p = sub.add_parser("distill", help="train a small student run on the soft targets of trained runs")
    p.add_argument("data", help="class folder, path,label CSV, or project folder (its unlabeled items too)")
    p.add_argument("--teachers", nargs="+", required=True, metavar="RUN_DIR", help="trained image runs")
    p.add_argument("--student", required=True, metavar="BACKBONE", help="the student's backbone")
    p.add_argument("--strategy", default="features", choices=["features", "partial", "full"])
    p.add_argument("--weights", default="imagenet", help="the student's: imagenet, none, or a file")
    p.add_argument("--input-size", type=int, default=None, help="the student's input size (px)")
    p.add_argument("--epochs", type=int, default=None, help="default: the strategy's (30 features, 10 else)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--temperature", type=float, default=4.0, help="of the soft targets (default 4)")
    p.add_argument(
        "--label-weight", type=float, default=0.5, help="weight of the labels' loss against the soft targets"
    )
    p.add_argument(
        "--feature-loss",
        type=float,
        default=0.0,
        metavar="WEIGHT",
        help="weight of the teachers' pooled features as targets (partial/full students; default 0)",
    )
    p.add_argument("--group-by", default=None, metavar="SPEC", help="as for train (e.g. 'fish_(\\d+)_')")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="the student run's folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_distill)


def cmd_distill(args: argparse.Namespace) -> int:
    """Distil ``--teachers`` into a ``--student`` run; print the usual summary plus the comparison."""
    from labeltune.cli_train import _record_in_project, print_summary
    from labeltune.core import training
    from labeltune.core.datasets import scan
    from labeltune.core.distill import distill_config

    if args.epochs is not None and args.epochs < 1:
        raise UsageError("--epochs must be at least 1")
    config = distill_config(
        args.teachers,
        args.student,
        strategy=args.strategy,
        weights=args.weights,
        input_size=args.input_size,
        epochs=args.epochs or 0,
        batch_size=args.batch_size,
        lr=args.lr,
        distill_temperature=args.temperature,
        distill_alpha=args.label_weight,
        distill_feature_weight=args.feature_loss,
        group_by=args.group_by,
        val_fraction=args.val_fraction,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
    )
    with progress_bar(not args.json) as progress, stop_on_ctrl_c() as stop:
        data = scan(args.data, progress=progress)
        result = training.train(data, config, Path(args.out), progress, stop)
        _record_in_project(result)
    summary = result.to_json()
    if args.json:
        emit_json(summary)
        return 130 if result.stopped else 0
    print_summary(result, summary)
    report = summary.get("distill") or {}
    rows = [("student " + report["student"]["backbone"], report["student"])] if report else []
    rows += [(f"teacher {t['backbone']} {t['input_size']}px", t) for t in report.get("teachers", [])]
    rows += [("ensemble of the teachers", report["ensemble"])] if report else []
    for name, row in rows:
        acc = row["val_accuracy"]
        print(
            f"{name:32s} accuracy {'n/a' if acc is None else f'{acc:.3f}'}  {row['size_mb']:8.1f} MB  "
            f"{row['params'] / 1e6:6.2f} M params  {row['images_per_second']:8.1f} images/s"
        )
    return 130 if result.stopped else 0
