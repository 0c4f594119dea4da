"""Using a trained run: ``labeltune evaluate``, ``predict`` and ``export`` (XRD runs go to ``cli_xrd``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labeltune.cli_output import UsageError, emit_json, print_skipped, progress_bar, stop_on_ctrl_c


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a run on labeled data."""
    from labeltune.core.xrd.inference import is_xrd_run

    if is_xrd_run(args.run_dir):
        from labeltune import cli_xrd

        return cli_xrd.evaluate(args, progress_bar, stop_on_ctrl_c, emit_json)
    from labeltune.core.datasets import scan
    from labeltune.core.inference import evaluate_run

    with progress_bar(not args.json) as progress, stop_on_ctrl_c() as stop:
        data = scan(args.data, progress=progress)
        metrics = evaluate_run(args.run_dir, data, args.device, progress, stop)
    if args.json:
        emit_json(metrics)
        return 0
    print(
        f"{metrics['n']} images: accuracy {metrics['accuracy']:.3f}, balanced accuracy "
        f"{metrics['balanced_accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}"
    )
    print(f"{'class':<28}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}")
    for row in metrics["per_class"]:
        print(
            f"{row['class']:<28}{row['precision']:>10.3f}{row['recall']:>8.3f}{row['f1']:>8.3f}"
            f"{row['support']:>9}"
        )
    print("confusion matrix (rows = true, columns = predicted):")
    for name, row in zip(
        [r["class"] for r in metrics["per_class"]], metrics["confusion_matrix"], strict=True
    ):
        print(f"  {name:<26}" + "".join(f"{v:>6}" for v in row))
    unfamiliar = metrics.get("unfamiliar") or {}
    if unfamiliar.get("available"):
        line = f"unfamiliar (unlike the training images): {unfamiliar['count']} of {metrics['n']}"
        flagged, rest = unfamiliar.get("accuracy_unfamiliar"), unfamiliar.get("accuracy_familiar")
        if flagged is not None:
            line += f"; accuracy {flagged:.3f} on those" + (
                f", {rest:.3f} on the rest" if rest is not None else ""
            )
        print(line)
    if metrics.get("seen_in_training"):
        print(
            f"note: {metrics['seen_in_training']} of these images were used to train this model, "
            "so these figures are optimistic; evaluate on images the run did not train on"
        )
    if metrics["skipped"]:
        from labeltune.core.datasets import SkippedFile

        print_skipped([SkippedFile(s["path"], s["reason"]) for s in metrics["skipped"]])
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict files and folders."""
    from labeltune.core.xrd.inference import is_xrd_run

    if is_xrd_run(args.run_dir):
        from labeltune import cli_xrd

        return cli_xrd.predict(args, progress_bar, stop_on_ctrl_c, emit_json)
    from labeltune.core import inference

    if getattr(args, "internal_standard", None):
        raise UsageError("--internal-standard is for XRD runs (a phase of the model's library)")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise UsageError("--min-confidence must be between 0 and 1")
    if args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    paths, skipped = inference.collect_inputs(args.inputs)
    with progress_bar(not args.json) as progress, stop_on_ctrl_c() as stop:
        predictions, bad = inference.predict_files(
            args.run_dir, paths, args.top_k, device=args.device, progress=progress, stop_event=stop
        )
    skipped += bad
    if args.out:
        k = max((len(p.top) for p in predictions), default=args.top_k)  # no empty columns past the classes
        inference.write_predictions_csv(Path(args.out), predictions, k)
    counts = (
        inference.sort_into(predictions, Path(args.sort_into), args.min_confidence) if args.sort_into else {}
    )
    if args.json:
        emit_json([p.to_json() for p in predictions] + [{"path": s.path, "error": s.reason} for s in skipped])
        return 0
    for p in predictions:
        print(f"{p.path}\t{p.label}\t{p.confidence:.3f}" + ("\tunfamiliar" if p.unfamiliar else ""))
    unfamiliar = sum(p.unfamiliar for p in predictions)
    if unfamiliar:
        print(
            f"{unfamiliar} of {len(predictions)} images look unlike the images this model was trained on "
            "(marked unfamiliar): do not trust their predictions without a look",
            file=sys.stderr,
        )
    if args.out:
        noun = "prediction" if len(predictions) == 1 else "predictions"
        print(f"wrote {len(predictions)} {noun} to {args.out}", file=sys.stderr)
    if counts:
        print(
            "sorted into "
            + str(args.sort_into)
            + ": "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
            file=sys.stderr,
        )
    print_skipped(skipped)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a run's model to ONNX or TorchScript with a model card."""
    from labeltune.core.export import export_model

    result = export_model(Path(args.run_dir), Path(args.out), args.format)
    print(
        f"wrote {result.path} and its model card {result.markdown_path} (for people) and {result.card_path} "
        f"(checked against PyTorch in float32: max difference {result.max_abs_diff:.2e})"
    )
    return 0
