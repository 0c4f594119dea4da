"""A cached re-run: ``labeltune train`` again with another ``--lr`` on images whose features are cached.

Run: ``.venv/bin/python bench/bench_cached_rerun.py [--data FOLDER] [--limit N] [--backbone NAME] [--quick]``.

Default data: the 400 corn-leaf photos in ``/work/shared/data/corn_leaf/images`` (any class folder works).
User folders (cache, data, config) are temporary. Steps, each in a fresh interpreter as the CLI runs:

1. the first run (features computed and cached; the frozen backbone kept, docs/adr/0059);
2. the floor: ``python -c "import torch"`` and ``python -c "import numpy"``;
3. the re-run with another learning rate: wall time, the run's ``seconds_total``, whether
   ``torch._dynamo``/``torchvision`` were imported; then a second re-run in the same (warm) process;
4. the same re-run under cProfile: wall per phase and the profile's top lines;
5. the same head (dropout + linear, AdamW, cosine schedule, batch 32, class-weighted loss, the epochs the
   re-run ran, validation after each epoch) trained by a plain PyTorch loop on the cached features read
   straight from the cache's SQLite file, beside the re-run's own head step (the ``seconds`` of its
   epochs in ``history.csv``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORN = Path("/work/shared/data/corn_leaf/images")

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from labeltune.cli import main
args = sys.argv[1:]
rc = main(args)
first = time.perf_counter() - t0
out = args[args.index("--out") + 1]
warm_args = list(args)
warm_args[warm_args.index("--out") + 1] = out + "-warm"
warm_args[warm_args.index("--lr") + 1] = "0.0005"
t1 = time.perf_counter()
main(warm_args)
warm = time.perf_counter() - t1
loaded = [m for m in ("torch._dynamo", "torchvision") if m in sys.modules]
print("BENCH " + json.dumps({"rc": rc, "in_process": first, "warm": warm, "loaded": loaded}), file=sys.stderr)
"""

PROFILED = r"""
import cProfile, pstats, io, sys, json
from labeltune.cli import main
profile = cProfile.Profile()
profile.enable()
main(sys.argv[1:])
profile.disable()
stats = pstats.Stats(profile)
phases = {}
wanted = {("training", "_build_model"), ("train_inputs", "prepare_inputs"), ("trainer", "fit"),
          ("reliability_fit", "fit_reliability"), ("familiarity", "fit_familiarity"), ("model", "save_model"),
          ("train_data", "prepare_data"), ("training", "_fit"), ("training", "train")}
for (path, _line, name), row in stats.stats.items():
    stem = path.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".py")
    if "labeltune" in path and (stem, name) in wanted:
        phases[stem + "." + name] = row[3]
text = io.StringIO()
pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(22)
print("PHASES " + json.dumps(phases), file=sys.stderr)
print("PROFILE\n" + text.getvalue(), file=sys.stderr)
"""


def subset(source: Path, limit: int, target: Path) -> Path:
    """``limit`` images of ``source`` (round-robin over its class folders), linked into ``target``."""
    classes = sorted(p for p in source.iterdir() if p.is_dir())
    files = {c: sorted(f for f in c.iterdir() if f.is_file()) for c in classes}
    taken = 0
    for i in range(max((len(v) for v in files.values()), default=0)):
        for c in classes:
            if taken >= limit or i >= len(files[c]):
                continue
            (target / c.name).mkdir(parents=True, exist_ok=True)
            os.symlink(files[c][i], target / c.name / files[c][i].name)
            taken += 1
    return target


def timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done


