"""The ``labeltune`` command line: argument parsing and output only; all work happens in ``core``.

Exit status: 0 success, 2 bad usage or unusable input (one line on stderr, no traceback),
130 interrupted by Ctrl+C (a training run still saves its best model first).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labeltune import __version__
from labeltune.core.errors import LabelTuneError
from labeltune.core.progress import Progress, ProgressCallback, StoppedError

log = logging.getLogger("labeltune")


class UsageError(LabelTuneError):
    """Bad command-line usage."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse prints usage + exits 2; keep the exit code, one line
        raise UsageError(f"{self.prog}: {message}")


# -- output helpers -----------------------------------------------------------------------------------
def _emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[ProgressCallback]:
    """A tqdm bar per progress stage on stderr (none with --json or when stderr is not a terminal)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _p: None
        return
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def report(p: Progress) -> None:
        bar = bars.get(p.stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bars.clear()
            unit = "B" if p.stage.startswith("download") else "it"
            bar = bars[p.stage] = tqdm(
                total=p.total or None,
                desc=p.stage,
                unit=unit,
                unit_scale=unit == "B",
                leave=False,
                dynamic_ncols=True,
            )
        if p.total and bar.total != p.total:
            bar.total = p.total
        bar.n = p.done
        if p.message:
            bar.set_postfix_str(p.message, refresh=False)
        bar.refresh()

    try:
        yield report
    finally:
        for bar in bars.values():
            bar.close()


@contextmanager
def _stop_on_ctrl_c() -> Iterator[threading.Event]:
    """First Ctrl+C sets the stop event (work ends cleanly, keeping results); the second one aborts."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(_signum: int, _frame: object) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        sys.stderr.write("\nstopping after this batch (Ctrl+C again to abort)...\n")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_skipped(skipped: Sequence[Any], limit: int = 10) -> None:
    if not skipped:
        return
    sys.stderr.write(f"skipped {len(skipped)} unreadable file(s):\n")
    for item in skipped[:limit]:
        sys.stderr.write(f"  {item.path}: {item.reason}\n")
    if len(skipped) > limit:
        sys.stderr.write(f"  ... and {len(skipped) - limit} more (use --json for the full list)\n")


