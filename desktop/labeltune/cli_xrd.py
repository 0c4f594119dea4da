"""The XRD side of ``labeltune train``, ``predict`` and ``evaluate``: argument handling and output only."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from labeltune.core.errors import LabelTuneError
from labeltune.core.progress import ProgressCallback
from labeltune.core.xrd.pattern_files import PATTERN_SUFFIXES, collect_patterns

__all__ = ["PATTERN_SUFFIXES", "collect_patterns"]  # kept here for scripts that import them from the CLI


class XrdUsageError(LabelTuneError):
    """Bad XRD command-line usage."""


def looks_like_xrd_source(path: Path) -> bool:
    """Whether a training source is an XRD library, simulated set or labeled pattern folder."""
    if (path / "library.json").is_file() or (path / "patterns.npy").is_file():
        return True
    if (path / "xrd_project.json").is_file():
        return True
    labels = path / "labels.csv"
    if labels.is_file():
        try:
            header = labels.read_text(encoding="utf-8-sig").splitlines()[0]
        except (OSError, IndexError, UnicodeDecodeError):
            return False
        return "phases" in [h.strip() for h in header.split(",")]
    return False


def _check_wavelength(value: float | None) -> None:
    from labeltune.core.xrd.pattern import tube_line_in_nm

    if value is not None and not 0.1 < value < 5:
        raise XrdUsageError("--wavelength is in ångström, e.g. 1.5406 for Cu Kα1")
    line = tube_line_in_nm(value)
    if line is not None and value is not None:
        raise XrdUsageError(f"--wavelength {value:g} is {line} in nm; give it in ångström: {value * 10:g}")


def _radiation(args: argparse.Namespace) -> Any:
    """The ``--radiation`` of predict/evaluate as a `Radiation`, or None; refused beside --wavelength."""
    text = getattr(args, "radiation", None)
    if text is None:
        return None
    from labeltune.core.xrd.radiation import RadiationError, parse_radiation

    if args.wavelength is not None:
        raise XrdUsageError("give --radiation or --wavelength, not both")
    try:
        return parse_radiation(text)
    except RadiationError as exc:
        raise XrdUsageError(str(exc)) from None


def train(
    args: argparse.Namespace,
    progress_bar: Callable[[bool], Any],
    stop_on_ctrl_c: Callable[[], Any],
    emit_json: Callable[[Any], None],
) -> int:
    """``labeltune train SOURCE --domain xrd``."""
    from labeltune.core.xrd.train_config import XrdTrainConfig
    from labeltune.core.xrd.training import train_xrd

    if args.data is None:
        raise XrdUsageError(
            "train --domain xrd: give a library folder, simulated data folder or labeled folder"
        )
    if args.resume:
        raise XrdUsageError("--resume is for image runs; an XRD run continues with --init RUN_DIR")
    if args.fold is not None or args.folds < 0:
        raise XrdUsageError("xrd: --folds N sets the folds of the held-out check; --fold is for image runs")
    _check_wavelength(args.wavelength)
    source = Path(args.data).expanduser()
    if not source.is_dir():
        raise XrdUsageError(f"{source} is not a folder")
    config = XrdTrainConfig(
        epochs=30 if args.epochs is None else args.epochs,
        patterns_per_epoch=args.patterns_per_epoch,
        batch_size=XrdTrainConfig.batch_size if args.batch_size is None else args.batch_size,
        lr=args.lr,
        seed=args.seed,
        init=Path(args.init).expanduser() if args.init else None,
        max_phases=args.max_phases,
        monochromatic=args.monochromatic,
        threads=args.threads,
        check_folds=args.folds or 5,
    )
    try:
        config.validate()
    except ValueError as exc:
        raise XrdUsageError(str(exc)) from None
    from labeltune.core.distributed import from_main, is_main

    out = from_main(Path(args.out) if args.out else _default_run_dir(source))  # one name for every rank

    def on_epoch(record: Any) -> None:  # one line per epoch on stderr: training takes minutes
        if not args.json and is_main():
            sys.stderr.write(
                f"\repoch {record.epoch}/{config.epochs}: loss {record.train_loss:.4f}, simulated validation "
                f"exact sets {record.val_accuracy:.3f}, recall {record.val_balanced_accuracy:.3f} "
                f"({record.seconds:.0f} s)\n"
            )

    with progress_bar(not args.json) as progress, stop_on_ctrl_c() as stop:
        result = train_xrd(
            source, config, out, progress, stop, on_epoch=on_epoch, default_wavelength=args.wavelength
        )
    if not is_main():  # under torchrun, rank 0 prints
        return 130 if result.stopped else 0
    summary = result.to_json()
    if args.json:
        emit_json(summary)
    else:
        val = result.metrics["simulated_validation"]
        print(f"run: {result.run_dir}")
        print(
            f"{len(result.phases)} phases, {len(result.history)} epochs in "
            f"{result.metrics['seconds']:.0f} s; simulated validation: exact phase sets "
            f"{val['exact_accuracy']:.3f}, recall {val['recall']:.3f}, macro-F1 {val['macro_f1']:.3f}, "
            f"network fraction error {val['fraction_mae_points']:.1f} points"
        )
        if "measured_training_set" in result.metrics:
            m = result.metrics["measured_training_set"]
            print(f"labeled measurements (seen in training): exact phase sets {m['exact_accuracy']:.3f}")
        _print_comparison(result.metrics.get("comparison"))
        if result.stopped:
            print(f"stopped by user; the best model so far is saved. Continue with --init {result.run_dir}")
    return 130 if result.stopped else 0


def _print_comparison(comparison: Any) -> None:
    """The fine-tune against its --init model, and which one to use (as the app decides)."""
    if not isinstance(comparison, dict):
        return
    print(str(comparison.get("text", "")))
    previous = Path(str(comparison.get("previous", ""))).name
    if comparison.get("adopt"):
        print(f"verdict: the fine-tuned model is better than {previous}: use it")
    else:
        print(f"verdict: keep {previous}; the fine-tuned model did not do better")


def _default_run_dir(source: Path) -> Path:
    import time

    base = source / "runs" if (source / "xrd_project.json").is_file() else Path.cwd() / "runs"
    return base / time.strftime("xrd-%Y%m%d-%H%M%S")


def _predict(
    run_dir: str,
    paths: Sequence[Path],
    wavelength: float | None,
    fit: bool,
    progress: ProgressCallback,
    stop: Any,
    library: str | None = None,
    particle_size: float | None = None,
    internal_standard: tuple[str, float] | None = None,
    radiation: Any = None,
    texture: bool = False,
) -> tuple[list[Any], list[tuple[str, str]], list[str]]:
    """Predictions, skipped files and notes; files without a wavelength get the model's (and a note).

    ``radiation`` (``--radiation``, a `Radiation`) is what every file was measured with: no assumption,
    no note, and a file stating another wavelength stops the command (``RadiationConflictError``).

    Fitted fractions are corrected for microabsorption with a ``particle_size`` (µm); without one a
    warning says where the absorption contrast is large enough to matter (``core.xrd.absorption``).
    ``texture``: preferred orientation in the final refit of the decided phases (ADR 0065).
    """
    from labeltune.core.xrd.inference import load_xrd_model, predict_patterns

    if library is not None:  # the patterns' phases must be ones the model knows (ADR 0048)
        _check_library(run_dir, library)
    model = load_xrd_model(run_dir)
    notes: list[str] = []
    assumed = wavelength
    if assumed is None:
        assumed = model.library.wavelength
    predictions, skipped = predict_patterns(
        model,
        paths,
        default_wavelength=assumed,
        fit=fit,
        progress=progress,
        stop_event=stop,
        internal_standard=internal_standard,
        particle_size=particle_size,
        radiation=radiation,
        texture=texture,
    )
    if wavelength is None and radiation is None:
        from labeltune.core.xrd.readers import read_pattern

        for p in predictions:
            try:
                stated = read_pattern(p.path).wavelength_source == "file"
            except LabelTuneError:
                stated = True
            if not stated:
                p.warnings.insert(
                    0,
                    f"the file states no wavelength: assumed {assumed} Å (the model's); "
                    "give --radiation if it was measured otherwise",
                )
                if p.radiation is not None:
                    p.radiation["source"] = "assumed"
        if any(not _stated(p) for p in predictions):
            notes.append(
                f"some files state no wavelength; assumed {assumed} Å (the model's library). "
                "Give --radiation (e.g. CoKa, or Å) if they were measured with another source."
            )
    return predictions, skipped, notes


def _check_library(run_dir: str, library: str) -> None:
    """Refuse (one line, exit 2) when the run's model does not know every phase of ``library``."""
    from labeltune.core.xrd.library import LibraryError, load_library
    from labeltune.core.xrd.library_match import check_model_knows
    from labeltune.core.xrd.run_files import LIBRARY_DIR

    try:
        expected = load_library(Path(library).expanduser())
        known = load_library(Path(run_dir) / LIBRARY_DIR)
    except LibraryError as exc:
        raise XrdUsageError(str(exc)) from None
    check_model_knows(known, expected, f"the model {Path(run_dir).name}")


