"""Gallery benchmark: the Label page on a 100 000-image project (offscreen Qt). Prints figures only.

Run: ``.venv/bin/python bench/bench_gallery.py [--samples 100000] [--pages 50] [--quick]`` (offscreen by
default: ``QT_QPA_PLATFORM`` set by the caller wins).

Setup (not timed): a project whose samples are hard links to 16 real 256 px corn-leaf JPEGs (or generated
ones when ``../shared/data`` is absent), 70 % labeled in 4 classes.  Then, measured:

* open: from ``session.open(folder)`` to the gallery model holding every row and the first screen painted
  (placeholders), and until that screen's thumbnails are all shown (cold disk cache, then warm);
* scrolling: ``--pages`` page-down steps of the gallery's scrollbar, at 60 steps/s (a fling) and at
  10 steps/s (reading); a 5 ms QTimer heartbeat measures the longest GUI-thread stall;
* a class key at 100 000 samples (commit + model + class counts), in the "all" and "unlabeled" filters;
* peak RSS increase over the RSS before opening (VmHWM reset through /proc/self/clear_refs on Linux).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

CORN = Path(__file__).resolve().parents[2] / "shared" / "data" / "corn_leaf" / "images"
CLASSES = ["Blight", "Common_Rust", "Gray_Leaf_Spot", "Healthy"]


def _rss_mb(field: str = "VmRSS") -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def make_project(root: Path, count: int) -> Path:
    """Write a project of ``count`` samples (hard links to 16 JPEGs); return its folder."""
    from labeltune.core.datasets import Sample
    from labeltune.core.project import Project

    base = root / "base"
    base.mkdir()
    sources = sorted(CORN.rglob("*.[jJ][pP][gG]"))[:16] if CORN.is_dir() else []
    for i in range(16):
        target = base / f"b{i:02d}.jpg"
        if i < len(sources):
            shutil.copy(sources[i], target)
        else:
            rng = np.random.default_rng(i)
            pixels = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(target, quality=90)
    project = Project.create(root / "proj", classes=CLASSES)  # a new project wants an empty folder
    images = root / "proj" / "images"
    images.mkdir(parents=True)
    samples = []
    for i in range(count):
        path = images / f"img{i:06d}.jpg"
        try:
            os.link(base / f"b{i % 16:02d}.jpg", path)
        except OSError:
            shutil.copy(base / f"b{i % 16:02d}.jpg", path)
        label = None if i % 10 < 3 else CLASSES[(i // 10) % 4]
        samples.append(Sample(path, label))
    with project:
        project.add_samples(samples)
    return root / "proj"


class Heartbeat:
    """A 5 ms timer; the longest gap between its ticks is the longest GUI-thread stall."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.last = time.perf_counter()
        self.max_gap = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self.last)
        self.last = now

    def start(self) -> None:
        self.last = time.perf_counter()
        self.max_gap = 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.max_gap