# -- commands -----------------------------------------------------------------------------------------
def cmd_backbones(args: argparse.Namespace) -> int:
    """List the backbones."""
    from labeltune.core.backbones import BACKBONES
    from labeltune.core.weights import weights_present

    rows = []
    for spec in BACKBONES.values():
        row = spec.to_json()
        row["weights_present"] = weights_present(spec.name)
        rows.append(row)
    if args.json:
        _emit_json(rows)
        return 0
    print(f"{'name':<20}{'input':>6}{'features':>10}{'top-1':>7}{'GFLOPs':>8}{'download':>10}  weights")
    for row in rows:
        present = "present" if row["weights_present"] else "not downloaded"
        print(
            f"{row['name']:<20}{row['input_size']:>6}{row['feature_dim']:>10}{row['imagenet_top1']:>7}"
            f"{row['gflops']:>8}{row['download_mb']:>8.0f}MB  {present}"
        )
        print(f"    {row['description']}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    """List, download or import pretrained weights."""
    from labeltune.core import weights

    if args.weights_command == "list":
        infos = weights.list_weights()
        if args.json:
            _emit_json([{**info.__dict__, "path": str(info.path)} for info in infos])
        else:
            for info in infos:
                if info.present:
                    state = f"present, {info.source or 'imported'} ({info.path})"
                else:
                    state = (
                        f"not downloaded ({info.download_mb:.0f} MB; labeltune weights download {info.name})"
                    )
                print(f"{info.name:<20}{state}")
        return 0
    if args.weights_command == "download":
        bundled = weights.bundled_weights_file(args.name)
        if bundled is not None:
            print(f"{args.name}: the ImageNet weights ship with LabelTune, nothing to download ({bundled})")
            return 0
        with _progress_bar(True) as progress, _stop_on_ctrl_c() as stop:
            path = weights.download_weights(args.name, progress=progress, stop_event=stop)
        print(f"{args.name}: ImageNet weights stored in {path}")
        return 0
    path = weights.import_weights(args.name, args.file)
    print(f"{args.name}: weights validated and stored in {path}")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    """Report what a data folder, CSV or project holds."""
    from labeltune.core.datasets import scan

    with _progress_bar(not args.json) as progress:
        data = scan(args.data, progress=progress)
    if args.json:
        _emit_json(data.summary())
        return 0
    print(f"{data.root} ({data.kind})")
    for name, count in data.counts().items():
        print(f"  {name:<30}{count:>7}")
    print(f"  {'(unlabeled)':<30}{len(data.unlabeled):>7}")
    print(f"{len(data.labeled)} labeled, {len(data.unlabeled)} unlabeled, {len(data.skipped)} skipped")
    _print_skipped(data.skipped)
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    """Create a project folder, optionally importing a class folder or CSV into it."""
    from labeltune.core.datasets import scan
    from labeltune.core.project import Project

    data = None
    if args.source:
        with _progress_bar(not args.json) as progress:
            data = scan(args.source, progress=progress)
    with Project.create(Path(args.folder), name=args.name) as project:
        if data is not None:
            project.add_source(data.root)
            project.add_samples(data.samples, source="import")
        summary = {
            "project": str(project.folder),
            "classes": project.counts(),
            "unlabeled": project.unlabeled_count(),
            "skipped": [s.to_json() for s in data.skipped] if data else [],
        }
    if args.json:
        _emit_json(summary)
        return 0
    print(f"created project {summary['project']}")
    classes: dict[str, int] = summary["classes"]  # type: ignore[assignment]
    for name, count in classes.items():
        print(f"  {name:<30}{count:>7}")
    print(f"  {'(unlabeled)':<30}{summary['unlabeled']:>7}")
    if data is not None:
        _print_skipped(data.skipped)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) a run."""
    from labeltune import cli_xrd

    domain = args.domain
    if domain == "auto":
        domain = "xrd" if args.data and cli_xrd.looks_like_xrd_source(Path(args.data)) else "image"
    if domain == "xrd":
        return cli_xrd.train(args, _progress_bar, _stop_on_ctrl_c, _emit_json)
    if args.init:
        raise UsageError("--init is for XRD runs (--domain xrd)")
    from labeltune.core import training
    from labeltune.core.backbones import DEFAULT_BACKBONE
    from labeltune.core.datasets import scan

    with _progress_bar(not args.json) as progress, _stop_on_ctrl_c() as stop:
        if args.resume:
            result = training.resume(Path(args.resume), progress, stop, epochs=args.epochs)
        else:
            if args.data is None:
                raise UsageError("train: give DATA (a folder, CSV or project) or --resume RUN_DIR")
            config = training.TrainConfig(
                backbone=args.backbone or DEFAULT_BACKBONE,
                strategy=args.strategy,
                weights=args.weights,
                epochs=0 if args.epochs is None else _positive(args.epochs, "--epochs"),
                batch_size=args.batch_size,
                lr=args.lr,
                val_fraction=0.2 if args.val_fraction is None else args.val_fraction,
                folds=args.folds,
                fold=_fold(args),
                group_by=args.group_by,
                seed=args.seed,
                device=args.device,
                input_size=args.input_size,
                head_hidden=args.head_hidden,
                augment=not args.no_augment,
                cached_views=args.cached_views,
                patience=args.patience,
                threads=args.threads,
            )
            data = scan(args.data, progress=progress)
            out = Path(args.out) if args.out else training.new_run_dir(_runs_base(data))
            result = training.train(data, config, out, progress, stop)
        _record_in_project(result)
    summary = result.to_json()
    if args.json:
        _emit_json(summary)
    else:
        print(f"run: {summary['run_dir']}")
        names = summary["classes"]
        classes = ", ".join(names) if len(names) <= 8 else f"{len(names)} classes"
        print(
            f"{summary['backbone']} / {summary['strategy']}: {summary['train_size']} training and "
            f"{summary['val_size']} validation images; classes: {classes}"
        )
        if summary.get("grouping"):
            from labeltune.core.grouping import grouping_text

            print(f"split: {grouping_text(summary['grouping'])}")
        if summary["val_accuracy"] is not None:
            from labeltune.core.metrics import headline_warnings

            acc, f1 = summary["val_accuracy"], summary["val_macro_f1"]
            epochs = f"best epoch {summary['best_epoch']} of {summary['epochs_run']}"
            low, high = result.metrics.get("accuracy_interval", (0.0, 1.0))
            print(
                f"validation accuracy {acc:.3f} (95 % interval {low:.2f}-{high:.2f} on {summary['val_size']} "
                f"images), macro-F1 {f1:.3f} ({epochs})"
            )
            for warning in headline_warnings(summary["val_size"], summary["weights_id"], (low, high)):
                print(f"warning: {warning}")
        calibration = result.metrics.get("calibration") or {}
        if calibration and not calibration.get("n"):
            print("confidence not calibrated: no validation images (--val-fraction 0)")
        if calibration.get("n"):
            print(
                f"confidence calibrated: temperature {calibration['temperature']:.2f}, expected calibration "
                f"error {calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f}"
                + ("" if calibration.get("cross_fitted") else " (in-sample: few validation images)")
            )
        unfamiliar = result.metrics.get("unfamiliar") or {}
        if unfamiliar.get("val_unfamiliar_rate") is not None:
            print(
                f"unfamiliar-image check: flags {unfamiliar['val_unfamiliar_rate']:.0%} of the validation "
                f"images (target {unfamiliar['false_alarm_target']:.0%})"
            )
        print(
            f"{summary['seconds_total']:.1f} s in total, {summary['seconds_features']:.1f} s in the backbone"
        )
        _print_skipped(result.skipped)
        if result.stopped:
            print(f"stopped by user; the best model so far is saved. Continue with --resume {result.run_dir}")
    return 130 if result.stopped else 0


def _fold(args: argparse.Namespace) -> int:
    """The 0-based validation fold of ``--folds N --fold K`` (K counts from 1), checking the pair."""
    if not args.folds:
        if args.fold is not None:
            raise UsageError("--fold needs --folds N (the number of folds to split into)")
        return 0
    if args.val_fraction is not None:
        raise UsageError(
            "--val-fraction and --folds are alternatives: with --folds, a fold is the validation"
        )
    if not 2 <= args.folds <= 100:
        raise UsageError("--folds must be between 2 and 100")
    if args.fold is None or not 1 <= args.fold <= args.folds:
        raise UsageError(f"give --fold K with K from 1 to {args.folds}: the fold to validate on")
    return int(args.fold) - 1


def _positive(value: int, option: str) -> int:
    if value < 1:
        raise UsageError(f"{option} must be at least 1")
    return value


def _runs_base(data: Any) -> Path:
    if data.kind == "project":
        return Path(data.root) / "runs"
    return Path.cwd() / "runs"


def _record_in_project(result: Any) -> None:
    """If the run's data is a project, list the run in the project's store."""
    from labeltune.core.datasets import PROJECT_FILE

    config = json.loads((Path(result.run_dir) / "config.json").read_text())
    source = (config.get("data") or {}).get("source")
    if not source or not (Path(source) / PROJECT_FILE).is_file():
        return
    from labeltune.core.project import Project

    with Project.open(Path(source)) as project:
        project.record_run(
            Path(result.run_dir).name, result.run_dir, result.backbone, result.strategy, result.to_json()
        )


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a run on labeled data."""
    from labeltune.core.xrd.inference import is_xrd_run

    if is_xrd_run(args.run_dir):
        from labeltune import cli_xrd

        return cli_xrd.evaluate(args, _progress_bar, _stop_on_ctrl_c, _emit_json)
    from labeltune.core.datasets import scan
    from labeltune.core.inference import evaluate_run

    with _progress_bar(not args.json) as progress, _stop_on_ctrl_c() as stop:
        data = scan(args.data, progress=progress)
        metrics = evaluate_run(args.run_dir, data, args.device, progress, stop)
    if args.json:
        _emit_json(metrics)
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

        _print_skipped([SkippedFile(s["path"], s["reason"]) for s in metrics["skipped"]])
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict files and folders."""
    from labeltune.core.xrd.inference import is_xrd_run

    if is_xrd_run(args.run_dir):
        from labeltune import cli_xrd

        return cli_xrd.predict(args, _progress_bar, _stop_on_ctrl_c, _emit_json)
    from labeltune.core import inference

    if not 0.0 <= args.min_confidence <= 1.0:
        raise UsageError("--min-confidence must be between 0 and 1")
    if args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    paths, skipped = inference.collect_inputs(args.inputs)
    with _progress_bar(not args.json) as progress, _stop_on_ctrl_c() as stop:
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
        _emit_json(
            [p.to_json() for p in predictions] + [{"path": s.path, "error": s.reason} for s in skipped]
        )
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
    _print_skipped(skipped)
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


def cmd_demo(args: argparse.Namespace) -> int:
    """Write a shipped demo as a project folder (or list the demos)."""
    from labeltune.core import demos

    if args.name is None:
        rows = [
            {
                **spec.__dict__,
                "images": len(demos.demo_items(spec.name)),
                "classes": demos.demo_counts(spec.name),
            }
            for spec in demos.DEMOS.values()
        ]
        if args.json:
            _emit_json(rows)
            return 0
        for row in rows:
            kinds, items = ("phases", "patterns") if row.get("domain") == "xrd" else ("classes", "images")
            print(f"{row['name']:<8}{row['title']} ({len(row['classes'])} {kinds}, {row['images']} {items})")
            print(f"        {row['description']}")
            print(f"        credit: {row['credit']}")
        print("write one with: labeltune demo NAME [--out DIR]")
        return 0
    spec = demos.get_demo(args.name)
    out = Path(args.out) if args.out else Path.cwd() / f"labeltune-demo-{spec.name}"
    folder = demos.write_demo(spec.name, out)
    counts = demos.demo_counts(spec.name)
    if args.json:
        _emit_json({"project": str(folder), "name": spec.title, "classes": counts})
        return 0
    print(f"wrote the {spec.title!r} demo project to {folder}")
    for name, count in counts.items():
        print(f"  {name:<30}{count:>7}")
    if spec.domain == "xrd":
        model = json.loads((folder / "xrd_project.json").read_text(encoding="utf-8")).get("model")
        print(f"identify its phases with: labeltune predict {model or 'MODEL_RUN'} {folder / 'patterns'}")
    print(f"open it with: labeltune gui {folder}")
    return 0


def cmd_self_test(args: argparse.Namespace) -> int:
    """``labeltune --self-test``: one line per check, then a one-line summary; 0 if all passed, else 1."""
    from labeltune.selftest import run_self_test

    report = run_self_test()
    print(report.summary())
    return 0 if report.ok else 1


NO_DISPLAY_NOTE = "No display found, so the desktop app cannot start here; the commands above need none."


def display_available(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether a window can be shown: false on Linux/BSD with no X11/Wayland display and no Qt platform."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return True
    return any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def cmd_gui(args: argparse.Namespace) -> int:
    """Start the desktop app, optionally opening a project."""
    project = Path(args.project) if args.project else None
    if project is not None and not project.exists():
        raise UsageError(f"gui: {project} does not exist")
    if not display_available():
        raise UsageError(
            "gui: no display found (DISPLAY and WAYLAND_DISPLAY are not set); run it on a desktop, "
            "or set QT_QPA_PLATFORM (e.g. offscreen)"
        )
    try:
        from labeltune.app import run_gui
    except ImportError as error:  # a headless install without PySide6
        raise UsageError(f"gui: the desktop app cannot start ({error}); install PySide6") from None
    return run_gui(project)


def cmd_xrd(args: argparse.Namespace) -> int:
    """XRD subcommands: ``library`` (CIF files to a reference library), ``simulate`` (training data)."""
    if getattr(args, "xrd_command", "library") == "simulate":
        return cmd_xrd_simulate(args)
    from labeltune.core.xrd.library import build_library

    cifs: list[Path] = []
    for item in args.cifs:
        path = Path(item).expanduser()
        if path.is_dir():
            cifs.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() == ".cif"))
        elif path.is_file():
            cifs.append(path)
        else:
            raise UsageError(f"{path} does not exist")
    if not cifs:
        raise UsageError("no .cif files found in " + ", ".join(args.cifs))
    low, high = args.two_theta
    if not 0 < low < high < 180:
        raise UsageError("--two-theta needs 0 < MIN < MAX < 180")
    if not 0.1 < args.wavelength < 5:
        raise UsageError("--wavelength is in ångström, e.g. 1.5406 for Cu Kα1")
    library = build_library(cifs, Path(args.out), args.wavelength, (low, high))
    summary = {
        "library": str(Path(args.out)),
        "wavelength": library.wavelength,
        "two_theta_range": list(library.two_theta_range),
        "phases": [
            {"name": p.name, "formula": p.formula, "space_group": p.space_group, "n_peaks": p.n_peaks}
            for p in library.phases
        ],
        "skipped": [{"path": path, "reason": reason} for path, reason in library.skipped],
    }
    if args.json:
        _emit_json(summary)
    else:
        print(f"{len(library.phases)} phases written to {args.out} ({args.wavelength} Å, {low}-{high}° 2θ)")
        for phase in library.phases:
            print(f"  {phase.name:<24}{phase.formula:<14}{phase.space_group:<14}{phase.n_peaks:>5} peaks")
        for cif, reason in library.skipped:
            sys.stderr.write(f"skipped {cif}: {reason}\n")
    return 0 if library.phases else 2


