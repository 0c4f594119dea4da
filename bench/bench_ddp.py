"""DDP on this CPU: ``torchrun --nproc-per-node 2 -m labeltune train`` against one process (issue 15).

Run: ``.venv/bin/python bench/bench_ddp.py [--quick] [--repeat 8] [--data FOLDER]``; prints figures only.

The same run (default: the 400 corn-leaf photos, EfficientNet-Lite0 with its bundled ImageNet weights, full
fine-tuning at 96 px, global batch 32, seed 0) trained by one process on every core, and by two torchrun
ranks (gloo) with the cores shared out; side by side: seconds per epoch (epochs after the first), the
whole command's wall time, and validation accuracy. ``--repeat N`` runs torchrun N times more and counts
the runs that died at exit (SIGABRT, "terminate called without an active exception") or left a second
run folder or a temporary file. ``--quick``: 48 generated images, ResNet-18 from random weights at 32 px.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CORN = REPO.parent / "shared" / "data" / "corn_leaf" / "images"
if not CORN.is_dir():
    CORN = Path("/work/shared/data/corn_leaf/images")


def generated(folder: Path) -> Path:
    """Three colour classes of 16 noisy 40 px images."""
    rng = np.random.default_rng(0)
    for k, colour in enumerate([(220, 40, 40), (40, 200, 40), (40, 60, 220)]):
        (folder / f"class{k}").mkdir(parents=True, exist_ok=True)
        for i in range(16):
            pixels = np.clip(np.array(colour) + rng.integers(-40, 40, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"class{k}" / f"img{i:03d}.png")
    return folder


def run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, str, str]:
    """Exit status, wall seconds, stdout, stderr."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return done.returncode, time.perf_counter() - start, done.stdout, done.stderr


def epoch_seconds(run_dir: Path) -> float:
    """Mean seconds of the epochs after the first (the first pays for warm-up)."""
    with (run_dir / "history.csv").open() as handle:
        seconds = [float(row["seconds"]) for row in csv.DictReader(handle)]
    later = seconds[1:] or seconds
    return sum(later) / len(later)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=0, help="more torchrun runs, to count bad exits")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "desktop"), "LABELTUNE_CACHE_DIR": str(work / "cache")}
    if args.quick:
        data = generated(work / "data")
        train = ["--backbone", "resnet18", "--weights", "none", "--input-size", "32", "--batch-size", "16"]
    else:
        data = args.data or CORN
        train = ["--backbone", "efficientnet_lite0", "--weights", "imagenet", "--input-size", "96"]
        train += ["--batch-size", "32"]
    train += ["--strategy", "full", "--epochs", str(args.epochs), "--seed", "0", "--patience", "0", "--json"]
    one = [sys.executable, "-m", "labeltune", "train", str(data), *train]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    two = [*launcher, "-m", "labeltune", "train", str(data), *train]
    print(f"data: {data}; cpus: {os.cpu_count()}; {' '.join(train)}")

    rows = []
    runs = [("1 process, all cores", one), ("1 process, 1 thread", [*one, "--threads", "1"])]
    for i, (name, command) in enumerate([*runs, ("torchrun, 2 ranks (gloo)", two)]):
        out = work / f"run-{i}"
        code, wall, stdout, stderr = run([*command, "--out", str(out)], work, env)
        if code != 0:
            print(f"{name}: exit {code}\n{stderr[-2000:]}")
            continue
        summary = json.loads(stdout)
        rows.append((name, epoch_seconds(out), wall, summary["val_accuracy"], summary["val_size"]))
    print(f"\n{'':<28}{'s/epoch':>10}{'wall s':>10}{'val acc':>10}{'val n':>8}")
    for name, per_epoch, wall, accuracy, n in rows:
        print(f"{name:<28}{per_epoch:>10.2f}{wall:>10.1f}{accuracy:>10.3f}{n:>8}")
    if len(rows) == 3:
        print(f"per epoch, 2 ranks vs 1 process on all cores: {rows[0][1] / rows[2][1]:.2f}x faster")

    bad = 0
    for i in range(args.repeat):
        folder = work / f"repeat-{i}"
        folder.mkdir()
        code, wall, stdout, stderr = run([*two], folder, env)
        runs = list((folder / "runs").iterdir()) if (folder / "runs").is_dir() else []
        leftovers = [p.name for r in runs for p in r.iterdir() if p.name.startswith(".")]
        ok = code == 0 and "terminate called" not in stderr and len(runs) == 1 and not leftovers
        bad += not ok
        print(f"repeat {i + 1}: exit {code}, {wall:.1f} s, run folders {len(runs)}, leftovers {leftovers}")
    if args.repeat:
        print(f"torchrun runs with a bad exit or extra files: {bad} of {args.repeat}")


if __name__ == "__main__":
    main()
