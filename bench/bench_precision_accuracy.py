"""Accuracy of mixed precision (bf16 autocast on this CPU) against fp32, with real pretrained weights.

Run: ``.venv/bin/python bench/bench_precision_accuracy.py [--epochs N] [--quick] [--backbone NAME]``
(quick: 1 epoch, corn). Not a test: it prints a table (and writes ``bench/out/precision_accuracy.json``).
The bundled EfficientNet-Lite0 ImageNet weights (no download) are fine-tuned *partial* and *full* on the
corn-leaf photos and on the Fish4Knowledge crops (validation split by fish track: frames of one track are
near-identical), once with ``precision="fp32"`` and once with ``precision="auto"`` (bf16 autocast +
channels_last where the CPU has it; fp16 AMP on CUDA), same seed, same split. It prints validation
accuracy and macro-F1 side by side, and each run's median epoch seconds (training + validation), so the
speed-up is seen on the real loop too (issue 15, docs/adr/0050). ``auto`` keeps EfficientNet-Lite0's
*partial* in fp32 on the CPU (bf16 measured slower): the benchmark turns bf16 on for the measured
backbone, so the comparison is fp32 against bf16 whatever the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labeltune.core import backbones, training
from labeltune.core.datasets import scan
from labeltune.core.device import cpu_bf16_supported

SHARED = Path("/work/shared/data")
OUT = Path(__file__).resolve().parent / "out"
SETS = {
    "corn": (SHARED / "corn_leaf" / "images", None),
    "fish (by track)": (SHARED / "fish4knowledge" / "images", r"fish_(\d+)_"),
}


def run_one(
    source: Path, group_by: str | None, strategy: str, precision: str, epochs: int, work: Path, backbone: str
) -> dict[str, Any]:
    """One training run; its accuracy, macro-F1 and mean epoch seconds."""
    config = training.TrainConfig(
        backbone=backbone,
        strategy=strategy,
        epochs=epochs,
        patience=0,
        seed=0,
        group_by=group_by,
        precision=precision,
    )
    data = scan(str(source))
    start = time.perf_counter()
    result = training.train(data, config, training.new_run_dir(work), cache_root=work / "cache")
    wall = time.perf_counter() - start
    summary = result.to_json()
    return {
        "val_accuracy": summary["val_accuracy"],
        "val_macro_f1": summary["val_macro_f1"],
        "epoch_seconds": statistics.median(r.seconds for r in result.history),
        "wall_seconds": wall,
        "precision_used": config.precision_used,
        "train_size": summary["train_size"],
        "val_size": summary["val_size"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the grid and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--strategies", default="partial,full")
    parser.add_argument("--sets", default="corn,fish (by track)")
    parser.add_argument("--quick", action="store_true", help="1 epoch, corn only")
    parser.add_argument("--backbone", default="efficientnet_lite0", help="(with imagenet weights at hand)")
    args = parser.parse_args(argv)
    spec = backbones.BACKBONES[args.backbone]
    backbones.BACKBONES[args.backbone] = dataclasses.replace(spec, cpu_bf16_strategies=("partial", "full"))
    if args.quick:
        args.epochs, args.sets = 1, "corn"
    print(f"bf16 autocast available on this CPU: {cpu_bf16_supported()}; {args.epochs} epochs, seed 0")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.sets.split(","):
            source, group_by = SETS[name]
            for strategy in args.strategies.split(","):
                pair = {
                    p: run_one(source, group_by, strategy, p, args.epochs, work, args.backbone)
                    for p in ("fp32", "auto")
                }
                row = {"set": name, "strategy": strategy, **{f"{p}": r for p, r in pair.items()}}
                rows.append(row)
                a, b = pair["fp32"], pair["auto"]
                print(
                    f"{name:16s} {strategy:8s} fp32 acc {a['val_accuracy']:.3f} F1 {a['val_macro_f1']:.3f} "
                    f"{a['epoch_seconds']:6.1f} s/epoch | {b['precision_used']} acc {b['val_accuracy']:.3f} "
                    f"F1 {b['val_macro_f1']:.3f} {b['epoch_seconds']:6.1f} s/epoch | speed-up "
                    f"{a['epoch_seconds'] / max(b['epoch_seconds'], 1e-9):.2f}x "
                    f"(train {a['train_size']}, val {a['val_size']})",
                    flush=True,
                )
    OUT.mkdir(exist_ok=True)
    (OUT / "precision_accuracy.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