def cmd_xrd_simulate(args: argparse.Namespace) -> int:
    """Simulate labelled multi-phase patterns from a reference library into a data folder."""
    import time

    from labeltune.core.xrd.library import LibraryError, load_library
    from labeltune.core.xrd.simulate import SimulationConfig, simulate, write_simulated

    if args.n < 1:
        raise UsageError("--n must be at least 1")
    if args.max_phases < 1:
        raise UsageError("--max-phases must be at least 1")
    try:
        library = load_library(Path(args.library).expanduser())
    except LibraryError as error:
        raise UsageError(str(error)) from None
    if not library.phases:
        raise UsageError(f"{args.library}: the library has no phases")
    config = SimulationConfig(max_phases=min(args.max_phases, len(library.phases)))
    start = time.perf_counter()
    batch = simulate(library, args.n, config, seed=args.seed)
    seconds = time.perf_counter() - start
    out = write_simulated(batch, library, Path(args.out))
    summary = {
        "out": str(out),
        "n": len(batch),
        "points": config.points,
        "phases": len(library.phases),
        "max_phases": config.max_phases,
        "seed": args.seed,
        "seconds": round(seconds, 3),
    }
    if args.json:
        _emit_json(summary)
    else:
        print(
            f"{len(batch)} patterns ({len(library.phases)} phases, up to {config.max_phases} each) "
            f"written to {out}"
        )
    return 0


