"""``labeltune suggest RUN_DIR DATA``: the unlabeled items most worth labeling next (images and XRD)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from labeltune.cli_output import UsageError, emit_json, progress_bar, stop_on_ctrl_c


def add_parser(sub: Any) -> None:
    """Register ``suggest`` on the ``labeltune`` sub-command parser."""
    p = sub.add_parser(
        "suggest", help="the unlabeled items the model is least sure about, near-copies spread out"
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "data", metavar="DATA", help="project, class folder (top-level files), CSV, pattern folder"
    )
    p.add_argument("--n", type=int, default=20, metavar="N", help="how many items (default 20)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--wavelength", type=float, default=None, help="xrd: Å, for files that do not state theirs"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_suggest)


def cmd_suggest(args: argparse.Namespace) -> int:
    """Print the label-next queue: most useful first."""
    from labeltune.core.suggest_items import suggest

    if args.n < 1:
        raise UsageError("--n must be at least 1")
    if args.wavelength is not None and not 0.1 < args.wavelength < 5:
        raise UsageError("--wavelength must be in Å, between 0.1 and 5")
    with progress_bar(not args.json) as progress, stop_on_ctrl_c() as stop:
        queue, skipped = suggest(
            args.run_dir,
            args.data,
            args.n,
            device=args.device,
            wavelength=args.wavelength,
            progress=progress,
            stop_event=stop,
        )
    if args.json:
        emit_json([s.to_json() for s in queue])
        return 0
    if not queue:
        print(f"no unlabeled items in {args.data}", file=sys.stderr)
    for rank, s in enumerate(queue, start=1):
        print(f"{rank:>3}  {s.score:.3f}  {s.path}\t{s.predicted or '(none)'}\t{s.confidence:.3f}")
    for path, reason in skipped[:10]:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if len(skipped) > 10:
        print(f"... and {len(skipped) - 10} more skipped", file=sys.stderr)
    return 0
