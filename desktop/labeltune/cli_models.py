"""Using a trained run: ``labeltune evaluate``, ``predict`` and ``export`` (XRD runs go to ``cli_xrd``)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from labeltune.cli_output import UsageError, emit_json, print_skipped, progress_bar, stop_on_ctrl_c
from labeltune.core.progress import StoppedError


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
    """Predict files and folders, a batch at a time (CSV rows, copies and JSON written as they come)."""
    from labeltune.core.xrd.inference import is_xrd_run

    if is_xrd_run(args.run_dir):
        from labeltune import cli_xrd

        return cli_xrd.predict(args, progress_bar, stop_on_ctrl_c, emit_json)
    from labeltune.core import inference
    from labeltune.core.predict_stream import take_shard

    if getattr(args, "internal_standard", None):
        raise UsageError("--internal-standard is for XRD runs (a phase of the model's library)")
    if getattr(args, "radiation", None):
        raise UsageError("--radiation is for XRD runs (the X-ray source of the patterns)")
    if getattr(args, "texture", None):
        raise UsageError("--texture is for XRD runs (preferred orientation in the phase fit)")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise UsageError("--min-confidence must be between 0 and 1")
    if args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    batch_size = args.batch_size or DEFAULT_PREDICT_BATCH
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    paths, skipped = inference.collect_inputs(args.inputs)
    paths = take_shard(paths, args.shard)
    with contextlib.ExitStack() as stack:
        sink = _PredictionSink(args, stack)
        progress = stack.enter_context(progress_bar(not args.json))
        stop = stack.enter_context(stop_on_ctrl_c())
        try:
            for predictions, bad in inference.iter_predictions(
                args.run_dir, paths, args.top_k, batch_size, args.device, progress, stop
            ):
                sink.add(predictions)
                skipped += bad
        except StoppedError:
            sink.close_json(skipped)  # valid JSON on stdout even after a Stop: what was done
            raise
        sink.close_json(skipped)
        sink.commit()
    if args.json:
        return 0
    if sink.unfamiliar:
        print(
            f"{sink.unfamiliar} of {sink.count} images look unlike the images this model was trained on "
            "(marked unfamiliar): do not trust their predictions without a look",
            file=sys.stderr,
        )
    if args.out:
        noun = "prediction" if sink.count == 1 else "predictions"
        print(f"wrote {sink.count} {noun} to {args.out}", file=sys.stderr)
    if sink.counts:
        print(
            "sorted into "
            + str(args.sort_into)
            + ": "
            + ", ".join(f"{k} {v}" for k, v in sorted(sink.counts.items())),
            file=sys.stderr,
        )
    print_skipped(skipped)
    return 0


#: Images per forward pass when ``predict --batch-size`` is not given.
DEFAULT_PREDICT_BATCH = 32


class _PredictionSink:
    """Where ``predict``'s answers go, a batch at a time: stdout (text or a JSON array), the CSV, copies."""

    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        self.args = args
        self._stack = stack
        self._csv: Any = None
        self._json: Any = None
        self.count = 0
        self.unfamiliar = 0
        self.counts: dict[str, int] = {}

    def add(self, predictions: list[Any]) -> None:
        """Write one batch everywhere it goes."""
        from labeltune.core import inference

        if self.args.out and predictions:
            self._open_csv(len(predictions[0].top))
            self._csv.write([inference.prediction_row(p, self._width) for p in predictions])
        if self.args.sort_into:
            for folder, n in inference.sort_into(
                predictions, Path(self.args.sort_into), self.args.min_confidence
            ).items():
                self.counts[folder] = self.counts.get(folder, 0) + n
        for p in predictions:
            if self.args.json:
                self._json_writer().write(p.to_json())
            else:
                print(f"{p.path}\t{p.label}\t{p.confidence:.3f}" + ("\tunfamiliar" if p.unfamiliar else ""))
        self.count += len(predictions)
        self.unfamiliar += sum(p.unfamiliar for p in predictions)

    def _open_csv(self, k: int) -> None:
        if self._csv is None:
            from labeltune.core import inference
            from labeltune.core.predict_stream import StreamedCsv

            header = inference.prediction_header(k)  # k: no empty columns past the model's classes
            self._width = len(header)
            self._csv = self._stack.enter_context(StreamedCsv(Path(self.args.out), header))

    def _json_writer(self) -> Any:
        if self._json is None:  # opened at the first answer: an error before it prints no half array
            from labeltune.core.predict_stream import JsonArrayWriter

            self._json = JsonArrayWriter()
        return self._json

    def close_json(self, skipped: list[Any]) -> None:
        """End the JSON array (``--json``) with the skipped files."""
        if self.args.json:
            for s in skipped:
                self._json_writer().write({"path": s.path, "error": s.reason})
            self._json_writer().close()

    def commit(self) -> None:
        """Put the CSV in place (whole: a Stop or an error before this leaves the previous file)."""
        if self.args.out:
            self._open_csv(self.args.top_k)
            self._csv.commit()


def cmd_export(args: argparse.Namespace) -> int:
    """Export a run's model to ONNX or TorchScript with a model card."""
    from labeltune.core.export import export_model

    result = export_model(Path(args.run_dir), Path(args.out), args.format)
    print(
        f"wrote {result.path} and its model card {result.markdown_path} (for people) and {result.card_path} "
        f"(checked against PyTorch in float32: max difference {result.max_abs_diff:.2e})"
    )
    return 0
