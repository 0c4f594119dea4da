"""``labeltune train``: a new run or ``--resume``, images here and XRD through ``cli_xrd``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from labeltune.cli_output import UsageError, emit_json, print_skipped, progress_bar, stop_on_ctrl_c


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) a run; under ``torchrun`` as one of its ranks (core/distributed.py)."""
    from labeltune.core import distributed

    if distributed.launched():
        device = "cpu" if _domain(args) == "xrd" else args.device  # XRD trains on the CPU: gloo
        return distributed.run_in_group(lambda: _train(args), device, args.threads)
    return _train(args)


def _domain(args: argparse.Namespace) -> str:
    """``image`` or ``xrd``: ``--domain``, or what DATA looks like."""
    from labeltune import cli_xrd

    if args.domain != "auto":
        return str(args.domain)
    return "xrd" if args.data and cli_xrd.looks_like_xrd_source(Path(args.data)) else "image"


def _train(args: argparse.Namespace) -> int:
    """Train (or resume) a run in this process (under torchrun: rank 0 prints and writes the run)."""
    from labeltune import cli_xrd
    from labeltune.core.distributed import from_main, is_main

    main = is_main()

    if _domain(args) == "xrd":
        return cli_xrd.train(args, lambda on: progress_bar(on and main), stop_on_ctrl_c, emit_json)
    from labeltune.core import training
    from labeltune.core.backbones import DEFAULT_BACKBONE
    from labeltune.core.datasets import scan

    # out of memory: told even with --json (stderr), as a line of its own
    notices: list[Any] = [_notices_to_stderr()] if main else []
    lines = (
        _progress_lines() if main else None
    )  # the app's multi-GPU run reads them (core/torchrun_launch.py)
    with progress_bar(not args.json and main) as bar, stop_on_ctrl_c() as stop:
        progress = lines or bar
        notices += [lines] if lines else []
        if args.resume:
            device = None if args.device == "auto" else args.device  # --device cpu: after the GPU was lost
            result = training.resume(
                Path(args.resume), progress, stop, notices, epochs=args.epochs, device=device
            )
        else:
            if args.data is None:
                raise UsageError("train: give DATA (a folder, CSV or project) or --resume RUN_DIR")
            config = _config(args, DEFAULT_BACKBONE)
            data = scan(args.data, progress=progress)
            out = from_main(Path(args.out) if args.out else training.new_run_dir(_runs_base(data)))
            listed = main and _list_outside_run(data, out, config)
            try:
                result = training.train(data, config, out, progress, stop, notices)
            except Exception:
                if listed and not (out / "checkpoint.pt").is_file():  # failed, nothing to continue
                    _forget_run(data, out)
                raise
        if not main:  # rank 0 records, prints and writes the run
            return 130 if result.stopped else 0
        _record_in_project(result)
    summary = result.to_json()
    if args.json:
        emit_json(summary)
    else:
        print_summary(result, summary)
    return 130 if result.stopped else 0


def _config(args: argparse.Namespace, default_backbone: str) -> Any:
    """The run's settings from the options; with ``--init``, the backbone and strategy are RUN's."""
    from labeltune.core.train_config import TrainConfig

    settings: dict[str, Any] = dict(
        epochs=0 if args.epochs is None else _positive(args.epochs, "--epochs"),
        batch_size=TrainConfig.batch_size if args.batch_size is None else args.batch_size,
        lr=args.lr,
        val_fraction=0.2 if args.val_fraction is None else args.val_fraction,
        folds=args.folds,
        fold=_fold(args),
        group_by=args.group_by,
        seed=args.seed,
        device=args.device,
        augment=not args.no_augment,
        cached_views=args.cached_views,
        patience=args.patience,
        threads=args.threads,
        precision=args.precision,
        batch_auto=args.batch_size is None,
    )
    if args.init:
        from labeltune.core.add_classes import inherited_config

        given = {
            "backbone": args.backbone,
            "strategy": args.strategy,
            "input_size": args.input_size,
            "head_hidden": args.head_hidden or None,
        }
        return inherited_config(Path(args.init), given, **settings)
    return TrainConfig(
        backbone=args.backbone or default_backbone,
        strategy=args.strategy or "features",
        weights=args.weights,
        input_size=args.input_size,
        head_hidden=args.head_hidden,
        **settings,
    )


def print_summary(result: Any, summary: dict[str, Any]) -> None:
    """The run's summary as text (``train`` and ``distill`` without ``--json``)."""
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
    print(f"{summary['seconds_total']:.1f} s in total, {summary['seconds_features']:.1f} s in the backbone")
    print_skipped(result.skipped)
    if summary.get("new_classes") is not None:
        before, after = summary["old_classes_accuracy_before"], summary["old_classes_accuracy_after"]
        print(
            f"added {', '.join(summary['new_classes'])}: old classes' accuracy {_pct(before)} -> "
            f"{_pct(after)}, new classes' {_pct(summary['new_classes_accuracy'])}"
        )
    if result.stopped:
        print(f"stopped by user; the best model so far is saved. Continue with --resume {result.run_dir}")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _progress_lines() -> Any:
    """Progress as ``@labeltune`` JSON lines on stderr when the app launched this run (else None)."""
    import os

    from labeltune.core.torchrun_launch import PROGRESS_ENV, ProgressLines

    return ProgressLines() if os.environ.get(PROGRESS_ENV) == "json" else None


def _notices_to_stderr() -> Any:
    """A trainer callback printing what the trainer tells mid-run (out of memory: smaller micro-batches)."""
    from labeltune.core.trainer import Callback, Trainer

    class NoticesToStderr(Callback):
        def on_batch_plan_change(self, trainer: Trainer, plan: object, message: str) -> None:
            """One line on stderr."""
            sys.stderr.write(f"labeltune: {message}\n")
            sys.stderr.flush()

    return NoticesToStderr()


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


def _list_outside_run(data: Any, out: Path, config: Any) -> bool:
    """List a project's run in its store as it starts when ``--out`` lies outside the project's runs.

    The app finds a killed run by looking in the project's ``runs`` folder; one elsewhere was lost to
    it (not listed, no Continue) unless recorded first. Recorded as interrupted at epoch 0; the run's
    end (or a stop) records its results over it (``_record_in_project``).
    """
    if data.kind != "project":
        return False
    from labeltune.core.project import Project
    from labeltune.core.untrusted import inside

    root = Path(data.root)
    if inside(out.resolve(), (root / "runs").resolve()):
        return False
    summary = {
        "run_dir": str(out.resolve()),
        "backbone": config.backbone,
        "strategy": config.strategy,
        "val_accuracy": None,
        "epochs_run": 0,
        "epochs_planned": config.epochs or None,
        "stopped": True,
        "interrupted": True,
    }
    with Project.open(root) as project:
        project.record_run(out.name, out.resolve(), config.backbone, config.strategy, summary)
    return True


def _forget_run(data: Any, out: Path) -> None:
    """Drop the record :func:`_list_outside_run` made of a run that failed before its first checkpoint."""
    from labeltune.core.project import Project

    try:
        with Project.open(Path(data.root)) as project:
            project.delete_run(out.name)
    except Exception:  # the training error is the one to report
        pass


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