# -- parser -------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to document the CLI)."""
    from labeltune.core.backbones import BACKBONES  # plain data, no torch

    parser = _Parser(prog="labeltune", description="Label images and fine-tune pretrained networks, offline.")
    parser.add_argument("--version", action="version", version=f"labeltune {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation (weights, training, projects, XRD, GUI; offscreen) and exit 0 or 1",
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("backbones", help="list the pretrained networks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_backbones)

    p = sub.add_parser("weights", help="list, download or import ImageNet weights")
    wsub = p.add_subparsers(dest="weights_command", required=True, parser_class=_Parser)
    w = wsub.add_parser("list", help="which weights are stored")
    w.add_argument("--json", action="store_true")
    w = wsub.add_parser("download", help="download official torchvision weights")
    w.add_argument("name")
    w = wsub.add_parser("import", help="import a weights file you already have (.pth or .safetensors)")
    w.add_argument("name")
    w.add_argument("file")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("scan", help="count images per class and report unreadable files")
    p.add_argument("data", help="class folder, path,label CSV, or project folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("project", help="create a project (labels in a crash-safe store)")
    psub = p.add_subparsers(dest="project_command", required=True, parser_class=_Parser)
    q = psub.add_parser("new", help="create a project folder, importing images from a folder or CSV")
    q.add_argument("folder", help="the project's own folder: new, or empty (the images stay where they are)")
    q.add_argument("--from", dest="source", default=None, metavar="DATA", help="class folder or CSV")
    q.add_argument("--name", default=None)
    q.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("train", help="fine-tune a backbone on labeled images, or train an XRD model")
    p.add_argument("data", nargs="?", help="class folder, path,label CSV, or project folder")
    p.add_argument(
        "--backbone",
        default=None,
        help="default efficientnet_lite0, whose ImageNet weights ship with LabelTune; the others: "
        + ", ".join(name for name in BACKBONES if name != "efficientnet_lite0")
        + " (labeltune backbones says more)",
    )
    p.add_argument("--strategy", default="features", choices=["features", "partial", "full"])
    p.add_argument(
        "--weights", default="imagenet", help="imagenet, none (random), or a .pth/.safetensors file"
    )
    p.add_argument(
        "--epochs", type=int, default=None, help="default 30 for features, 10 for partial and full; xrd 30"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 features/partial, 3e-4 full")
    p.add_argument(
        "--val-fraction", type=float, default=None, help="share of images kept for validation (default 0.2)"
    )
    p.add_argument(
        "--folds",
        type=int,
        default=0,
        metavar="N",
        help="k-fold cross-validation: split into N stratified (and grouped) folds; validate on --fold. "
        "xrd fine-tuning: folds of the held-out check against the --init model (default 5; 1: none)",
    )
    p.add_argument(
        "--fold", type=int, default=None, metavar="K", help="with --folds: validate on fold K (1..N)"
    )
    p.add_argument(
        "--group-by",
        default=None,
        metavar="SPEC",
        help="keep related images on one side of the split: none; folder (the folder each image sits in); "
        "csv:COLUMN (of the CSV given as DATA; csv:group also reads a project's imported groups) or "
        "csv:COLUMN@FILE (a CSV with path and COLUMN); regex:PATTERN or a plain regex (its first group in "
        r"the file name, e.g. 'fish_(\d+)_'). Default: the groups the import carried, if any",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--input-size", type=int, default=None, help="override the backbone's input size (px)")
    p.add_argument("--head-hidden", type=int, default=0, help="hidden units of an MLP head (0: linear)")
    p.add_argument("--no-augment", action="store_true", help="no flips/rotations/colour jitter")
    p.add_argument("--cached-views", type=int, default=0, help="augmented views per image to cache")
    p.add_argument("--patience", type=int, default=5, help="early stopping patience in epochs (0: off)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    p.add_argument(
        "--out", default=None, metavar="RUN_DIR", help="the new run's folder (default: runs/<time>-<id>)"
    )
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a stopped run")
    p.add_argument(
        "--domain",
        default="auto",
        choices=["auto", "image", "xrd"],
        help="image or xrd (auto: xrd for a library, simulated set or folder with labels.csv of phases)",
    )
    p.add_argument("--init", default=None, metavar="RUN_DIR", help="xrd: start from this run (fine-tuning)")
    p.add_argument(
        "--patterns-per-epoch", type=int, default=8192, help="xrd: simulated patterns per epoch (8192)"
    )
    p.add_argument("--max-phases", type=int, default=3, help="xrd: phases per simulated pattern, at most")
    p.add_argument("--monochromatic", action="store_true", help="xrd: no Kα2 in simulated patterns")
    p.add_argument(
        "--wavelength", type=float, default=None, help="xrd: Å, for labeled files that do not state theirs"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a run on labeled data")
    p.add_argument("run_dir")
    p.add_argument("data")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--wavelength", type=float, default=None, help="xrd: Å, for files that do not state theirs"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify images, or identify XRD phases, with a trained run")
    p.add_argument("run_dir")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--out", default=None, metavar="FILE.csv")
    p.add_argument("--sort-into", default=None, metavar="DIR", help="copy files into class sub-folders")
    p.add_argument(
        "--min-confidence", type=float, default=0.0, help="below this, --sort-into puts files in uncertain/"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--wavelength",
        type=float,
        default=None,
        help="xrd: Å, for files that do not state theirs (default: the model's, with a note)",
    )
    p.add_argument("--no-fit", action="store_true", help="xrd: network only, no least-squares fit")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a run's model to ONNX or TorchScript with a model card")
    p.add_argument("run_dir")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    p.add_argument("--out", required=True, metavar="FILE")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "demo", help="write a demo project (corn leaves, reef fish, XRD phases) that ships with the app"
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="corn, fish or xrd (omit to list the demos)")
    p.add_argument("--out", default=None, metavar="DIR", help="default: ./labeltune-demo-NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("gui", help="start the desktop app (also what plain `labeltune` does)")
    p.add_argument("project", nargs="?", metavar="PROJECT", help="project folder to open")
    p.set_defaults(func=cmd_gui)
    p = sub.add_parser("xrd", help="X-ray diffraction: reference libraries from CIF files")
    xsub = p.add_subparsers(dest="xrd_command", required=True, parser_class=_Parser)
    x = xsub.add_parser("library", help="compute reference peak lists from CIF files into a library folder")
    x.add_argument("cifs", nargs="+", metavar="CIF_OR_DIR")
    x.add_argument("--out", required=True, metavar="LIBRARY_DIR")
    x.add_argument("--wavelength", type=float, default=1.5406, help="Å (default Cu Kα1 1.5406)")
    x.add_argument("--two-theta", type=float, nargs=2, default=(10.0, 100.0), metavar=("MIN", "MAX"))
    x.add_argument("--json", action="store_true")
    x = xsub.add_parser("simulate", help="simulate labelled multi-phase patterns from a library folder")
    x.add_argument("library", metavar="LIBRARY_DIR")
    x.add_argument("--n", type=int, required=True, metavar="N", help="number of patterns")
    x.add_argument("--max-phases", type=int, default=3, metavar="K", help="phases per pattern, at most")
    x.add_argument("--seed", type=int, default=0, metavar="S")
    x.add_argument("--out", required=True, metavar="DATA_DIR")
    x.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_xrd)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labeltune`` command."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):  # exporter internals, even with --verbose
            logging.getLogger(noisy).setLevel(logging.WARNING)
        if args.self_test:
            return cmd_self_test(args)
        func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
        if func is None:
            if not display_available():
                parser.print_help()
                print(f"\n{NO_DISPLAY_NOTE}")
                return 0
            args.project = None
            func = cmd_gui
        return func(args)
    except LabelTuneError as error:
        sys.stderr.write(f"labeltune: error: {error.cli_message}\n")
        return 2
    except StoppedError:
        sys.stderr.write("labeltune: stopped\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("labeltune: interrupted\n")
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
