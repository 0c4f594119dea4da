"""Lite1 + Lite2 teachers distilled into a Lite0 student, with and without feature targets (issue 16).

Run: ``.venv/bin/python bench/bench_distill.py [--sets corn fish] [--work DIR] [--epochs N]``.

Per data set (corn; fish split by track with ``regex:fish_(\\d+)_``): two teachers fine-tuned on the
labels (Lite1 and Lite2, *features* strategy, ``--teacher-size`` px); a Lite0 trained on the labels alone
(the "single teacher of its own size", same strategy and size as the students); Lite0 students distilled
from both teachers (*partial*, so the student's own top stages train) with the teachers' soft targets
alone (``--feature-loss 0``) and with their pooled features as targets too (``--feature-loss W``). All
share the teachers' validation items. Sizes are the saved model files; speeds are plain PyTorch forward
passes (``model(x)``, batch 16, best of 3) on this machine's CPU, so only their ratios mean much on a
loaded machine. The ensemble's speed is 1 / sum(1 / speed), its size the sum. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "desktop"))
DATA = Path(os.environ.get("LABELTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
SETS = {
    "corn": (DATA / "corn_leaf" / "images", None),
    "fish": (DATA / "fish4knowledge" / "images", r"regex:fish_(\d+)_"),
}


def reuse(run_dir: Path) -> Any:
    """A finished run kept in ``--work`` from an earlier call (teachers are the slow part), else ``None``."""
    from types import SimpleNamespace

    metrics = run_dir / "metrics.json"
    if not metrics.is_file():
        return None
    return SimpleNamespace(metrics=json.loads(metrics.read_text()))


def one_set(name: str, args: argparse.Namespace, work: Path, cache: Path) -> dict[str, Any]:
    """Teachers, the Lite0 baseline and the students on one data set; their figures."""
    import torch

    from labeltune.core.datasets import scan
    from labeltune.core.distill import distill_config, model_card
    from labeltune.core.train_config import TrainConfig
    from labeltune.core.training import train

    folder, group_by = SETS[name]
    dataset = scan(folder)
    common: dict[str, Any] = dict(group_by=group_by, seed=0)
    teachers, rows = [], {}
    for backbone in ("efficientnet_lite1", "efficientnet_lite2"):
        out = work / f"{name}-teacher-{backbone[-5:]}"
        start = time.perf_counter()
        config = TrainConfig(backbone=backbone, input_size=args.teacher_size, strategy="features", **common)
        result = reuse(out) or train(dataset, config, out, cache_root=cache)
        teachers.append(str(out))
        print(
            f"  {name} teacher {backbone}: {result.metrics.get('accuracy'):.3f} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    student_settings: dict[str, Any] = dict(
        strategy=args.student_strategy, input_size=args.student_size, epochs=args.epochs, **common
    )
    start = time.perf_counter()
    alone = train(dataset, TrainConfig(**student_settings), work / f"{name}-lite0-alone", cache_root=cache)
    print(f"  {name} Lite0 alone: {alone.metrics.get('accuracy'):.3f} ({time.perf_counter() - start:.0f} s)")
    rows["lite0 alone"] = {
        "val_accuracy": alone.metrics.get("accuracy"),
        **model_card(alone.run_dir, torch.device("cpu")),
    }
    report: dict[str, Any] = {}
    for weight in args.feature_loss:  # the first computes the teachers' logits and pooled features
        start = time.perf_counter()
        config = distill_config(
            teachers, "efficientnet_lite0", distill_feature_weight=weight, **student_settings
        )
        student = train(dataset, config, work / f"{name}-student-f{weight:g}", cache_root=cache)
        report = student.metrics["distill"]
        rows[f"student, feature loss {weight:g}"] = report["student"]
        print(
            f"  {name} student feature loss {weight:g}: {student.metrics.get('accuracy'):.3f} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    for t in report.get("teachers", []):
        rows[f"teacher {t['backbone'][-5:]} {t['input_size']} px"] = t
    if report:
        rows["ensemble of the teachers"] = report["ensemble"]
    return {
        "rows": rows,
        "unlabeled_used": report.get("unlabeled_used"),
        "val_items": alone.to_json()["val_size"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["corn", "fish"], choices=sorted(SETS))
    parser.add_argument("--teacher-size", type=int, default=224)
    parser.add_argument("--student-size", type=int, default=192)
    parser.add_argument("--student-strategy", default="partial", choices=["features", "partial", "full"])
    parser.add_argument("--epochs", type=int, default=8, help="of the Lite0 runs (teachers: the default 30)")
    parser.add_argument("--feature-loss", type=float, nargs="+", default=[1.0, 0.0])
    parser.add_argument("--work", default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-distill-"))
    cache = work / "cache"
    os.environ.setdefault("LABELTUNE_CACHE_DIR", str(cache))
    for name in args.sets:
        print(
            f"{name}: teachers Lite1 + Lite2 ({args.teacher_size} px, features) -> Lite0 "
            f"({args.student_size} px, {args.student_strategy}, {args.epochs} epochs)",
            flush=True,
        )
        figures = one_set(name, args, work, cache)
        (work / f"distill-{name}.json").write_text(json.dumps(figures, indent=2))
        print(f"  {'model':34s} {'accuracy':>8s} {'MB':>6s} {'params':>8s} {'images/s':>9s}")
        for label, row in figures["rows"].items():
            print(
                f"  {label:34s} {row['val_accuracy']:8.3f} {row['size_mb']:6.1f} "
                f"{row['params'] / 1e6:7.2f}M {row['images_per_second']:9.1f}"
            )
        print(f"  validation items {figures['val_items']}, unlabeled items used {figures['unlabeled_used']}")
    print(f"\nruns kept in {work}" if args.work else "")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
