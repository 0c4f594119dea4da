"""Prediction at scale: images/s of ``labeltune predict`` vs a plain loop and onnxruntime, and its memory.

What it measures, side by side in one run (README "Figures" has the table):

1. End to end (decode + resize + network) over N image paths (the shared corn photos, repeated): LabelTune's
   streaming ``iter_predictions`` (one batch decoded ahead in a thread, channels_last + bf16 where the CPU
   has it) against a plain PyTorch loop (PIL open/convert/resize, fp32 forward, batch 32).
2. The network alone on the same pre-decoded batches: LabelTune's precision, plain fp32, and the run
   exported to ONNX (``labeltune export``) under onnxruntime.
3. Memory: the peak RSS of a process that streams N paths vs one that streams N/10 (bounded memory: the
   two should match), each in its own process so neither masks the other.

The run is an EfficientNet-Lite0 *features* run on the corn photos at 224 px (made once, cached in a temp
folder; its bundled weights work offline). Needs ``../shared/data/corn_leaf``. Asserts nothing.
Run: ``.venv/bin/python bench/bench_predict.py [--quick] [--images N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "desktop"))
BATCH = 32


def corn_paths(n: int) -> list[Path]:
    """``n`` image paths: the shared corn photos, repeated as needed."""
    from labeltune.core.inference import collect_inputs

    found, _ = collect_inputs([SHARED / "corn_leaf" / "images"])
    return [found[i % len(found)] for i in range(n)]


def make_run(work: Path) -> Path:
    """A features run on the corn photos (EfficientNet-Lite0, 224 px, 3 epochs)."""
    from labeltune.cli import main

    run = work / "corn-run"
    if not (run / "model.safetensors").is_file():
        with contextlib.redirect_stdout(io.StringIO()):  # its JSON summary is not this benchmark's output
            code = main(
                ["train", str(SHARED / "corn_leaf" / "images"), "--epochs", "3", "--out", str(run), "--json"]
            )
        if code:
            raise SystemExit(f"training the benchmark run failed ({code})")
    return run


def plain_loop(run: Path, paths: list[Path]) -> float:
    """Seconds of a textbook loop: PIL decode/resize, fp32 forward, batch 32."""
    import torch
    from PIL import Image

    from labeltune.core.model import load_model

    model, config = load_model(run, torch.device("cpu"))
    model.eval()
    size = config.input_size
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(paths), BATCH):
            arrays = [
                np.asarray(Image.open(p).convert("RGB").resize((size, size)), dtype=np.float32) / 255.0
                for p in paths[i : i + BATCH]
            ]
            x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
            torch.softmax(model(x), 1)
    return time.perf_counter() - start


def labeltune_stream(run: Path, paths: list[Path]) -> float:
    """Seconds of ``iter_predictions`` over ``paths`` (what ``labeltune predict`` runs)."""
    from labeltune.core.inference import iter_predictions

    start = time.perf_counter()
    for _ in iter_predictions(run, paths, batch_size=BATCH, device="cpu"):
        pass
    return time.perf_counter() - start


def network_only(run: Path, onnx_file: Path, batches: int) -> dict[str, float]:
    """Images/s of the network alone: LabelTune's precision, plain fp32, onnxruntime (same inputs)."""
    import onnxruntime as ort
    import torch

    from labeltune.core.device import inference_precision, memory_format
    from labeltune.core.model import load_model

    cpu = torch.device("cpu")
    model, config = load_model(run, cpu)
    model.eval()
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 3, config.input_size, config.input_size), dtype=np.float32)
    figures: dict[str, float] = {}
    with torch.inference_mode():
        t = torch.from_numpy(x)
        model(t)  # warm-up
        start = time.perf_counter()
        for _ in range(batches):
            model(t)
        figures["PyTorch fp32"] = batches * BATCH / (time.perf_counter() - start)
        model.to(memory_format=memory_format(cpu))
        fast = t.contiguous(memory_format=memory_format(cpu))
        with inference_precision(cpu):
            model(fast)
            start = time.perf_counter()
            for _ in range(batches):
                model(fast)
        figures["PyTorch, LabelTune's precision"] = batches * BATCH / (time.perf_counter() - start)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: x})
    start = time.perf_counter()
    for _ in range(batches):
        session.run(None, {name: x})
    figures["onnxruntime (exported .onnx)"] = batches * BATCH / (time.perf_counter() - start)
    return figures


def peak_rss_child(run: Path, n: int) -> float:
    """Peak RSS (MB) of a fresh process that streams ``n`` paths through ``iter_predictions``."""
    code = (
        "import sys, resource; sys.path.insert(0, sys.argv[1]); "
        "from bench_predict import corn_paths; from labeltune.core.inference import iter_predictions; "
        "paths = corn_paths(int(sys.argv[3])); "
        "[None for _ in iter_predictions(sys.argv[2], paths, batch_size=32, device='cpu')]; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(run), str(n)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "desktop")},
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images (400) and batches")
    parser.add_argument("--images", type=int, default=None, help="paths to predict (default 2000)")
    args = parser.parse_args()
    n = args.images or (400 if args.quick else 2000)
    if not (SHARED / "corn_leaf" / "images").is_dir():
        print(f"skipped: {SHARED / 'corn_leaf'} is not there")
        return
    import torch

    from labeltune.core.export import export_model

    work = Path(tempfile.gettempdir()) / "labeltune-bench-predict"
    work.mkdir(exist_ok=True)
    run = make_run(work)
    onnx_file = work / "corn.onnx"
    if not onnx_file.is_file():
        export_model(run, onnx_file, "onnx")
    paths = corn_paths(n)
    print(
        f"{n} paths (corn photos repeated), EfficientNet-Lite0 at 224 px, batch {BATCH}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
    )
    labeltune_stream(run, paths[:BATCH])  # warm-up: model load, first decode
    ours = labeltune_stream(run, paths)
    plain = plain_loop(run, paths)
    print("\nend to end (decode + network):")
    print(f"{'':38}{'images/s':>10}{'ratio':>8}")
    print(f"{'plain PyTorch loop (PIL, fp32)':38}{n / plain:10.1f}{1.0:8.2f}")
    print(f"{'labeltune predict (streaming)':38}{n / ours:10.1f}{plain / ours:8.2f}")
    figures = network_only(run, onnx_file, 4 if args.quick else 12)
    base = figures["PyTorch fp32"]
    print("\nthe network alone (same pre-decoded batches):")
    print(f"{'':38}{'images/s':>10}{'ratio':>8}")
    for name, rate in figures.items():
        print(f"{name:38}{rate:10.1f}{rate / base:8.2f}")
    small, large = max(n // 10, BATCH), n
    rss_small, rss_large = peak_rss_child(run, small), peak_rss_child(run, large)
    print(
        f"\npeak RSS streaming {small} paths: {rss_small:.0f} MB; {large} paths: {rss_large:.0f} MB "
        f"(+{rss_large - rss_small:.0f} MB for {large - small} more)"
    )
    print(
        json.dumps(
            {"images": n, "end_to_end_ratio": round(plain / ours, 3), "network": figures}, default=float
        )
    )


if __name__ == "__main__":
    main()
