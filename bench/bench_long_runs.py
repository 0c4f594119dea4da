"""Long runs: memory over 200 epochs of features training, a 100 000-row gallery scroll, 1 000 XRD answers.

Run: ``.venv/bin/python bench/bench_long_runs.py [--quick] [--only training|gallery|xrd]`` (offscreen). Not a
test: it prints, for each long run, RSS at the start (after a warm-up), the middle and the end, the
least-squares slope per 1 000 steps and the peak. Each sample is taken after a garbage collection and
``malloc_trim`` (glibc), so RSS counts memory in use rather than freed heap the process still holds; the
tests (``tests/reliability/test_memory_flat.py``) check the same slopes over short loops (docs/adr/0044).

* training: ``labeltune.core.training.train`` with the *features* strategy (resnet18, random weights, 32 px
  inputs, 240 generated images), a linear head for 200 epochs, no early stopping, a checkpoint every epoch;
* gallery: the Label page on a project of 100 000 samples (hard links to 16 JPEGs), scrolled page by page
  to the end, each screen's thumbnails made (and written to the disk cache, limited to 500 MB) before the
  next page; the thumbnail disk cache's size at the end;
* xrd: the shipped model identifying the same measured pattern (the demo's TiO2) 1 000 times with the
  network alone (the pattern list's quick answer, with activation maps), then ``--fits`` times with the
  refining fit (seconds each: 1 000 by default, 30 with ``--quick``).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

MB = 2**20


# -- the instrument -----------------------------------------------------------------------------------
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


LIBC = _libc()
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """RSS in bytes after a garbage collection and giving free heap pages back."""
    gc.collect()
    if LIBC is not None:
        LIBC.malloc_trim(0)
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * PAGE


def peak_mb() -> float:
    """The process's peak RSS (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope(values: list[int]) -> float:
    """Least-squares slope of ``values`` per index."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    return num / max(sum((i - mean_x) ** 2 for i in range(n)), 1e-12)


class Recorder:
    """RSS every ``every`` steps after ``warmup`` steps; prints the figures of one long run."""

    def __init__(self, name: str, unit: str, warmup: int, every: int = 1) -> None:
        self.name, self.unit, self.warmup, self.every = name, unit, warmup, every
        self.steps: list[int] = []
        self.values: list[int] = []
        self.count = 0
        self.started = time.perf_counter()

    def step(self) -> None:
        """One step done; sample when due."""
        self.count += 1
        if self.count >= self.warmup and (self.count - self.warmup) % self.every == 0:
            self.steps.append(self.count)
            self.values.append(rss())

    def report(self, extra: str = "") -> None:
        """Print start/middle/end RSS, the slope per 1 000 steps and the peak."""
        values, steps = self.values, self.steps
        if len(values) < 2:
            print(f"{self.name}: too few samples ({len(values)})")
            return
        per_step = slope(values) / self.every
        mid = len(values) // 2
        print(
            f"{self.name}: {self.count:,} {self.unit} in {time.perf_counter() - self.started:.0f} s; RSS "
            f"{values[0] / MB:.1f} MB at {steps[0]:,}, {values[mid] / MB:.1f} MB at {steps[mid]:,}, "
            f"{values[-1] / MB:.1f} MB at {steps[-1]:,} (end-start {(values[-1] - values[0]) / MB:+.1f} MB); "
            f"slope {per_step * 1000 / MB:+.2f} MB per 1 000 {self.unit}; peak {peak_mb():.0f} MB{extra}",
            flush=True,
        )


# -- the long runs ------------------------------------------------------------------------------------
def bench_training(root: Path, epochs: int) -> None:
    """200 epochs of features training through ``train()``, RSS after every epoch."""
    import numpy as np
    from PIL import Image

    from labeltune.core.datasets import scan
    from labeltune.core.train_config import TrainConfig
    from labeltune.core.trainer import Callback, Trainer
    from labeltune.core.training import train

    rng = np.random.default_rng(0)
    colours = [(220, 40, 40), (40, 200, 40), (40, 60, 220), (230, 200, 30)]
    for k, colour in enumerate(colours):
        folder = root / "train-data" / f"class{k}"
        folder.mkdir(parents=True)
        for i in range(60):
            noise = rng.integers(-40, 40, (32, 32, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"img{i:03d}.png")
    recorder = Recorder("features training", "epochs", warmup=10)

    class Sample(Callback):
        def on_epoch_end(self, trainer: Trainer, record: object) -> None:
            recorder.step()

    config = TrainConfig(
        backbone="resnet18", weights="none", input_size=32, epochs=epochs, batch_size=16, patience=0
    )
    result = train(
        scan(root / "train-data"), config, root / "run", callbacks=[Sample()], cache_root=root / "cache"
    )
    accuracy = result.metrics.get("accuracy") if isinstance(result.metrics, dict) else None
    recorder.report(f" (val accuracy {accuracy:.2f})" if isinstance(accuracy, float) else "")


def run_loop(ms: int) -> None:
    """Let the Qt event loop run for ``ms`` milliseconds.

    ``QTest.qWait``, not ``QTimer.singleShot(ms, loop.quit)``: PySide keeps an object of every such
    single shot (~50 B each; thousands over a long scroll), which the slope would count against the app.
    """
    from PySide6.QtTest import QTest

    QTest.qWait(ms)


def bench_gallery(root: Path, samples: int) -> None:
    """The Label page scrolled page by page through ``samples`` rows, each screen's thumbnails made."""
    from PySide6.QtWidgets import QApplication

    from labeltune.core.settings import Settings
    from labeltune.ui.gallery_model import THUMBNAIL_STATE_ROLE
    from labeltune.ui.label_page import LabelPage
    from labeltune.ui.session import ProjectSession

    app = QApplication.instance() or QApplication(sys.argv)
    from bench_gallery import make_project  # bench/ is on the path: the script runs from there

    folder = make_project(root, samples)
    session = ProjectSession(Settings())
    page = LabelPage(session)
    page.resize(1280, 800)
    page.show()
    session.open(folder)
    run_loop(50)
    model, gallery = page.model, page.gallery
    bar = gallery.verticalScrollBar()

    def screen_ready() -> bool:
        first, last = gallery.visible_rows()
        area = gallery.viewport().rect()
        rows = range(max(0, first), min(model.rowCount(), last + 1))
        shown = [r for r in rows if gallery.visualRect(model.index(r)).intersects(area)]
        return bool(shown) and all(model.index(r).data(THUMBNAIL_STATE_ROLE) != "loading" for r in shown)

    def wait(condition: Callable[[], bool]) -> None:
        deadline = time.perf_counter() + 60
        while not condition() and time.perf_counter() < deadline:
            run_loop(2)

    pages = 0
    recorder = Recorder("gallery scroll", "pages", warmup=60, every=10)  # 64 MB of thumbnails filled
    while bar.value() < bar.maximum():
        bar.setValue(bar.value() + bar.pageStep())
        gallery.viewport().repaint()
        wait(screen_ready)
        gallery.viewport().repaint()
        pages += 1
        recorder.step()
    app.processEvents()
    cache = page.loader.cache
    on_disk = cache.disk_bytes() / MB if cache is not None else float("nan")
    limit = cache.max_bytes / MB if cache is not None else float("nan")
    first, _last = gallery.visible_rows()
    recorder.report(
        f"; {model.rowCount():,} rows, last row shown {first:,}+; thumbnails in memory "
        f"{model.thumbnail_bytes() / MB:.0f} MB; disk cache {on_disk:.0f} MB (limit {limit:.0f} MB)"
    )
    page.shutdown()
    session.close()


