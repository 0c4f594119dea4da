"""GUI responsiveness on the XRD page: the longest GUI-thread stall while phases are identified and while the
model is fine-tuned in the background (target: max < 50 ms, as for images).

Run: ``.venv/bin/python bench/bench_xrd_gui_stall.py [--quick]``. Not a test: prints figures only. Offscreen
unless a Qt platform is chosen. Uses the *XRD phases* demo and the shipped model (``make xrd-model``), the
5 ms heartbeat of ``bench_gui_stall.py``; phases: ``open`` (the demo project opens and the first pattern is
drawn), ``identify`` (all 8 patterns: network + least-squares fits in a worker thread), ``switch`` (Down
arrow through the patterns with their overlays), ``finetune`` (a short fine-tuning run in a worker thread).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gui_stall import Heartbeat, figures, wait_until


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one fine-tuning epoch instead of three")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    base = Path(tempfile.mkdtemp(prefix="labeltune-xrd-stall-"))
    for key, sub in (
        ("LABELTUNE_DATA_DIR", "data"),
        ("LABELTUNE_CACHE_DIR", "cache"),
        ("LABELTUNE_CONFIG_DIR", "cfg"),
    ):
        os.environ[key] = str(base / sub)

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from labeltune.core.settings import Settings
    from labeltune.core.xrd.shipped import shipped_model_dir
    from labeltune.ui.main_window import MainWindow

    if shipped_model_dir() is None:
        print("no shipped XRD model: run `make xrd-model` first")
        return 1
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert app is not None
    window = MainWindow(Settings.load())
    window.resize(1280, 800)
    window.show()
    beat = Heartbeat()
    beat.phase = "open"
    beat.start()
    window.open_demo("xrd")
    page = window.xrd_page
    wait_until(lambda: page.project is not None, 30)
    wait_until(lambda: False, 0.5)  # the first tick after opening belongs to "open"

    beat.phase = "identify"
    done: list[object] = []
    page.predict_controller.finished.connect(done.append)
    page.predict_controller.failed.connect(lambda message, _details: done.append(message))
    page.identify(all_patterns=True)
    wait_until(lambda: bool(done) and not page.predict_controller.is_running(), 300)

    beat.phase = "switch"
    page.pattern_list.setFocus()
    for _ in range(7):
        QTest.keyClick(page.pattern_list, Qt.Key.Key_Down)
        wait_until(lambda: False, 0.15)

    beat.phase = "finetune"
    panel = page.train_panel
    panel.epochs_spin.setValue(1 if args.quick else 3)
    finished: list[object] = []
    panel.controller.finished.connect(finished.append)
    panel.controller.failed.connect(lambda message, _details: finished.append(message))
    panel.start()
    wait_until(lambda: bool(finished) and not panel.controller.is_running(), 900)
    beat.stop()
    window.close()

    stalls = beat.stalls()
    print(f"{'phase':<10}{'ticks':>7}{'max ms':>9}{'p99 ms':>9}{'>50 ms':>8}")
    for phase in ("open", "identify", "switch", "finetune"):
        f = figures(stalls.get(phase, []))
        if f["ticks"]:
            print(f"{phase:<10}{f['ticks']:>7}{f['max_ms']:>9}{f['p99_ms']:>9}{f['over_50ms']:>8}")
    background = stalls.get("identify", []) + stalls.get("finetune", [])
    f = figures(background)
    print(f"worker phases together: max {f['max_ms']} ms, p99 {f['p99_ms']} ms, {f['over_50ms']} over 50 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
