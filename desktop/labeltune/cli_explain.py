"""``labeltune explain RUN_DIR INPUT [--class NAME] --out HEATMAP.png``: why the model said so."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labeltune.cli_output import UsageError, emit_json


def cmd_explain(args: argparse.Namespace) -> int:
    """Write the class evidence of one image (Grad-CAM overlay) or XRD pattern (activation over 2θ)."""
    from labeltune.core.errors import ImageDecodeError
    from labeltune.core.explain import explain
    from labeltune.core.explain_render import write_png

    if not 0.0 <= args.opacity <= 1.0:
        raise UsageError("--opacity must be between 0 and 1")
    source = Path(args.input)
    if not source.is_file():
        raise UsageError(f"explain: {source} is not a file")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"explain: the folder of --out ({out.parent}) does not exist")
    try:
        result = explain(
            args.run_dir, source, args.class_name, default_wavelength=args.wavelength, device=args.device
        )
    except ImageDecodeError as error:  # the reason alone does not say which file
        raise UsageError(f"explain: {source}: {error}") from None
    write_png(result, out, args.opacity)
    if args.json:
        emit_json({**result.to_json(), "out": str(out)})
        return 0
    what = "activation over 2θ" if result.domain == "xrd" else "Grad-CAM"
    print(
        f"{source.name}: {what} for {result.class_name} (p = {result.probability:.3f}; "
        f"predicted {result.predicted} {result.confidence:.3f})"
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``explain`` on the ``labeltune`` command's sub-parsers."""
    p = sub.add_parser(
        "explain", help="heatmap of what made a run's model see a class in an image or pattern"
    )
    p.add_argument("run_dir")
    p.add_argument("input", metavar="INPUT", help="an image file (image runs) or pattern file (XRD runs)")
    p.add_argument(
        "--class", dest="class_name", default=None, metavar="NAME", help="default: the predicted class"
    )
    p.add_argument("--out", required=True, metavar="HEATMAP.png")
    p.add_argument("--opacity", type=float, default=0.5, help="image runs: heatmap opacity 0..1 (0.5)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--wavelength", type=float, default=None, help="xrd: Å, for files that do not state theirs"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain)