def bench_xrd(identifications: int, fits: int) -> None:
    """The shipped model identifying one pattern again and again, without and with the fit."""
    import torch

    from labeltune.core.xrd.inference import XrdModel
    from labeltune.core.xrd.readers import read_pattern
    from labeltune.core.xrd.shipped import shipped_model_dir

    run = shipped_model_dir()
    if run is None:
        print("xrd: the shipped model is not in models/ (skipped)")
        return
    torch.set_num_threads(1)
    demo = Path(str(files("labeltune") / "resources" / "demos" / "xrd" / "patterns"))
    pattern = read_pattern(demo / "TiO2.xy", 1.5406)
    model = XrdModel(run)
    if identifications:
        quick = Recorder("xrd identification, network", "identifications", warmup=20, every=10)
        for _ in range(identifications):
            answer = model.predict(pattern, fit=False, activation=True)
            quick.step()
        quick.report(f" (called {', '.join(c.formula for c in answer.phases)})")
    if fits:
        fitted = Recorder("xrd identification, network + fit", "identifications", warmup=5, every=5)
        for _ in range(fits):
            answer = model.predict(pattern, fit=True)
            fitted.step()
        fitted.report(f" (called {', '.join(c.formula for c in answer.phases)})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="50 epochs, 10 000 rows, 200 + 30 identifications"
    )
    parser.add_argument("--only", choices=("training", "gallery", "xrd"), action="append")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--identifications", type=int, default=1000)
    parser.add_argument("--fits", type=int, default=1000, help="identifications with the refining fit")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.samples = min(args.epochs, 50), min(args.samples, 10_000)
        args.identifications, args.fits = min(args.identifications, 200), min(args.fits, 30)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    root = Path(tempfile.mkdtemp(prefix="bench-long-runs-"))
    for name in ("CONFIG", "DATA", "CACHE"):
        os.environ.setdefault(f"LABELTUNE_{name}_DIR", str(root / name.lower()))
    only = set(args.only or ("training", "gallery", "xrd"))
    print(
        f"RSS after a garbage collection and malloc_trim; start = after the warm-up ({os.cpu_count()} CPUs)"
    )
    try:
        if "xrd" in only:
            bench_xrd(args.identifications, args.fits)
        if "training" in only:
            bench_training(root / "training", args.epochs)
        if "gallery" in only:
            (root / "gallery").mkdir()
            bench_gallery(root / "gallery", args.samples)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
