"""Labeling a big selection: the time in the core and in the app, and the GUI thread's longest stall.

Run: ``.venv/bin/python bench/bench_label_batch.py [--items N] [--skip-app] [--per-item K]``. Not a test: it
prints figures (and writes ``bench/out/label_batch.json``), asserts nothing. See docs/adr/0039.

1. ``core``: a project of N samples (paths only, a third imported as ``a``); ``Project.set_labels`` of all
   of them (one transaction), then ``undo`` and ``redo`` (one step each). For comparison, K samples labeled
   one ``set_label`` call (one transaction) each, and that rate scaled to N: the app's way before the batch.
2. ``app``: the Label page (Qt offscreen) on N readable images (hard links to one PNG): select all, press
   ``2``; the time until the worker's batch is written and the gallery updated, then the same for Ctrl+Z.
   A ``QTimer`` heartbeat every 5 ms in the GUI thread gives the longest gap while the batch runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "desktop"))

from labeltune.core.project import Project  # noqa: E402
from labeltune.core.sample import Sample  # noqa: E402


def make_project(folder: Path, images: Path, count: int) -> Project:
    """A new project of ``count`` samples under ``images`` (every third imported as ``a``)."""
    project = Project.create(folder, classes=["a", "b", "c"])
    project.add_samples(Sample(images / f"img{i:06d}.png", "a" if i % 3 == 0 else None) for i in range(count))
    return project


def timed(action: Any) -> float:
    """Seconds ``action()`` takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench_core(root: Path, count: int, per_item: int) -> dict[str, float]:
    """Seconds for the batch, its undo and redo, and the one-transaction-per-item way (scaled to N)."""
    with make_project(root / "core", root / "none", count) as project:
        ids = project.sample_ids()
        figures = {
            "set_labels_s": timed(lambda: project.set_labels(ids, "b")),
            "undo_s": timed(project.undo),
            "redo_s": timed(project.redo),
        }
        one_by_one = timed(lambda: [project.set_label(i, "c") for i in ids[:per_item]])
        figures["set_label_each_scaled_s"] = one_by_one / per_item * count
    return figures


def bench_app(root: Path, count: int) -> dict[str, float]:
    """Seconds from the key press to the labels shown (and for Ctrl+Z); the GUI thread's longest stall."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from labeltune.core.settings import Settings
    from labeltune.ui.label_page import LabelPage
    from labeltune.ui.session import ProjectSession

    images = root / "images"
    images.mkdir()
    for i in range(count):  # a file system allows some 65 000 links to one file: a new PNG every 50 000
        if i % 50_000 == 0:
            source = images / f"img{i:06d}.png"
            Image.new("RGB", (16, 16), (90, 140, 60)).save(source)
        else:
            os.link(source, images / f"img{i:06d}.png")
    make_project(root / "app", images, count).close()
    app = QApplication.instance() or QApplication([])
    session = ProjectSession(Settings())
    page = LabelPage(session)
    page.resize(1100, 700)
    page.show()
    session.open(root / "app")
    gaps: list[float] = []
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    heartbeat = QTimer()
    heartbeat.timeout.connect(beat)

    def run_until_finished(key: Qt.Key, modifiers: Qt.KeyboardModifier) -> float:
        loop = QEventLoop()
        page.labeling.batches.tasks.finished.connect(loop.quit)
        page.labeling.batches.tasks.failed.connect(loop.quit)
        start = time.perf_counter()
        QTest.keyClick(page.gallery, key, modifiers)
        loop.exec()
        page.labeling.batches.tasks.finished.disconnect(loop.quit)
        page.labeling.batches.tasks.failed.disconnect(loop.quit)
        return time.perf_counter() - start

    page.gallery.setFocus()
    page.gallery.selectAll()
    gaps.clear()
    last[0] = time.perf_counter()
    heartbeat.start(5)
    label_s = run_until_finished(Qt.Key.Key_2, Qt.KeyboardModifier.NoModifier)
    label_gap = max(gaps, default=0.0)
    gaps.clear()
    undo_s = run_until_finished(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    undo_gap = max(gaps, default=0.0)
    heartbeat.stop()
    counts = session.require().counts()
    page.shutdown()
    session.close()
    app.processEvents()
    return {
        "label_s": label_s,
        "label_max_gui_gap_ms": label_gap * 1000,
        "undo_s": undo_s,
        "undo_max_gui_gap_ms": undo_gap * 1000,
        "labeled_after_undo": counts.get("b", 0),
    }


def main() -> None:
    """Print the figures and write them to ``bench/out/label_batch.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--per-item", type=int, default=3_000, help="samples labeled one call each")
    parser.add_argument("--skip-app", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"items": args.items, "machine": platform.platform(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        results["core"] = bench_core(Path(tmp), args.items, args.per_item)
        print(f"core, {args.items:,} items: " + ", ".join(f"{k} {v:.2f}" for k, v in results["core"].items()))
        if not args.skip_app:
            results["app"] = bench_app(Path(tmp), args.items)
            print(
                f"app, {args.items:,} items: " + ", ".join(f"{k} {v:.2f}" for k, v in results["app"].items())
            )
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "label_batch.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