def plain_head(run: Path, cache: Path, backbone: str, epochs: int, lr: float) -> tuple[float, float]:
    """Seconds and validation accuracy of a plain PyTorch loop training the head on the cached features."""
    import numpy as np
    import torch

    rows = list(csv.DictReader((run / "manifest.csv").open(newline="", encoding="utf-8")))
    classes = sorted({r["label"] for r in rows})
    db_path = next((cache / "features").glob(f"{backbone}-pooled-*.sqlite"))
    db = sqlite3.connect(str(db_path))
    found = {
        h: (shape, data)
        for h, shape, data in db.execute("SELECT hash, shape, data FROM features WHERE view = 0")
    }
    x = np.stack(
        [
            np.frombuffer(found[r["sha256"]][1], np.float16).reshape(json.loads(found[r["sha256"]][0]))
            for r in rows
        ]
    )
    y = np.asarray([classes.index(r["label"]) for r in rows])
    val = np.asarray([r["split"] == "val" for r in rows])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    xt, yt = torch.from_numpy(x[~val]).float(), torch.from_numpy(y[~val])
    xv, yv = torch.from_numpy(x[val]).float(), torch.from_numpy(y[val])
    counts = np.bincount(y[~val], minlength=len(classes))
    weights = torch.tensor(len(yt) / (len(classes) * np.maximum(counts, 1)), dtype=torch.float32)
    head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(x.shape[1], len(classes)))
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    start = time.perf_counter()
    accuracy = 0.0
    for _ in range(epochs):
        head.train()
        order = torch.randperm(len(yt))
        for b in range(0, len(yt), 32):
            idx = order[b : b + 32]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(head(xt[idx]), yt[idx]).backward()
            optimizer.step()
        head.eval()
        with torch.inference_mode():
            accuracy = float((head(xv).argmax(1) == yv).float().mean())
        schedule.step()
    return time.perf_counter() - start, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=CORN)
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--quick", action="store_true", help="40 images at 96 px (a smoke run)")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"no data folder {args.data}: pass --data with a folder of class folders")
    limit = 40 if args.quick else args.limit
    extra = ["--input-size", "96"] if args.quick else []
    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as tmp_name:
        tmp = Path(tmp_name)
        data = subset(args.data, limit, tmp / "images")
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "desktop") + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "LABELTUNE_CACHE_DIR": str(tmp / "cache"),
            "LABELTUNE_DATA_DIR": str(tmp / "data"),
            "LABELTUNE_CONFIG_DIR": str(tmp / "config"),
        }
        py = sys.executable
        base = ["train", str(data), "--backbone", args.backbone, "--strategy", "features", "--json", *extra]
        cold, _ = timed([py, "-m", "labeltune", *base, "--lr", "0.001", "--out", str(tmp / "first")], env)
        floor_torch, _ = timed([py, "-c", "import torch"], env)
        floor_numpy, _ = timed([py, "-c", "import numpy"], env)
        wall, done = timed([py, "-m", "labeltune", *base, "--lr", "0.003", "--out", str(tmp / "rerun")], env)
        summary = json.loads(done.stdout)
        child = [*base, "--lr", "0.004", "--out", str(tmp / "child")]
        _, done = timed([py, "-c", CHILD, *child], env)
        bench = json.loads(next(line for line in done.stderr.splitlines() if line.startswith("BENCH "))[6:])
        history = list(csv.DictReader((tmp / "rerun" / "history.csv").open()))
        head_seconds = sum(float(r["seconds"]) for r in history)
        _, profiled = timed([py, "-c", PROFILED, *base, "--lr", "0.002", "--out", str(tmp / "profiled")], env)
        lines = profiled.stderr.splitlines()
        phases = json.loads(next(line for line in lines if line.startswith("PHASES "))[7:])
        profile_text = "\n".join(lines[lines.index("PROFILE") + 1 :])
        plain_seconds, plain_accuracy = plain_head(
            tmp / "rerun", tmp / "cache", args.backbone, len(history), 0.003
        )

    print(
        f"cached re-run of `labeltune train` ({limit} images of {args.data.name}, {args.backbone}, features)"
    )
    print(f"  first run (features computed):            {cold:7.2f} s wall")
    print(f"  floor: python -c 'import torch':           {floor_torch:7.2f} s (numpy: {floor_numpy:.2f} s)")
    print(f"  re-run, another --lr, fresh process:       {wall:7.2f} s wall")
    print(f"    seconds_total reported:                  {summary['seconds_total']:7.2f} s")
    print(f"  another re-run, main() in its process:     {bench['in_process']:7.2f} s")
    print(f"  the same again in the warm process:        {bench['warm']:7.2f} s")
    print(
        f"  imported on the re-run: {', '.join(bench['loaded']) or 'neither torch._dynamo nor torchvision'}"
    )
    print("  wall per phase (cProfile, cumulative, inflated by the profiler):")
    for name, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"    {name:32s} {seconds:7.3f} s")
    print(f"  head step, ours ({len(history)} epochs, with validation): {head_seconds:6.3f} s")
    print(
        f"  head step, plain PyTorch loop, same epochs: {plain_seconds:6.3f} s (val acc {plain_accuracy:.3f})"
    )
    print(f"  ratio ours / plain:                           {head_seconds / max(plain_seconds, 1e-9):6.2f}")
    print("  profile of the re-run, top lines:")
    print(profile_text)


if __name__ == "__main__":
    main()