def _stated(prediction: Any) -> bool:
    return not any(w.startswith("the file states no wavelength") for w in prediction.warnings)


def predict(
    args: argparse.Namespace,
    progress_bar: Callable[[bool], Any],
    stop_on_ctrl_c: Callable[[], Any],
    emit_json: Callable[[Any], None],
) -> int:
    """``labeltune predict XRD_RUN PATTERN...``: phases, fractions, unexplained peaks."""
    _check_wavelength(args.wavelength)
    radiation = _radiation(args)
    if not 0.0 <= args.min_confidence <= 1.0:
        raise XrdUsageError("--min-confidence must be between 0 and 1")
    standard = None
    if getattr(args, "internal_standard", None):
        from labeltune.core.xrd.internal_standard import parse_internal_standard

        standard = parse_internal_standard(args.internal_standard)
        if args.no_fit:
            raise XrdUsageError("--internal-standard needs the fit: leave out --no-fit")
    size = getattr(args, "particle_size", None)
    if size is not None and not 0.01 <= size <= 1000:
        raise XrdUsageError("--particle-size is the grain diameter in µm, e.g. 5 (0.01-1000)")
    if size is not None and args.no_fit:
        raise XrdUsageError("--particle-size corrects fitted fractions; it cannot go with --no-fit")
    texture = getattr(args, "texture", None)
    if texture is not None and texture not in ("auto", "off"):
        raise XrdUsageError(f"--texture is auto or off, not {texture!r}")
    if texture is not None and args.no_fit:
        raise XrdUsageError("--texture is a choice of the fit; it cannot go with --no-fit")

    from labeltune.core.predict_stream import take_shard

    paths, skipped = collect_patterns(args.inputs)
    paths = take_shard(paths, getattr(args, "shard", None))
    with progress_bar(not args.json) as progress, stop_on_ctrl_c() as stop:
        predictions, bad, notes = _predict(
            args.run_dir,
            paths,
            args.wavelength,
            not args.no_fit,
            progress,
            stop,
            library=getattr(args, "library", None),
            particle_size=size,
            internal_standard=standard,
            radiation=radiation,
            texture=texture == "auto",
        )
    skipped += bad
    if args.out:
        _write_out(Path(args.out), predictions, skipped)
    if args.sort_into:  # by phase set, as the app's Predict a folder (core/use_model.py)
        from labeltune.core.inference import sort_into
        from labeltune.core.use_model import xrd_table

        counts = sort_into(xrd_table(predictions)[0], Path(args.sort_into), args.min_confidence)
        sys.stderr.write(
            f"sorted into {args.sort_into}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + "\n"
        )
    if args.json:
        rows = [p.to_json() for p in predictions] + [{"path": path, "error": why} for path, why in skipped]
        order = {str(path): i for i, path in enumerate(paths)}  # one object per file, in the order given
        emit_json(sorted(rows, key=lambda row: order.get(str(row["path"]), len(order))))
        return 0 if predictions or not skipped else 2
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    for p in predictions:
        print(Path(p.path).name)
        name_width = max([22, *(len(c.name) + 2 for c in p.phases)])  # mineral names run long
        formula_width = max([12, *(len(c.formula) + 2 for c in p.phases)])
        for call in p.phases:
            frac = f"{call.fraction * 100:5.1f} wt%" if call.fraction is not None else ""
            if call.fraction_esd is not None:
                frac = f"{call.fraction * 100:5.1f} ± {call.fraction_esd * 100:.1f} wt%"
            if call.absolute_fraction is not None:
                absolute, esd = call.absolute_fraction * 100, (call.absolute_fraction_esd or 0) * 100
                frac += f" (sample {absolute:.1f} ± {esd:.1f})"
            shift = (
                f"  lattice {(call.lattice_scale - 1) * 100:+.2f} %" if call.lattice_scale is not None else ""
            )
            label = f"{call.name:<{name_width}}{call.formula:<{formula_width}}"
            print(f"  {label}p={call.probability:.3f}  {frac}{shift}")
        if p.amorphous is not None:
            print(
                f"  amorphous / unidentified {p.amorphous * 100:.1f} ± {(p.amorphous_esd or 0) * 100:.1f} wt%"
            )
        if p.residual is not None:
            print(f"  fit residual Rwp {p.residual * 100:.1f} %, zero shift {p.zero_shift:+.3f}°")
        if p.radiation is not None:
            print(f"  radiation {_radiation_text(p.radiation)}")
        if p.detection_limits:
            print(f"  not found (detection limit, wt%): {p.limits_text()}")
        for alt in [a for a in p.alternatives if not a.chosen][:3]:
            mix = " + ".join(f"{n} {f * 100:.0f} %" for n, f in zip(alt.phases, alt.fractions, strict=True))
            print(f"  or {mix}: Rwp {alt.rwp * 100:.1f} %")
        for warning in p.warnings:
            if not warning.startswith("the file states no wavelength"):
                print(f"  ! {warning}")
    for path, why in skipped:
        hint = "; give --wavelength" if why.endswith("does not state its X-ray wavelength") else ""
        sys.stderr.write(f"skipped {path}: {why}{hint}\n")
    return 0 if predictions or not skipped else 2