def run_loop(ms: int) -> None:
    """Let the event loop run for ``ms`` milliseconds."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(condition: Callable[[], bool], timeout_s: float) -> float:
    """Run the event loop until ``condition`` holds; return the seconds it took (inf on timeout)."""
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout_s:
            return float("inf")
        run_loop(5)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="thumbnail threads (default: the app's)")
    parser.add_argument("--quick", action="store_true", help="20 000 samples and 10 pages (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.pages = min(args.samples, 20_000), min(args.pages, 10)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    root = Path(tempfile.mkdtemp(prefix="bench-gallery-"))
    os.environ.setdefault("LABELTUNE_CONFIG_DIR", str(root / "config"))
    try:
        _bench(root, args.samples, args.pages, args.threads)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _bench(root: Path, count: int, pages: int, threads: int) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from labeltune.core.settings import Settings
    from labeltune.ui.gallery_model import THUMBNAIL_STATE_ROLE, GalleryFilter
    from labeltune.ui.label_page import LabelPage
    from labeltune.ui.session import ProjectSession

    app = QApplication.instance() or QApplication(sys.argv)
    started = time.perf_counter()
    folder = make_project(root, count)
    print(f"setup: {count:,} samples in {time.perf_counter() - started:.1f} s (not part of the figures)")

    session = ProjectSession(Settings())
    page = LabelPage(session)
    if threads:
        page.loader.set_thread_count(threads)
    page.resize(1280, 800)
    page.show()
    run_loop(50)
    model, gallery = page.model, page.gallery

    def screen_ready() -> bool:
        first, last = gallery.visible_rows()
        rows = range(max(0, first), min(model.rowCount(), last + 1))
        shown = [r for r in rows if gallery.visualRect(model.index(r)).intersects(gallery.viewport().rect())]
        return bool(shown) and all(model.index(r).data(THUMBNAIL_STATE_ROLE) != "loading" for r in shown)

    def open_once(label: str) -> None:
        heartbeat.start()
        start = time.perf_counter()
        session.open(folder)
        populated = time.perf_counter() - start
        page.grab()  # paint the page as it is now: placeholders for the visible thumbnails
        first_screen = time.perf_counter() - start
        thumbs = wait_until(screen_ready, 60) + first_screen
        stall = heartbeat.stop()
        print(
            f"open ({label}): model populated {populated * 1000:.0f} ms ({model.rowCount():,} rows), "
            f"first screen painted {first_screen * 1000:.0f} ms, "
            f"its thumbnails shown {thumbs * 1000:.0f} ms, max GUI stall {stall * 1000:.0f} ms"
        )

    heartbeat = Heartbeat()
    app.processEvents()
    rss_before = _rss_mb()
    peak_reset = _reset_peak()
    open_once("cold thumbnail cache")
    session.close()
    run_loop(50)
    open_once("warm thumbnail cache")
    rss_open = _rss_mb()

    bar = gallery.verticalScrollBar()
    for label, interval in (("fling, 60 steps/s", 16), ("reading, 10 steps/s", 100)):
        bar.setValue(0 if label.startswith("fling") else bar.value())
        run_loop(100)
        stalls = []
        for _ in range(pages):
            heartbeat.start()
            bar.setValue(bar.value() + bar.pageStep())
            run_loop(interval)
            stalls.append(heartbeat.stop())
        settle = wait_until(screen_ready, 60)
        run_loop(100)  # the gallery drops requests for rows scrolled away 40 ms after the last scroll
        print(
            f"scroll {pages} pages ({label}): max GUI stall {max(stalls) * 1000:.0f} ms, "
            f"median {statistics.median(stalls) * 1000:.0f} ms per step; last screen's thumbnails "
            f"{settle * 1000:.0f} ms after the last step; {page.loader.pending_count()} requests left"
        )

    for name, gallery_filter in (("all", GalleryFilter("all")), ("unlabeled", GalleryFilter("unlabeled"))):
        start = time.perf_counter()
        page.set_filter(gallery_filter)
        switched = time.perf_counter() - start
        times = []
        for _ in range(20):
            start = time.perf_counter()
            QTest.keyClick(gallery, Qt.Key.Key_1)
            times.append(time.perf_counter() - start)
            run_loop(5)
        median, worst = statistics.median(times) * 1000, max(times) * 1000
        print(
            f"filter '{name}' ({model.rowCount():,} rows): switch {switched * 1000:.0f} ms; "
            f"key 1 -> committed, advanced and counted: median {median:.1f} ms, max {worst:.1f} ms"
        )

    peak = _rss_mb("VmHWM") if peak_reset else _rss_mb()
    print(
        f"memory: RSS before opening {rss_before:.0f} MB; after opening +{rss_open - rss_before:.0f} MB, "
        f"after scrolling and labeling +{_rss_mb() - rss_before:.0f} MB, peak +{peak - rss_before:.0f} MB "
        f"(thumbnails in memory: {page.model.thumbnail_bytes() / 2**20:.0f} MB)"
    )
    page.shutdown()
    session.close()


if __name__ == "__main__":
    main()
