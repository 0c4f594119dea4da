"""``labeltune audit RUN_DIR DATA``: likely label errors and near-duplicates, for image and XRD runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from labeltune.cli_output import UsageError, emit_json, print_skipped, progress_bar, stop_on_ctrl_c


def add_audit_parser(sub: Any) -> None:
    """Register ``audit`` on the top-level sub-parsers."""
    p = sub.add_parser("audit", help="likely label errors and near-duplicates of labeled data, by a run")
    p.add_argument("run_dir")
    p.add_argument(
        "data", help="images: class folder, CSV or project; xrd: a folder or project with labels.csv"
    )
    p.add_argument(
        "--folds", type=int, default=5, metavar="K", help="out-of-fold predictions from K folds (5)"
    )
    p.add_argument(
        "--similarity",
        type=float,
        default=None,
        metavar="S",
        help="cosine similarity of features at which items count as near-duplicates (default 0.95)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--wavelength", type=float, default=None, help="xrd: Å, for files that do not state theirs"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    """Audit labeled data with a run: print the ranked label issues and duplicate groups."""
    from labeltune.core.audit_run import audit, image_inputs, xrd_inputs
    from labeltune.core.xrd.inference import is_xrd_run

    if args.folds < 2:
        raise UsageError("--folds must be at least 2")
    if args.similarity is not None and not 0.0 < args.similarity <= 1.0:
        raise UsageError("--similarity must be in (0, 1]")
    if not Path(args.data).expanduser().exists():
        raise UsageError(f"{args.data} does not exist")
    with progress_bar(not args.json) as progress, stop_on_ctrl_c() as stop:
        if is_xrd_run(args.run_dir):
            inputs = xrd_inputs(args.run_dir, args.data, args.wavelength, progress, stop)
        else:
            from labeltune.core.datasets import scan

            data = scan(args.data, progress=progress)
            inputs = image_inputs(args.run_dir, data, args.device, progress, stop)
        report = audit(inputs, args.folds, args.similarity)
    if args.json:
        emit_json(report.to_json())
        return 0
    print(f"{report.n_items} labeled items audited")
    print(f"likely label errors: {len(report.label_issues)} (most likely first)")
    for rank, issue in enumerate(report.label_issues, start=1):
        print(
            f"  {rank:>3}. {issue['score']:.3f}  {issue['path']}: labeled {issue['label']}, "
            f"looks like {issue['suggested']}"
        )
    print(f"near-duplicate groups: {len(report.duplicates)} (most similar first)")
    for group in report.duplicates:
        print(f"  {group['similarity']:.3f}  {group['kind']}: " + ", ".join(group["paths"]))
    print_skipped(report.skipped)
    return 0