def _radiation_text(used: dict[str, Any]) -> str:
    """``{name?, wavelength, wavelength2?, source}`` in words: "CoKa: 1.78897 Å + Kα2 1.79285 Å (given)"."""
    text = f"{used['wavelength']:g} Å" + (
        f" + Kα2 {used['wavelength2']:g} Å" if "wavelength2" in used else ""
    )
    where = {"file": "stated by the file", "given": "--radiation", "assumed": "assumed: the model's"}
    name = f"{used['name']}: " if used.get("name") else ""
    return f"{name}{text} ({where.get(str(used.get('source')), str(used.get('source')))})"


def _write_out(out: Path, predictions: Sequence[Any], skipped: Sequence[tuple[str, str]]) -> None:
    """``--out``: a summary table for ``.csv`` (core/xrd/summary.py), else the full JSON of every pattern.

    Whole or not at all: a kill or a full disk leaves the previous file (core/atomic.py); a failure is a
    StorageError, one line naming the file and the reason in words (ADR 0042).
    """
    from labeltune.core.atomic import write_text_atomic

    results = [p.to_json() for p in predictions]
    if out.suffix.lower() == ".csv":
        from labeltune.core.inference import write_csv_atomic
        from labeltune.core.xrd.summary import SUMMARY_HEADER, summary_rows

        errors = [{"path": path, "error": why} for path, why in skipped]
        write_csv_atomic(out, SUMMARY_HEADER, summary_rows(results + errors))
    else:
        write_text_atomic(out, json.dumps(results, indent=1))


