"""The Map tab at 10 000 points: milliseconds to draw, recolour, pan, zoom, hover and lasso.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_data_map.py [--n 10000]``. Not a test:
prints one line per step (median of ``--repeat``; the table in docs/adr/0035-data-map-tab.md). The
points are 10 Gaussian groups (the PCA of real features looks like this); the panel is the app's
``DataMapPanel`` with a session that has no project, so every point has a class by prediction. Each
step ends with a full repaint of the plot (``QWidget.grab``), so the time is what the user waits for.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication

from labeltune.core.data_map import DataMap, points_in_polygon
from labeltune.core.settings import Settings
from labeltune.ui.data_map import DataMapPanel
from labeltune.ui.session import ProjectSession


def timed(step: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``step`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    """Print the timings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 10, args.n)
    centres = rng.normal(scale=6.0, size=(10, 2))
    coords = (centres[groups] + rng.normal(size=(args.n, 2))).astype(np.float32)
    classes = [f"class{k}" for k in range(10)]
    result = DataMap([Path(f"/data/img{i:05d}.jpg") for i in range(args.n)], coords, [], classes)
    result.predicted = [classes[g] for g in groups]
    panel = DataMapPanel(ProjectSession(Settings()), lambda: None)
    panel.resize(1100, 760)
    panel.show()
    panel.colour_combo.setCurrentIndex(panel.colour_combo.findData("predicted"))
    app.processEvents()
    vb = panel.view_box

    def draw() -> None:
        panel.show_map(result)
        panel.plot.grab()

    def recolour() -> None:
        panel._recolour()
        panel.plot.grab()

    def pan() -> None:
        vb.translateBy(x=0.5, y=0.3)
        panel.plot.grab()

    def zoom() -> None:
        vb.scaleBy((0.9, 0.9))
        panel.plot.grab()

    def hover() -> None:  # what pyqtgraph does for a hover: the points under the cursor, then the tip
        at = QPointF(float(coords[0, 0]), float(coords[0, 1]))
        hit = panel.scatter.pointsAt(at)
        panel.point_tip(int(hit[0].data()) if len(hit) else 0)

    square = np.array([[-3, -3], [3, -3], [3, 3], [-3, 3]], dtype=np.float64)
    circle = np.column_stack([np.cos(np.linspace(0, 6.28, 300)), np.sin(np.linspace(0, 6.28, 300))]) * 4
    steps = {
        "draw (setData, colours, legend, repaint)": draw,
        "recolour (a label changed)": recolour,
        "pan one step + repaint": pan,
        "zoom one step + repaint": zoom,
        "hover (points under the cursor, tip)": hover,
        "lasso of 4 vertices (membership)": lambda: points_in_polygon(coords, square),
        "lasso of 300 vertices (membership)": lambda: points_in_polygon(coords, circle),
    }
    print(f"{args.n} points, median of {args.repeat}")
    for name, step in steps.items():
        step()  # warm-up
        print(f"{name:45s} {timed(step, args.repeat):8.1f} ms")


if __name__ == "__main__":
    main()