def evaluate(
    args: argparse.Namespace,
    progress_bar: Callable[[bool], Any],
    stop_on_ctrl_c: Callable[[], Any],
    emit_json: Callable[[Any], None],
) -> int:
    """``labeltune evaluate XRD_RUN LABELED_DIR``: phase-set metrics by formula, fraction error."""
    from labeltune.core.xrd.evaluate import score_predictions, unknown_phases
    from labeltune.core.xrd.inference import load_xrd_model
    from labeltune.core.xrd.measured import read_labels_csv

    _check_wavelength(args.wavelength)
    radiation = _radiation(args)
    folder = Path(args.data).expanduser()
    if not (folder / "labels.csv").is_file():
        raise XrdUsageError(f"{folder} has no labels.csv (path,phases[,fractions])")
    rows = read_labels_csv(folder)
    library = load_xrd_model(args.run_dir).library
    unknown = unknown_phases(rows, library)
    if unknown:
        raise XrdUsageError(
            f"labels.csv names phases the model does not know: {', '.join(sorted(unknown))} "
            "(use the library's phase names or their formulas)"
        )
    with progress_bar(not args.json) as progress, stop_on_ctrl_c() as stop:
        predictions, skipped, _notes = _predict(
            args.run_dir, [r[0] for r in rows], args.wavelength, True, progress, stop, radiation=radiation
        )
    metrics = score_predictions(rows, predictions, library)
    per_file = metrics["files"]
    metrics["skipped"] = [{"path": path, "error": why} for path, why in skipped]
    if args.json:
        emit_json(metrics)
        return 0
    print(
        f"{metrics['n']} patterns: exact phase sets {metrics['exact_accuracy']:.3f}, "
        f"precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f}"
        + (
            f", weight-fraction error {metrics['fraction_mae_points']:.2f} points"
            if "fraction_mae_points" in metrics
            else ""
        )
    )
    for row in per_file:
        mark = "ok " if row["exact"] else "MISS"
        labeled = "" if row["exact"] else f" (labeled {', '.join(row['truth'])})"
        print(f"  {mark} {Path(row['path']).name}: predicted {', '.join(row['predicted']) or '-'}{labeled}")
    print("phases are compared by reduced formula: polymorphs of one formula count as the same phase")
    for bad_path, why in skipped:
        sys.stderr.write(f"skipped {bad_path}: {why}\n")
    return 0
